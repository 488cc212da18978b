#pragma once
// Report: the summary a CLI run or a GUI view shows, for one or both strategies.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "hpsim/core/memory_report.h"
#include "hpsim/core/timeline.h"
#include "hpsim/core/traffic.h"

namespace hpsim::core {

// One stage of one layer: its time on the slowest rank and on average.
struct StageCost {
  std::string stage;
  Phase phase = Phase::kForward;
  Lane lane = Lane::kCompute;
  double max_us = 0;   // slowest rank (for a collective: its end, waits included)
  double mean_us = 0;  // mean over ranks
  double bytes = 0;    // per rank, max (communication) or moved (compute)
  double flops = 0;    // per rank, max
};

struct StrategyReport {
  std::string strategy;  // "ep" or "hp"
  std::vector<StageCost> stages;
  double layer_forward_us = 0;
  double layer_backward_us = 0;
  double layer_total_us = 0;
  std::vector<TrafficMatrix> traffic;
  double metadata_bytes_per_rank = 0;
  MemoryReport memory;
  // Training-step estimate (whole model).
  double step_us = 0;
  double tokens_per_second = 0;
  double hours_for_budget = 0;
  std::optional<Timeline> timeline;  // when an engine produced one
};

struct Report {
  std::string scenario;
  std::string engine;   // "analytic" or "sim"
  std::string profile;  // profile name
  std::vector<StrategyReport> strategies;
};

}  // namespace hpsim::core
