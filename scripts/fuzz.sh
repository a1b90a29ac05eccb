#!/bin/sh
# fuzz.sh — builds the libFuzzer targets (clang, ASan+UBSan) in build-fuzz and runs the
# safetensors fuzzer for SECONDS (default 60) from the seed corpus; exits non-zero on a crash.
set -eu
SECONDS_TO_RUN=${1:-60}
case "$SECONDS_TO_RUN" in
    ""|*[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS]   (a whole number of seconds, default 60)" >&2; exit 2 ;;
esac
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD="$ROOT/build-fuzz"
cmake -S "$ROOT" -B "$BUILD" -DDA_FUZZ=ON -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
      -DDA_SANITIZE=ON -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link >/dev/null
make -C "$BUILD" -j"$(nproc)" fuzz_safetensors
# a scratch copy of the seeds, so new inputs found by the run do not land in the repository
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cp "$ROOT"/tests/fuzz/corpus_safetensors/* "$WORK"/
cd "$BUILD"
# the library is built with fuzzer-no-link so the fuzzer sees coverage inside the reader;
# -rss_limit_mb keeps a huge allocation from passing as success; -max_len keeps inputs small
ASAN_OPTIONS=detect_leaks=1 "$BUILD/fuzz_safetensors" -max_total_time="$SECONDS_TO_RUN" \
    -rss_limit_mb=2048 -malloc_limit_mb=1024 -max_len=4096 -print_final_stats=1 "$WORK"
