#!/usr/bin/env bash
# One whole GPU round in one command (docs/kernels.md, ../shared/GPU.md): configure with the gpu
# preset into build/gpu, build, run the GPU tests (ctest -L gpu), run hpsim-bench with JSON
# output, copy logs and JSON to $OUT (or out/gpu_round), and print a short table last.
#
#   bash scripts/gpu_round.sh [extra hpsim-bench arguments, e.g. --hpsim_quick]
#
# Environment: JOBS (build parallelism, default 16), BENCH_FILTER (Google Benchmark filter regex),
# BENCH_TIMEOUT (seconds, default 420), CTEST_FILTER (ctest -R regex), SKIP_TESTS=1 to go straight
# to the benchmarks, BUILD_ALL=1 to build every target (default: the kernels' tests and
# hpsim-bench), NCU_FILTER (a benchmark filter: profile those cases' kernels with Nsight
# Compute, one timed iteration; NCU_SECTIONS names the sections, default SpeedOfLight, and the raw
# CSV keeps every metric; NCU_KERNELS, a regex without ncu's "regex:" prefix, narrows the kernel
# names; NCU_COUNT caps the profiled launches, default 40),
# TABLE_FILTER (regex: only those cases in the printed table; the JSON has all of them).
set -uo pipefail
cd "$(dirname "$0")/.."
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
out_dir=${OUT:-$PWD/out/gpu_round}
mkdir -p "$out_dir"
jobs=${JOBS:-16}
prefix=()
if [ -d .deps/root/usr ]; then prefix=(-DCMAKE_PREFIX_PATH="$PWD/.deps/root/usr"); fi
start=$(date +%s)
stamp() { echo "[$(($(date +%s) - start)) s] $*"; }

{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,temperature.gpu,power.draw --format=csv
  nvcc --version | tail -2; date -u; } > "$out_dir/machine.txt" 2>&1
stamp "configure"
build=build/gpu
if ! cmake --preset gpu "${prefix[@]}" > "$out_dir/configure.log" 2>&1; then
  # Another module may be mid-change (a CMakeLists naming a file not yet there): configure the
  # kernels' part of the tree alone (core, kernels, hpsim-bench and their tests).
  grep -A3 "CMake Error" "$out_dir/configure.log" | head -8
  echo "gpu_round: the whole tree does not configure; building the kernels' part alone"
  part=$PWD/build/gpu-part-src
  rm -rf "$part" && mkdir -p "$part/apps" "$part/tests"
  cp -r CMakeLists.txt CMakePresets.json cmake core kernels "$part/"
  cp apps/CMakeLists.txt "$part/apps/" && cp -r apps/hpsim-bench "$part/apps/"
  cp tests/CMakeLists.txt "$part/tests/" && cp -r tests/core tests/kernels "$part/tests/"
  build=$PWD/build/gpu-part
  if ! cmake -S "$part" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHPSIM_WITH_CUDA=ON -DHPSIM_WITH_NCCL=ON \
      -DHPSIM_WITH_QT=OFF "${prefix[@]}" > "$out_dir/configure.log" 2>&1; then
    tail -40 "$out_dir/configure.log"; echo "gpu_round: configure failed"; exit 1
  fi
fi
stamp "build"
# Keep going past other modules' failures; the kernels' targets are what this round needs.
targets=(hpsim-bench hpsim_kernels_gpu_tests hpsim_kernels_ref_tests)
if [ "${BUILD_ALL:-0}" = "1" ]; then targets=(all); fi
cmake --build "$build" -j"$jobs" --target "${targets[@]}" -- -k 0 > "$out_dir/build.log" 2>&1
if [ ! -x "$build/apps/hpsim-bench/hpsim-bench" ] || [ ! -x "$build/tests/kernels/hpsim_kernels_gpu_tests" ]; then
  grep -E "error|FAILED" "$out_dir/build.log" | head -40; echo "gpu_round: build of the kernels failed"; exit 1
fi
grep -E "FAILED" "$out_dir/build.log" | head -5

tests_summary="skipped"
if [ "${SKIP_TESTS:-0}" != "1" ]; then
  stamp "ctest -L gpu"
  ctest --test-dir "$build" -L gpu ${CTEST_FILTER:+-R "$CTEST_FILTER"} --output-on-failure --timeout 300 -j1 \
    > "$out_dir/ctest.log" 2>&1
  tests_summary=$(grep -E "tests passed|tests failed" "$out_dir/ctest.log" | tail -1)
  grep -E "^\s*[0-9]+ - .*(Failed|Not Run|Timeout)|\(Failed\)|\*\*\*" "$out_dir/ctest.log" | head -30
