#!/bin/sh
# fuzz.sh — builds the libFuzzer targets (clang, ASan+UBSan) in build-fuzz and runs each of them
# (safetensors, PyTorch checkpoints — zip + restricted unpickler —, model configs, data files)
# from its seed corpus, sharing SECONDS (default 60) between them; exits non-zero on a crash.
set -eu
SECONDS_TO_RUN=${1:-60}
case "$SECONDS_TO_RUN" in
    ""|*[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS]   (a whole number of seconds, default 60)" >&2; exit 2 ;;
esac
# each target fuzz_T takes its seeds from tests/fuzz/corpus_T
TARGETS="safetensors torch_ckpt config data"
PER=$((SECONDS_TO_RUN / 4))
[ "$PER" -ge 1 ] || PER=1
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD="$ROOT/build-fuzz"
cmake -S "$ROOT" -B "$BUILD" -DDA_FUZZ=ON -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
      -DDA_SANITIZE=ON -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link >/dev/null
for t in $TARGETS; do make -C "$BUILD" -j"$(nproc)" "fuzz_$t"; done
# scratch copies of the seeds, so new inputs found by a run do not land in the repository
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$BUILD"
for t in $TARGETS; do
    mkdir "$WORK/$t"
    cp "$ROOT"/tests/fuzz/corpus_"$t"/* "$WORK/$t"/
    echo "== fuzz_$t for $PER s"
    # the library is built with fuzzer-no-link so the fuzzer sees coverage inside the readers;
    # -rss_limit_mb keeps a huge allocation from passing as success; -max_len keeps inputs small.
    # Debian's stb_image reserves up to 4 GB for a corrupt zlib stream in an 80-byte PNG without
    # touching it (7 MB resident in a Release build, then a clean "outofdata" error), so the data
    # readers get a larger single-allocation limit; the resident limit stays.
    MALLOC=1024
    [ "$t" = data ] && MALLOC=4200
    ASAN_OPTIONS=detect_leaks=1 "$BUILD/fuzz_$t" -max_total_time="$PER" \
        -rss_limit_mb=2048 -malloc_limit_mb="$MALLOC" -max_len=4096 -print_final_stats=1 "$WORK/$t"
done
