#!/usr/bin/env bash
# One GPU round of the one-process-per-GPU mode on a lent machine of two or more GPUs: builds,
# runs the multigpu tests (the mpirun test among them), then `hpsim execute` of the paper's 4.2B
# layer at W = 2 under `mpirun -np 2` and from one process, the same iterations each. Logs under $OUT.
# Usage: bash scripts/mpi_round.sh [ITERATIONS]
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/out}"
mkdir -p "$OUT"
ITER="${1:-25}"
export NCCL_NVLS_ENABLE=0
PREFIX=""
[ -d .deps/root/usr ] && PREFIX="-DCMAKE_PREFIX_PATH=$PWD/.deps/root/usr"
log() { echo "== $*" | tee -a "$OUT/mpi_round.log"; }
log "$(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1) x $(nvidia-smi -L | wc -l), $(mpirun --version 2>&1 | head -1)"
cmake --preset gpu $PREFIX > "$OUT/configure.log" 2>&1 || { tail -30 "$OUT/configure.log"; exit 1; }
cmake --build build/gpu -j"$(nproc)" --target hpsim hpsim_exec_gpu_tests hpsim_comm_gpu_tests hpsim_exec_mpi_tests \
  > "$OUT/build.log" 2>&1 || { grep -E "error" "$OUT/build.log" | head -30; exit 1; }
log "multigpu tests"
ctest --test-dir build/gpu -L multigpu --output-on-failure 2>&1 | tee "$OUT/ctest.log" | tail -15 | tee -a "$OUT/mpi_round.log"
log "the mpirun test's own output"
./build/gpu/tests/exec/hpsim_exec_mpi_tests 2>&1 | grep -E "^\[  |layer, one process|mpirun|Failure|error" | tee -a "$OUT/mpi_round.log"
HPSIM=./build/gpu/apps/hpsim/hpsim
$HPSIM presets --show paper-4.2b-h200x2 > "$OUT/paper-4.2b-w2.json"
log "execute 4.2B W=2 under mpirun -np 2 ($ITER iterations)"
mpirun -np 2 --allow-run-as-root -x NCCL_NVLS_ENABLE $HPSIM execute "$OUT/paper-4.2b-w2.json" --iterations "$ITER" \
  --trace "$OUT/trace-mpi.json" 2>&1 | tee -a "$OUT/mpi_round.log"
log "execute 4.2B W=2 from one process ($ITER iterations)"
$HPSIM execute "$OUT/paper-4.2b-w2.json" --iterations "$ITER" --trace "$OUT/trace-one.json" 2>&1 | tee -a "$OUT/mpi_round.log"
log "done $(date -u +%FT%TZ)"