fi

stamp "hpsim-bench"
filter=()
if [ -n "${BENCH_FILTER:-}" ]; then filter=(--benchmark_filter="$BENCH_FILTER"); fi
timeout "${BENCH_TIMEOUT:-420}" "$build/apps/hpsim-bench/hpsim-bench" --benchmark_out="$out_dir/bench.json" \
  --benchmark_out_format=json --benchmark_counters_tabular=true "${filter[@]}" "$@" > "$out_dir/bench.log" 2>&1
bench_rc=$?
stamp "done (bench exit $bench_rc)"
grep -E "ceilings on|error" "$out_dir/bench.log" | head -5

if [ -n "${NCU_FILTER:-}" ] && command -v ncu > /dev/null; then
  stamp "ncu"
  sections=()
  for sec in ${NCU_SECTIONS:-SpeedOfLight}; do sections+=(--section "$sec"); done
  timeout "${NCU_TIMEOUT:-150}" ncu --clock-control none "${sections[@]}" --csv --page details \
    --kernel-name "regex:${NCU_KERNELS:-expert_mlp|router|grouping|histogram|scatter|offsets|combine|gemm_kernel|schedule}" \
    --launch-count "${NCU_COUNT:-40}" "$build/apps/hpsim-bench/hpsim-bench" --benchmark_filter="$NCU_FILTER" \
    --hpsim_iterations=1 --hpsim_verify=0 > "$out_dir/ncu.csv" 2> "$out_dir/ncu.log"
  python3 - "$out_dir/ncu.csv" <<'PY'
import csv, sys
rows = list(csv.reader(l for l in open(sys.argv[1]) if l.startswith('"')))
if not rows: print("ncu: no rows"); sys.exit(0)
head = rows[0]; idx = {h: i for i, h in enumerate(head)}
seen = {}
for r in rows[1:]:
    key = (r[idx["ID"]], r[idx["Kernel Name"]][:48])
    m = seen.setdefault(key, {})
    m[r[idx["Metric Name"]]] = r[idx["Metric Value"]]
    if r[idx["Metric Name"]] == "Duration": m["_unit"] = r[idx["Metric Unit"]] if "Metric Unit" in idx else "nsecond"
print(f"{'id':>3} {'kernel':48s} {'us':>8s} {'SM%':>6s} {'Mem%':>6s} {'DRAM%':>6s}")
for (kid, name), m in seen.items():
    dur = m.get("Duration", "0").replace(",", "")
    scale = {"n": 1e-3, "u": 1.0, "m": 1e3}.get(m.get("_unit", "n")[:1], 1e-3)
    try: us = float(dur) * scale
    except ValueError: us = 0.0
    print(f"{kid:>3} {name:48s} {us:8.1f} {m.get('Compute (SM) Throughput','?'):>6s} {m.get('Memory Throughput','?'):>6s} {m.get('DRAM Throughput','?'):>6s}")
PY
fi

python3 - "$out_dir/bench.json" "$tests_summary" "${TABLE_FILTER:-.}" <<'PY'
import json, re, sys
path, tests, keep = sys.argv[1], sys.argv[2], re.compile(sys.argv[3])
try:
    data = json.load(open(path))
except Exception as e:  # noqa: BLE001
    print(f"no benchmark JSON ({e})"); print("tests:", tests); sys.exit(0)
rows = []
errors = 0
for b in data.get("benchmarks", []):
    name = b["name"]
    errors += 1 if b.get("error_occurred") else 0
    if not keep.search(name) and not b.get("error_occurred"):
        continue
    if b.get("error_occurred"):
        rows.append((name, "ERROR", b.get("error_message", "")[:60], "", "")); continue
    c = b
    med = c.get("median_us", 0.0)
    frac = c.get("frac_ceiling", 0.0)
    extra = ""
    if "peer_ratio" in c: extra = f"peer x{c['peer_ratio']:.3f}"
    rate = c.get("FLOP/s", 0.0) / 1e12
    bw = c.get("bytes_per_second", 0.0) / 1e9
    rows.append((name, f"{med:10.1f}", f"{frac*100:5.1f}%", f"{rate:7.1f}T {bw:7.0f}GB/s", extra))
print(f"{'case':58s} {'median us':>10s} {'ceil%':>6s} {'TFLOP/s  GB/s':>18s}")
for r in rows:
    print(f"{r[0][:58]:58s} {r[1]:>10s} {r[2]:>6s} {r[3]:>18s} {r[4]}")
print(f"cases: {len(data.get('benchmarks', []))}, with errors: {errors}")
print("tests:", tests)
PY
