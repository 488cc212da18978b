#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace hpsim::cli {

struct SweepOptions {
  std::string scenario;  // base scenario file (or preset name)
  std::string preset;    // base scenario preset; default: the uniform default scenario
  std::string profile;
  std::string strategy = "both";
  std::vector<std::int64_t> top_k;
  std::vector<std::int64_t> experts;
  std::vector<std::int64_t> ranks;
  std::vector<double> skew;
  std::vector<std::int64_t> tokens;
  std::string format = "csv";  // csv | json
  std::string out;
};

int run_sweep(const SweepOptions& options);

}  // namespace hpsim::cli
