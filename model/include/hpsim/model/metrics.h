#pragma once
// The numbers front ends print, computed once here from a StrategyReport (docs/metrics.md
// defines each one). Bandwidth figures follow the nccl-tests conventions:
//   algbw = bytes / time, with `bytes` the buffer one rank hands to the collective;
//   busbw = algbw * factor, the factor being (W-1)/W for all-to-all and all-gather and
//   2 (W-1)/W for all-reduce, so that busbw compares with the link bandwidth.

#include <cstdint>
#include <string_view>

#include "hpsim/core/memory_report.h"
#include "hpsim/core/report.h"

namespace hpsim::model {

double algbw_gbps(double bytes, double time_us);
// Bus-bandwidth factor of a collective over W ranks ("all_to_all", "all_to_all_v", "all_gather",
// "all_reduce"); 0 for W = 1.
double busbw_factor(std::string_view collective, std::int64_t num_ranks);

struct StrategySummary {
  double layer_forward_us = 0;
  double layer_backward_us = 0;
  double layer_total_us = 0;
  double compute_us = 0;  // sum over compute stages of their max over ranks
  double comm_us = 0;     // sum over collective stages of their max over ranks (waits included)

  // Forward dispatch (the all-to-all that carries the tokens to the experts).
  double dispatch_sent_max = 0;   // bytes, off-diagonal, most sending rank
  double dispatch_sent_mean = 0;  // bytes, mean over ranks
  double dispatch_send_imbalance = 1;
  double dispatch_received_max = 0;
  double dispatch_receive_imbalance = 1;
  double dispatch_busbw_gbps = 0;  // max(sent, received) bytes of the bottleneck rank / dispatch time
  // All data all-to-alls of the layer (dispatch, combine and both backward), bottleneck rank.
  double layer_a2a_bytes_max = 0;  // sum over phases of max(max_sent, max_received)
  double metadata_bytes_per_rank = 0;

  // Memory: the rank with the highest peak, and its parts.
  core::RankMemory peak_rank;
  double peak_max = 0;
  double capacity_bytes = 0;
  std::int64_t num_over_capacity = 0;

  double step_us = 0;
  double tokens_per_second = 0;
  double hours_for_budget = 0;
};

StrategySummary summarize(const core::StrategyReport& report);

// HP value / EP value; 0 when the EP value is 0.
double ratio(double hp, double ep);

}  // namespace hpsim::model
