#!/usr/bin/env bash
# Configures and builds diffadapt (Release, warnings as errors) into build/ (or $1).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DDA_WERROR=ON > /dev/null
cmake --build "$dir" -j "$(nproc)"
