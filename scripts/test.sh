#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what is missing, then
#  1. Release build with -Werror and every CTest test,
#  2. the same tests built with AddressSanitizer + UndefinedBehaviorSanitizer,
#  3. the safetensors, PyTorch checkpoint, model config and data file readers fuzzed with
#     libFuzzer for a bounded time.
# Any failure stops the script with a non-zero exit code.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
jobs=$(nproc)

echo "== stage 1: release build (-Werror) and tests"
bash scripts/build.sh build
(cd build && ctest --output-on-failure -j "$jobs" --timeout 900)

echo "== stage 2: AddressSanitizer + UndefinedBehaviorSanitizer"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DDA_WERROR=ON -DDA_SANITIZE=ON > /dev/null
cmake --build build-asan -j "$jobs"
# OpenBLAS and OpenMP runtimes keep thread pools alive at exit; their allocations are not ours.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/scripts/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
(cd build-asan && DA_SANITIZED=1 ctest --output-on-failure -j "$jobs" --timeout 1500)

echo "== stage 3: fuzzing the safetensors, PyTorch checkpoint, config and data readers (${DA_FUZZ_SECONDS:-60} s in all)"
bash scripts/fuzz.sh "${DA_FUZZ_SECONDS:-60}"
echo "== all stages passed"
