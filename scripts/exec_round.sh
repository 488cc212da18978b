#!/usr/bin/env bash
# One GPU round of the executor, calibration and validation, on a lent GPU machine:
#   configure (gpu preset) + build, the exec GPU tests, `hpsim execute` on the shipped layers,
#   `hpsim calibrate`, `hpsim validate` and `hpsim imbalance` against the fresh profile; logs and
#   results under $OUT.
# Usage: bash scripts/exec_round.sh [--quick]
# Environment:
#   STAGES      which steps to run, comma-separated (default: tests,calibrate,execute,validate,imbalance;
#               the build always runs and is a no-op when nothing changed)
#   CALIBRATE   full (default: `hpsim calibrate`, --quick with --quick), collectives (re-measure only the
#               collectives over the shipped traces/data/profiles/h200x<W>-measured.json) or none (predict
#               with that shipped profile)
#   ITERATIONS  timed iterations of each `hpsim execute` (default 5)
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
STAGES=",${STAGES:-tests,calibrate,execute,validate,imbalance},"
stage() { [[ "$STAGES" == *",$1,"* ]]; }
W=$(nvidia-smi -L | wc -l)
HPSIM=./build/gpu/apps/hpsim/hpsim
SHIPPED="traces/data/profiles/h200x$W-measured.json"
if stage tests; then
  log "exec + comm GPU tests"
  ./build/gpu/tests/kernels/hpsim_comm_gpu_tests 2>&1 | tail -5 | tee -a "$OUT/exec_round.log"
  ./build/gpu/tests/exec/hpsim_exec_gpu_tests 2>&1 | tee "$OUT/exec_tests.log" | grep -E "^\[  (PASSED|FAILED|SKIPPED)|Failure|error" | tee -a "$OUT/exec_round.log"
fi
PROFILE="$OUT/h200x$W-measured.json"
if stage calibrate; then
  case "${CALIBRATE:-full}" in
    full) log "calibrate ($W GPU)"
          $HPSIM calibrate $QUICK --out "$PROFILE" 2>&1 | tail -30 | tee -a "$OUT/exec_round.log" ;;
    collectives) log "calibrate --collectives-only ($W GPU) over $SHIPPED"
          $HPSIM calibrate --collectives-only --base "$SHIPPED" --out "$PROFILE" 2>&1 | tail -30 | tee -a "$OUT/exec_round.log" ;;
    none) ;;
    *) echo "CALIBRATE must be full, collectives or none" >&2; exit 2 ;;
  esac
fi
# Predict with this round's profile when it made one, else with the shipped one.
[ -f "$PROFILE" ] || PROFILE="$SHIPPED"
[ -f "$PROFILE" ] || PROFILE=""
log "prediction profile: ${PROFILE:-the default}"
if stage execute; then
  log "execute: paper layers at W=$W, 16384 tokens per rank, ${ITERATIONS:-5} iterations"
  $HPSIM presets --show paper-4.2b-h200x2 > "$EXTRA/base.json"
  for m in paper-4.2b paper-4.2b-g paper-2.2b; do
    python3 scripts/scenario.py "$EXTRA/base.json" "$EXTRA/$m-w$W.json" --model "$m" --ranks "$W" --name "$m-w$W"
    $HPSIM execute "$EXTRA/$m-w$W.json" ${PROFILE:+--profile "$PROFILE"} --iterations "${ITERATIONS:-5}" \
      --trace "$EXTRA/trace-$m.json" 2>&1 | tee -a "$OUT/exec_round.log"
  done
fi
if stage validate; then
  log "validate ($W GPU)"
  $HPSIM validate $QUICK ${PROFILE:+--profile "$PROFILE"} --out "$OUT/validation-w$W.json" > "$OUT/validation-w$W.md" \
    2>> "$OUT/exec_round.log"
  tail -60 "$OUT/validation-w$W.md" | tee -a "$OUT/exec_round.log"
fi
if stage imbalance; then
  log "imbalance ($W GPU)"
  $HPSIM imbalance $QUICK ${PROFILE:+--profile "$PROFILE"} --out "$OUT/imbalance-w$W.json" > "$OUT/imbalance-w$W.md" \
    2>> "$OUT/exec_round.log"
  tail -40 "$OUT/imbalance-w$W.md" | tee -a "$OUT/exec_round.log"
fi
log "done $(date -u +%FT%TZ)"
tar -C "$OUT" -czf "$OUT/extra.tar.gz" extra && rm -rf "$EXTRA"
