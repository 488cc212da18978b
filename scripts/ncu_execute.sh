#!/usr/bin/env bash
# Every kernel of one executed layer, forward and backward, under Nsight Compute: `hpsim execute`
# with one iteration and no warm-up, caches left warm between launches (--cache-control none, so
# a kernel finds in L2 what its predecessor left, as in the timed run) and clocks not locked.
# Prints each kernel's duration in launch order and the total per kernel name; the raw CSV goes to
# OUT_PREFIX.csv.
#
#   bash scripts/ncu_execute.sh HPSIM SCENARIO {ep|hp} OUT_PREFIX [extra ncu arguments]
#
# Environment: NCU_SECTIONS (default "SpeedOfLight"), NCU_KERNELS (a regex, default every
# kernel), NCU_COUNT (launches to profile, default 200), NCU_TIMEOUT (seconds, default 240).
set -uo pipefail
if [ $# -lt 4 ]; then
  sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
hpsim=$1 scenario=$2 strategy=$3 prefix=$4
shift 4
sections=()
for s in ${NCU_SECTIONS:-SpeedOfLight}; do sections+=(--section "$s"); done
timeout "${NCU_TIMEOUT:-240}" ncu --clock-control none --cache-control none "${sections[@]}" --csv --page details \
  --kernel-name "regex:${NCU_KERNELS:-.}" --launch-count "${NCU_COUNT:-200}" "$@" \
  "$hpsim" execute "$scenario" --strategy "$strategy" --iterations 1 --warmup 0 > "$prefix.csv" 2> "$prefix.log"
rc=$?
[ $rc -ne 0 ] && { echo "ncu_execute: exit $rc"; tail -5 "$prefix.log"; }
python3 - "$prefix.csv" <<'PY'
import csv, re, sys
rows = list(csv.reader(l for l in open(sys.argv[1]) if l.startswith('"')))
if not rows:
    print("ncu_execute: no rows"); sys.exit(0)
idx = {h: i for i, h in enumerate(rows[0])}
kernels = {}
for r in rows[1:]:
    k = kernels.setdefault(int(r[idx["ID"]]), {"name": r[idx["Kernel Name"]]})
    if r[idx["Metric Name"]] == "Duration":
        scale = {"n": 1e-3, "u": 1.0, "m": 1e3}.get(r[idx["Metric Unit"]][:1], 1e-3) if "Metric Unit" in idx else 1e-3
        k["us"] = float(r[idx["Metric Value"]].replace(",", "")) * scale
    k[r[idx["Metric Name"]]] = r[idx["Metric Value"]]
def short(n):
    n = re.sub(r"unnamed>::|\(anonymous namespace\)::", "", n).replace("::<", "::")
    n = re.sub(r"^void ", "", n)
    n = re.sub(r"\(.*$", "", n)
    n = re.sub(r"<.*$", "", n)
    return n.split("::")[-1][:56]
total = {}
print(f"{'id':>4} {'kernel':56s} {'us':>9s} {'SM%':>6s} {'DRAM%':>6s}")
for i in sorted(kernels):
    k = kernels[i]; us = k.get("us", 0.0)
    total.setdefault(short(k["name"]), [0, 0.0])
    total[short(k["name"])][0] += 1; total[short(k["name"])][1] += us
    print(f"{i:4d} {short(k['name']):56s} {us:9.1f} {k.get('Compute (SM) Throughput','?'):>6s} {k.get('DRAM Throughput','?'):>6s}")
print("\nper kernel name (launches, total us):")
for n, (c, us) in sorted(total.items(), key=lambda t: -t[1][1]):
    print(f"  {n:56s} {c:4d} {us:9.1f}")
PY
