#pragma once
// Kernel points from an hpsim-bench JSON file (Google Benchmark's --benchmark_out_format=json),
// so that `hpsim calibrate --from-bench` fits a profile from the benchmark suite's runs. Each case
// of a family the layers run (the default algorithm of each) becomes a point of its profile family,
// priced with the model's own FLOPs and bytes (moe_kernel_work, gemm_work) for the case's shape and
// its measured median. The expert MLP cases carry their segments' work items (counters
// `segments`, `segments_nonempty`, `items_64` .. `items_2048`), so their tile-padded rows and
// weight reads are those of the measured routing. docs/calibration.md lists the mapping.

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "hpsim/core/error.h"
#include "hpsim/core/profile.h"

namespace hpsim::model {

struct BenchImport {
  std::map<std::string, std::vector<core::KernelPoint>> points;  // by profile family
  std::vector<std::string> skipped;                              // "case name: why", in file order
  std::string gpu;          // the run's device (context "hpsim_gpu"), empty if not given
  std::string date;         // the run's date (context "date", ISO), empty if not given
  double copy_gbps = 0;     // the ceilings measured in the run (counters of any case), 0 if none
  double bf16_tflops = 0;
};

// The profile family a benchmark family measures ("hp_expert_mlp_fwd" -> "hp_expert_mlp_fwd",
// "ep_grouped_mlp_bwd" -> "ep_expert_mlp_bwd", ...); empty for a case no layer runs (another
// algorithm, a whole layer, a ceiling).
std::string_view profile_family_of_bench(std::string_view bench_family);

// Errors: the text is not JSON or has no "benchmarks" array. Cases that cannot be used (an error
// in the run, a family no layer runs, a missing counter) are listed in `skipped`, not fatal.
core::Expected<BenchImport> kernel_points_from_bench(std::string_view json_text);

}  // namespace hpsim::model
