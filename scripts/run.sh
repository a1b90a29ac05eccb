#!/usr/bin/env bash
# The main job: installs what is missing, builds, and runs the default experiment
# (photo -> sketch adaptation on Fashion-MNIST with the shipped models) into out/experiment/.
# Extra arguments go to `diffadapt experiment` (e.g. --quick, --force, --task 5,7).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --run
bash scripts/build.sh build
./build/diffadapt experiment --out out/experiment "$@"
