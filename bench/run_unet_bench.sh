#!/usr/bin/env bash
# run_unet_bench.sh — the DDPM UNet: diffadapt (bench_unet) against PyTorch (bench_unet.py, the
# same architecture) on the same shapes and threads: Adam training step (batch 32, 32x32x1, ch 64,
# ch_mult 1,2,2, 2 res blocks, attention at 16), forward throughput of that model, and the forward
# of the CelebA-HQ 256 configuration (1 image, random weights). Prints img/s and the ratio.
# Usage: bench/run_unet_bench.sh [threads (default: nproc)] [build dir (default: build)]
# Env: UNET_ITERS = timed iterations per row (default 5; CelebA at most 2), UNET_ROWS (default
#      train,forward,celeba).
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-$(nproc)}
build=${2:-build}
iters=${UNET_ITERS:-5}
rows=${UNET_ROWS:-train,forward,celeba}

if [ ! -x "$build/bench_unet" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release > /dev/null
  cmake --build "$build" --target bench_unet -j "$(nproc)" > /dev/null
fi
. "$(dirname "$0")/bench_env.sh"
# one row at a time, the two sides back to back, so that a change of load hits both alike
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
c_out="" t_out=""
for r in ${rows//,/ }; do
  c=$(run "$build/bench_unet" --threads "$threads" --iters "$iters" --rows "$r" 2> "$tmp/ours")
  sed 's/^/  ours  /' "$tmp/ours"
  t=$(run /usr/bin/python3 bench/bench_unet.py --threads "$threads" --iters "$iters" --rows "$r" 2> "$tmp/torch")
  sed 's/^/  torch /' "$tmp/torch"
  c_out+=$'\n'$c t_out+=$'\n'$t
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
# ratio = diffadapt img/s / PyTorch img/s: above 1 means diffadapt is faster
awk -v c="$c_out" -v t="$t_out" 'BEGIN {
  desc["train_b32"] = "train step, batch 32 (Adam)"; desc["forward_b32"] = "forward, batch 32";
  desc["celeba256_b1"] = "CelebA-HQ 256 forward, 1 image";
  n = split(c, cl, "\n"); for (i = 1; i <= n; i++) if (split(cl[i], f, " ") == 3 && f[1] == "RESULT") { order[++m] = f[2]; cv[f[2]] = f[3] }
  n = split(t, tl, "\n"); for (i = 1; i <= n; i++) if (split(tl[i], f, " ") == 3 && f[1] == "RESULT") tv[f[2]] = f[3];
  printf "| %-32s | %14s | %14s | %6s |\n", "row", "diffadapt", "PyTorch", "ratio";
  printf "|%s|%s|%s|%s|\n", "----------------------------------", "----------------", "----------------", "--------";
  for (i = 1; i <= m; i++) {
    s = order[i];
    if (s == "celeba256_b1")
      printf "| %-32s | %8.2f s/img | %8.2f s/img | %6.2f |\n", desc[s], 1 / cv[s], (s in tv) ? 1 / tv[s] : 0, (s in tv) ? cv[s] / tv[s] : 0;
    else
      printf "| %-32s | %8.2f img/s | %8.2f img/s | %6.2f |\n", desc[s], cv[s], (s in tv) ? tv[s] : 0, (s in tv) ? cv[s] / tv[s] : 0;
  }
}'
