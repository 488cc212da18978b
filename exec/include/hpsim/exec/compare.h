#pragma once
// Span-by-span comparison of a predicted timeline (analytic or simulated) with a measured one.
// Both carry the same stage names and phases (DESIGN.md section 4), so they line up by
// (stage, phase). For each pair, the time of a stage is its per-rank total duration, taken on
// the slowest rank ("max") — the rank that sets the layer time — and averaged over ranks
// ("mean"). The layer total is the end of the last span over all ranks.

#include <string>
#include <vector>

#include "hpsim/core/timeline.h"

namespace hpsim::exec {

struct StageComparison {
  std::string stage;
  core::Phase phase = core::Phase::kForward;
  double predicted_us = 0;  // slowest rank
  double measured_us = 0;   // slowest rank
  // (predicted - measured) / measured; 0 when both are 0; +inf when only measured is 0.
  double relative_error = 0;
  bool in_predicted = true;
  bool in_measured = true;
};

struct TimelineComparison {
  std::vector<StageComparison> stages;  // in the measured timeline's order of first appearance
  double predicted_total_us = 0;
  double measured_total_us = 0;
  double total_relative_error = 0;
};

TimelineComparison compare_timelines(const core::Timeline& predicted, const core::Timeline& measured);

// Slowest-rank total duration of each (stage, phase), in order of first appearance.
struct StageTime {
  std::string stage;
  core::Phase phase;
  double max_us;
  double mean_us;
};
std::vector<StageTime> stage_times(const core::Timeline& timeline);

double relative_error(double predicted, double measured);

}  // namespace hpsim::exec
