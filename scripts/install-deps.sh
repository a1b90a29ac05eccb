#!/usr/bin/env bash
# Installs (as root, with apt-get) every Debian package diffadapt needs to build, test and
# benchmark. Packages already present are left alone, so a second run is quick.
set -euo pipefail
pkgs=(build-essential cmake pkg-config libopenblas-dev libstb-dev zlib1g-dev libcjson-dev
      libyaml-dev libplplot-dev plplot-driver-cairo clang libclang-rt-14-dev
      dataset-fashion-mnist python3-torch)
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
