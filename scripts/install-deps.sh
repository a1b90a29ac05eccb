#!/usr/bin/env bash
# Installs (as root, with apt-get) every Debian package diffadapt needs to build, test and
# benchmark. Packages already present are left alone, so a second run is quick.
# Usage: install-deps.sh [--run]
#   --run: only what building and running the program needs (scripts/run.sh): no clang/compiler-rt
#          (the fuzzer), no python3-torch / python3-pil (golden files and benchmarks), which are large,
#          and no qemu-user (test_cpu_baseline runs the program on an emulated pre-AVX2 CPU).
set -euo pipefail
pkgs=(build-essential cmake pkg-config libopenblas-dev libdnnl-dev libstb-dev zlib1g-dev libcjson-dev
      libyaml-dev libplplot-dev plplot-driver-cairo dataset-fashion-mnist)
case "${1:-}" in
  --run) ;;
  "") pkgs+=(clang libclang-rt-14-dev python3-torch python3-pil qemu-user) ;;
  *) echo "usage: install-deps.sh [--run]" >&2; exit 2 ;;
esac
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all packages present"
fi
