// Printed metrics (metrics.h, docs/metrics.md).
#include "hpsim/model/metrics.h"

#include <algorithm>

#include "hpsim/core/units.h"
#include "hpsim/model/traffic.h"

namespace hpsim::model {

double algbw_gbps(double bytes, double time_us) {
  return time_us > 0 ? bytes / (time_us / core::kUsPerS) / core::kGB : 0.0;
}

double busbw_factor(std::string_view collective, std::int64_t num_ranks) {
  if (num_ranks <= 1) return 0.0;
  const double frac = static_cast<double>(num_ranks - 1) / static_cast<double>(num_ranks);
  return collective == "all_reduce" ? 2 * frac : frac;
}

StrategySummary summarize(const core::StrategyReport& r) {
  StrategySummary s;
  s.layer_forward_us = r.layer_forward_us;
  s.layer_backward_us = r.layer_backward_us;
  s.layer_total_us = r.layer_total_us;
  double dispatch_us = 0;
  for (const auto& st : r.stages) {
    (st.lane == core::Lane::kCompute ? s.compute_us : s.comm_us) += st.max_us;
    if (st.stage == kPhaseDispatch) dispatch_us = st.max_us;
  }
  for (const auto& m : r.traffic) {
    if (m.phase == kPhaseMetadata) continue;
    const RankBytes b = rank_bytes(m);
    s.layer_a2a_bytes_max += std::max(b.max_sent, b.max_received);
    if (m.phase != kPhaseDispatch) continue;
    const double mean = m.num_ranks > 0 ? b.total / static_cast<double>(m.num_ranks) : 0.0;
    s.dispatch_sent_max = b.max_sent;
    s.dispatch_sent_mean = mean;
    // max / mean, 1 when nothing moves (as TrafficMatrix::send_imbalance).
    s.dispatch_send_imbalance = mean > 0 ? b.max_sent / mean : 1.0;
    s.dispatch_received_max = b.max_received;
    s.dispatch_receive_imbalance = mean > 0 ? b.max_received / mean : 1.0;
    s.dispatch_busbw_gbps = algbw_gbps(std::max(b.max_sent, b.max_received), dispatch_us);
  }
  s.metadata_bytes_per_rank = r.metadata_bytes_per_rank;
  for (const auto& rank : r.memory.ranks) {
    if (rank.peak() > s.peak_max) {
      s.peak_max = rank.peak();
      s.peak_rank = rank;
    }
  }
  s.capacity_bytes = r.memory.capacity_bytes;
  s.num_over_capacity = r.memory.num_over_capacity();
  s.step_us = r.step_us;
  s.tokens_per_second = r.tokens_per_second;
  s.hours_for_budget = r.hours_for_budget;
  return s;
}

double ratio(double hp, double ep) { return ep != 0 ? hp / ep : 0.0; }

}  // namespace hpsim::model
