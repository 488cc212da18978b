#!/usr/bin/env bash
# One rank of a W-GPU HP layer on one GPU: the paper's 4.2B layer with H/W heads and W n tokens
# per rank, so the expert MLPs, router, grouping and combine see exactly the rows, heads and
# segments a rank of the W-GPU layer sees (the projections and the all-to-alls differ). Runs
# `hpsim execute --strategy hp` on it and, with NCU=1, every kernel of one forward + backward under
# Nsight Compute (scripts/ncu_execute.sh). docs/kernels.md, rounds 46-50.
#
#   bash scripts/rank_probe.sh HPSIM W N K SKEW [OUT_PREFIX]
#
# W: GPUs of the layer being imitated (divides 8), N: tokens per rank there, K: top-k, SKEW: Zipf
# exponent (0 = uniform). Example, a skewed four-GPU rank: bash scripts/rank_probe.sh \
# build/gpu/apps/hpsim/hpsim 4 16384 1 2
set -euo pipefail
if [ $# -lt 5 ]; then
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
hpsim=$1 w=$2 n=$3 k=$4 skew=$5 prefix=${6:-/tmp/rank-probe-w$2-n$3-k$4-z$5}
scenario="$prefix.json"
name="rank-of-w$w-n$n-k$k-zipf$skew"
"$hpsim" presets --show paper-4.2b-h200x8-uniform |
  python3 "$(dirname "$0")/scenario.py" - "$scenario" --top-k "$k" --zipf "$skew" --tokens "$n" --rank-of "$w" --name "$name"
"$hpsim" execute "$scenario" --strategy hp --iterations 7
if [ "${NCU:-0}" = "1" ]; then
  bash "$(dirname "$0")/ncu_execute.sh" "$hpsim" "$scenario" hp "$prefix-ncu"
fi
