#pragma once
#include <string>
#include <vector>

namespace hpsim::cli {

struct SimulateOptions {
  std::vector<std::string> scenarios;  // files or scenario preset names; empty = the shipped defaults
  std::string profile;                 // file or shipped name; empty = the default profile
  std::string strategy = "both";       // both | ep | hp
  std::string engine = "analytic";     // analytic | sim
  std::string trace_file;              // Chrome trace of the timeline
  std::string ep_buffers = "actual";   // actual | worst-case
  bool recompute_hidden = false;
  bool json = false;
  std::string out;
};

int run_simulate(const SimulateOptions& options);

}  // namespace hpsim::cli
