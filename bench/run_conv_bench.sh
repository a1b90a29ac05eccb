#!/usr/bin/env bash
# run_conv_bench.sh — conv2d forward+backward: diffadapt (bench_conv) against PyTorch
# (bench_conv_torch.py) on the same shapes and thread count, printed as one table with the ratio.
# Usage: bench/run_conv_bench.sh [threads (default: nproc)] [build dir (default: build)]
# Env: DA_BENCH_SECONDS = minimum seconds per shape and side (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-$(nproc)}
build=${2:-build}
secs=${DA_BENCH_SECONDS:-2}

if [ ! -x "$build/bench_conv" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release > /dev/null
  cmake --build "$build" --target bench_conv -j "$(nproc)" > /dev/null
fi

. "$(dirname "$0")/bench_env.sh"
# One shape at a time, the two sides back to back, so that a change in the machine's load
# during the run affects both alike.
c_out="" t_out=""
for s in $("$build/bench_conv" --list); do
  c=$(run "$build/bench_conv" "$threads" "$secs" "$s")
  t=$(run /usr/bin/python3 bench/bench_conv_torch.py "$threads" "$secs" "$s")
  [ -z "$c_out" ] && head -n 2 <<< "$c" && head -n 1 <<< "$t"
  grep -v -e '^RESULT' -e '^MIN' -e '^diffadapt' -e '^OpenBLAS' <<< "$c" | sed 's/^/  ours  /'
  grep -v -e '^RESULT' -e '^torch' <<< "$t" | sed 's/^/  torch /'
  c_out+=$'\n'$c t_out+=$'\n'$t
done
echo
# Ratio = PyTorch time / diffadapt time for forward + backward: above 1 means diffadapt is faster.
awk -v c="$c_out" -v t="$t_out" 'BEGIN {
  n = split(c, cl, "\n");
  for (i = 1; i <= n; i++) if (split(cl[i], f, " ") == 5 && f[1] == "RESULT") { order[++m] = f[2]; cf[f[2]] = f[3]; cb[f[2]] = f[4]; gf[f[2]] = f[5] }
  n = split(t, tl, "\n");
  for (i = 1; i <= n; i++) if (split(tl[i], f, " ") == 5 && f[1] == "RESULT") { tf[f[2]] = f[3]; tb[f[2]] = f[4] }
  printf "%-24s | %10s %10s | %10s %10s | %8s %8s | %6s\n", "shape (conv2d)", "ours fwd", "torch fwd", "ours bwd", "torch bwd", "ours GF/s", "torch GF/s", "ratio";
  printf "%-24s | %10s %10s | %10s %10s | %8s %8s | %6s\n", "", "ms", "ms", "ms", "ms", "f+b", "f+b", "";
  for (i = 1; i <= m; i++) {
    s = order[i]; if (!(s in tf)) { printf "%-24s | missing on the PyTorch side\n", s; continue }
    ours = cf[s] + cb[s]; theirs = tf[s] + tb[s];
    printf "%-24s | %10.2f %10.2f | %10.2f %10.2f | %8.1f %8.1f | %6.2f\n", s, cf[s], tf[s], cb[s], tb[s],
           3 * gf[s] / ours * 1e3, 3 * gf[s] / theirs * 1e3, theirs / ours;
  }
}'
