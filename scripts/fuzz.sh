#!/bin/sh
# fuzz.sh — builds the libFuzzer targets (clang, ASan+UBSan) in build-fuzz and runs each from its
# seed corpus, splitting SECONDS (default 60) between them: the safetensors reader and the
# PyTorch checkpoint reader (zip + restricted unpickler). Exits non-zero on a crash.
set -eu
SECONDS_TO_RUN=${1:-60}
case "$SECONDS_TO_RUN" in
    ""|*[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS]   (a whole number of seconds, default 60)" >&2; exit 2 ;;
esac
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD="$ROOT/build-fuzz"
cmake -S "$ROOT" -B "$BUILD" -DDA_FUZZ=ON -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
      -DDA_SANITIZE=ON -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link >/dev/null
make -C "$BUILD" -j"$(nproc)" fuzz_safetensors fuzz_torch_ckpt
# the same total time as one target used to get: half each (at least 1 s)
FIRST=$((SECONDS_TO_RUN / 2))
[ "$FIRST" -ge 1 ] || FIRST=1
SECOND=$((SECONDS_TO_RUN - FIRST))
[ "$SECOND" -ge 1 ] || SECOND=1
# a scratch copy of the seeds, so new inputs found by the run do not land in the repository
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
run_one() {   # target corpus seconds
    mkdir -p "$WORK/$1"
    cp "$ROOT"/tests/fuzz/"$2"/* "$WORK/$1"/
    echo "fuzz.sh: $1 for $3 s"
    # the library is built with fuzzer-no-link so the fuzzer sees coverage inside the reader;
    # -rss_limit_mb keeps a huge allocation from passing as success; -max_len keeps inputs small
    (cd "$BUILD" && ASAN_OPTIONS=detect_leaks=1 "$BUILD/$1" -max_total_time="$3" \
        -rss_limit_mb=2048 -malloc_limit_mb=1024 -max_len=4096 -print_final_stats=1 "$WORK/$1")
}
run_one fuzz_safetensors corpus_safetensors "$FIRST"
run_one fuzz_torch_ckpt corpus_torch "$SECOND"
