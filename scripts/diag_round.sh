#!/usr/bin/env bash
# One GPU round for the skewed backwards (docs/kernels.md, rounds 35-39): scripts/gpu_round.sh
# (kernel GPU tests and the hpsim-bench cases of BENCH_FILTER), then every kernel of executed
# layers at W = 1 under Nsight Compute (scripts/ncu_execute.sh; POINTS: "k,skew,tokens ...",
# default 1,2,4096; EP and HP each), then `hpsim calibrate --quick` and `hpsim validate --quick
# --json` (CALIBRATE=0 skips them). Results under $OUT (default out/diag), the logs in g.tar.gz.
#
#   BENCH_FILTER='ceiling/' [CTEST_FILTER=...] [SKIP_TESTS=1] [POINTS=...] bash scripts/diag_round.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/out/diag}; mkdir -p "$OUT/g"
t0=$(date +%s); st() { echo "[$(( $(date +%s) - t0 )) s] $*"; }
OUT="$OUT/g" BUILD_ALL=1 SKIP_TESTS=${SKIP_TESTS:-0} CTEST_FILTER="${CTEST_FILTER:-Gpu\.}" BENCH_FILTER="$BENCH_FILTER" BENCH_TIMEOUT=150 bash scripts/gpu_round.sh 2>&1 | tail -40
H=./build/gpu/apps/hpsim/hpsim
[ -x $H ] || { echo "no hpsim"; exit 1; }
$H presets --show paper-4.2b-h200x8-uniform > "$OUT/g/base.json"
for spec in ${POINTS:-1,2,4096}; do
  IFS=, read k z n <<< "$spec"
  python3 scripts/scenario.py "$OUT/g/base.json" "$OUT/g/s-k$k-z$z-n$n.json" --top-k "$k" --zipf "$z" --tokens "$n" \
    --ranks 1 --name "k$k-z$z-n$n"
  for strat in ep hp; do
    st "ncu execute $strat k$k z$z n$n"
    bash scripts/ncu_execute.sh $H "$OUT/g/s-k$k-z$z-n$n.json" $strat "$OUT/g/x-$strat-k$k-z$z-n$n" > "$OUT/g/x-$strat-k$k-z$z-n$n.txt"
    sed -n '/per kernel name/,$p' "$OUT/g/x-$strat-k$k-z$z-n$n.txt" | head -12
  done
done
if [ "${CALIBRATE:-1}" = 1 ]; then
  st calibrate
  timeout 200 $H calibrate --quick --out "$OUT/h200x1-measured.json" > "$OUT/g/calibrate.log" 2>&1; tail -5 "$OUT/g/calibrate.log"
  st validate
  timeout 150 $H validate --quick --json --profile "$OUT/h200x1-measured.json" --out "$OUT/validation-w1.json" > "$OUT/g/validate.log" 2>&1
  python3 - "$OUT/validation-w1.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print({k: v for k, v in d.items() if not isinstance(v, (list, dict))})
PY
fi
st done
cd "$OUT" && tar czf g.tar.gz g && rm -rf g
