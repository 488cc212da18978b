#!/usr/bin/env bash
# One GPU round of the one-process-per-GPU mode on a lent machine of two or more GPUs: builds,
# runs the multigpu tests (the mpirun test among them), then `hpsim execute` of the paper's 4.2B
# layer at W = every visible GPU under `mpirun -np W` and from one process (with the numerics
# check), the same iterations each. Logs under $OUT.
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
log "multigpu tests (the collectives' and the numerics check's lines printed below)"
ctest --test-dir build/gpu -L multigpu --output-on-failure 2>&1 | tee "$OUT/ctest.log" | tail -15 | tee -a "$OUT/mpi_round.log"
./build/gpu/tests/kernels/hpsim_comm_gpu_tests --gtest_filter='*TimesOut*' 2>&1 | grep -E "^rank|OK|FAILED" | tee -a "$OUT/mpi_round.log"
./build/gpu/tests/exec/hpsim_exec_gpu_tests --gtest_filter='*Numerics*:*OneGpu*' 2>&1 | grep -E "W = [0-9]|OK|FAILED" | tee -a "$OUT/mpi_round.log"
log "the mpirun test's own output"
./build/gpu/tests/exec/hpsim_exec_mpi_tests --gtest_color=no 2>&1 | grep -E "^\[  |layer, one process|mpirun|Failure|error" | tee -a "$OUT/mpi_round.log"
HPSIM=./build/gpu/apps/hpsim/hpsim
W=$(nvidia-smi -L | wc -l)
$HPSIM presets --show paper-4.2b-h200x2 > "$OUT/base.json"
python3 scripts/scenario.py "$OUT/base.json" "$OUT/paper-4.2b-w$W.json" --ranks "$W" --name "paper-4.2b-w$W"
log "execute 4.2B W=$W under mpirun -np $W ($ITER iterations)"
mpirun -np "$W" --allow-run-as-root -x NCCL_NVLS_ENABLE $HPSIM execute "$OUT/paper-4.2b-w$W.json" --iterations "$ITER" \
  2>&1 | tee -a "$OUT/mpi_round.log"
log "execute 4.2B W=$W from one process ($ITER iterations), with the numerics check"
$HPSIM execute "$OUT/paper-4.2b-w$W.json" --iterations "$ITER" --check-numerics 2>&1 | tee -a "$OUT/mpi_round.log"
log "done $(date -u +%FT%TZ)"
