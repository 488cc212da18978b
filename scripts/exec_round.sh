#!/usr/bin/env bash
# One GPU round of the executor, calibration and validation, on a lent GPU machine:
#   configure (gpu preset) + build, the exec GPU tests, `hpsim execute` on the shipped layers,
#   `hpsim calibrate`, `hpsim validate` and `hpsim imbalance` against the fresh profile; logs and
#   results under $OUT.
# Usage: bash scripts/exec_round.sh [--quick]
# Needs .deps (scripts/fetch-gpu-deps.sh) on machines without nlohmann-json / CLI11 headers.
set -uo pipefail
cd "$(dirname "$0")/.."
QUICK=""
[ "${1:-}" = "--quick" ] && QUICK="--quick"
OUT="${OUT:-$PWD/out}"
mkdir -p "$OUT"
# $OUT keeps a few files; everything else goes into one archive at the end.
EXTRA="$OUT/extra"
mkdir -p "$EXTRA"
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
PREFIX=""
[ -d .deps/root/usr ] && PREFIX="-DCMAKE_PREFIX_PATH=$PWD/.deps/root/usr"
JOBS=$(nproc)
log() { echo "== $*" | tee -a "$OUT/exec_round.log"; }

log "$(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1) x $(nvidia-smi -L | wc -l)"
cmake --preset gpu $PREFIX > "$EXTRA/configure.log" 2>&1 || { tail -30 "$EXTRA/configure.log"; exit 1; }
cmake --build build/gpu -j"$JOBS" --target hpsim hpsim_exec_gpu_tests hpsim_comm_gpu_tests > "$EXTRA/build.log" 2>&1 \
  || { grep -E "error" "$EXTRA/build.log" | head -30; exit 1; }
log "exec + comm GPU tests"
./build/gpu/tests/kernels/hpsim_comm_gpu_tests 2>&1 | tail -5 | tee -a "$OUT/exec_round.log"
./build/gpu/tests/exec/hpsim_exec_gpu_tests 2>&1 | tee "$OUT/exec_tests.log" | grep -E "^\[  (PASSED|FAILED|SKIPPED)|Failure|error" | tee -a "$OUT/exec_round.log"
W=$(nvidia-smi -L | wc -l)
HPSIM=./build/gpu/apps/hpsim/hpsim
log "calibrate ($W GPU)"
$HPSIM calibrate $QUICK --out "$OUT/h200x$W-measured.json" 2>&1 | tail -30 | tee -a "$OUT/exec_round.log"
PROFILE="$OUT/h200x$W-measured.json"
[ -f "$PROFILE" ] || PROFILE=""
log "execute: paper layers at W=$W, 16384 tokens per rank"
$HPSIM presets --show paper-4.2b-h200x2 > "$EXTRA/base.json"
for m in paper-4.2b paper-4.2b-g paper-2.2b; do
  python3 scripts/scenario.py "$EXTRA/base.json" "$EXTRA/$m-w$W.json" --model "$m" --ranks "$W" --name "$m-w$W"
  $HPSIM execute "$EXTRA/$m-w$W.json" ${PROFILE:+--profile "$PROFILE"} --trace "$EXTRA/trace-$m.json" 2>&1 | tee -a "$OUT/exec_round.log"
done
log "validate ($W GPU)"
$HPSIM validate $QUICK ${PROFILE:+--profile "$PROFILE"} --out "$OUT/validation-w$W.md" 2>&1 | tail -60 | tee -a "$OUT/exec_round.log"
$HPSIM validate $QUICK --json ${PROFILE:+--profile "$PROFILE"} --out "$OUT/validation-w$W.json" > /dev/null 2>&1
log "imbalance ($W GPU)"
$HPSIM imbalance $QUICK ${PROFILE:+--profile "$PROFILE"} --out "$OUT/imbalance-w$W.md" 2>&1 | tail -40 | tee -a "$OUT/exec_round.log"
log "done $(date -u +%FT%TZ)"
tar -C "$OUT" -czf "$OUT/extra.tar.gz" extra && rm -rf "$EXTRA"
