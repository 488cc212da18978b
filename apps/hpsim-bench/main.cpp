// hpsim-bench: Google Benchmark suite of the kernels of both MoE layers (kernels/bench). Every
// case is checked against its CPU twin first, timed with CUDA events, and reports FLOPs, bytes,
// rates and its fraction of the ceilings measured in the same run. JSON for calibration:
//   hpsim-bench --benchmark_out=kernels.json --benchmark_out_format=json
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <benchmark/benchmark.h>
#include <cuda_runtime_api.h>

#include "bench_common.h"

namespace {

constexpr const char* kUsage =
    "hpsim-bench options (besides Google Benchmark's --benchmark_*):\n"
    "  --hpsim_verify=0|1     check each kernel family against its CPU twin before timing (default 1)\n"
    "  --hpsim_quick          only the paper's W = 2, n = 16384 shapes (and the skewed case)\n"
    "  --hpsim_iterations=N   timed launches per case after 3 warm-ups (default 20)\n";

bool take_flag(std::string_view arg, std::string_view name, std::string_view& value) {
  if (arg == name) {
    value = "1";
    return true;
  }
  if (arg.size() > name.size() && arg.substr(0, name.size()) == name && arg[name.size()] == '=') {
    value = arg.substr(name.size() + 1);
    return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  using hpsim::kernels::bench::options;
  std::vector<char*> rest{argv[0]};
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    std::string_view value;
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      rest.push_back(argv[i]);
    } else if (take_flag(arg, "--hpsim_verify", value)) {
      options().verify = value != "0";
    } else if (take_flag(arg, "--hpsim_quick", value)) {
      options().quick = value != "0";
    } else if (take_flag(arg, "--hpsim_iterations", value)) {
      options().iterations = std::atoi(std::string(value).c_str());
      if (options().iterations < 1) {
        std::fprintf(stderr, "error: --hpsim_iterations must be >= 1\n%s", kUsage);
        return 2;
      }
    } else {
      rest.push_back(argv[i]);
    }
  }
  bool listing = false;
  for (char* a : rest) listing |= std::strncmp(a, "--benchmark_list_tests", 22) == 0;
  int count = 0;
  if (!listing && (cudaGetDeviceCount(&count) != cudaSuccess || count == 0)) {
    std::fprintf(stderr, "error: hpsim-bench needs a GPU and found none\n");
    return 77;
  }
  int new_argc = static_cast<int>(rest.size());
  benchmark::Initialize(&new_argc, rest.data());
  if (benchmark::ReportUnrecognizedArguments(new_argc, rest.data())) return 2;
  benchmark::AddCustomContext("hpsim_verify", options().verify ? "1" : "0");
  benchmark::AddCustomContext("hpsim_quick", options().quick ? "1" : "0");
  if (!listing) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) benchmark::AddCustomContext("hpsim_gpu", prop.name);
  }
  hpsim::kernels::bench::register_ceiling_cases();
  hpsim::kernels::bench::register_hp_cases();
  hpsim::kernels::bench::register_ep_cases();
  hpsim::kernels::bench::register_dense_cases();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
