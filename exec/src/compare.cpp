#include "hpsim/exec/compare.h"

#include <algorithm>
#include <limits>
#include <map>

namespace hpsim::exec {

double relative_error(double predicted, double measured) {
  if (measured == 0) return predicted == 0 ? 0.0 : std::numeric_limits<double>::infinity();
  return (predicted - measured) / measured;
}

std::vector<StageTime> stage_times(const core::Timeline& timeline) {
  std::vector<StageTime> out;
  std::map<std::pair<std::string, int>, std::size_t> index;
  const auto num_ranks = static_cast<double>(std::max<std::size_t>(1, timeline.ranks.size()));
  // Per rank totals, then max and mean over ranks.
  std::vector<std::vector<double>> per_rank;
  for (std::size_t r = 0; r < timeline.ranks.size(); ++r) {
    for (const auto& span : timeline.ranks[r].spans) {
      const auto key = std::make_pair(span.stage, static_cast<int>(span.phase));
      auto it = index.find(key);
      if (it == index.end()) {
        it = index.emplace(key, out.size()).first;
        out.push_back({span.stage, span.phase, 0, 0});
        per_rank.emplace_back(timeline.ranks.size(), 0.0);
      }
      per_rank[it->second][r] += static_cast<double>(span.duration_ns()) / 1e3;
    }
  }
  for (std::size_t i = 0; i < out.size(); ++i) {
    double sum = 0;
    for (double v : per_rank[i]) {
      out[i].max_us = std::max(out[i].max_us, v);
      sum += v;
    }
    out[i].mean_us = sum / num_ranks;
  }
  return out;
}

TimelineComparison compare_timelines(const core::Timeline& predicted, const core::Timeline& measured) {
  TimelineComparison result;
  const auto pred = stage_times(predicted);
  const auto meas = stage_times(measured);
  auto find = [](const std::vector<StageTime>& v, const std::string& stage, core::Phase phase) -> const StageTime* {
    for (const auto& s : v) {
      if (s.stage == stage && s.phase == phase) return &s;
    }
    return nullptr;
  };
  for (const auto& m : meas) {
    StageComparison c{m.stage, m.phase, 0, m.max_us, 0, true, true};
    if (const StageTime* p = find(pred, m.stage, m.phase)) {
      c.predicted_us = p->max_us;
    } else {
      c.in_predicted = false;
    }
    c.relative_error = relative_error(c.predicted_us, c.measured_us);
    result.stages.push_back(c);
  }
  for (const auto& p : pred) {
    if (find(meas, p.stage, p.phase) == nullptr) {
      StageComparison c{p.stage, p.phase, p.max_us, 0, 0, true, false};
      c.relative_error = relative_error(c.predicted_us, 0);
      result.stages.push_back(c);
    }
  }
  auto total_us = [](const core::Timeline& t) {
    std::int64_t start = std::numeric_limits<std::int64_t>::max();
    for (const auto& r : t.ranks) {
      for (const auto& s : r.spans) start = std::min(start, s.start_ns);
    }
    if (start == std::numeric_limits<std::int64_t>::max()) return 0.0;
    return static_cast<double>(t.end_ns() - start) / 1e3;
  };
  result.predicted_total_us = total_us(predicted);
  result.measured_total_us = total_us(measured);
  result.total_relative_error = relative_error(result.predicted_total_us, result.measured_total_us);
  return result;
}

}  // namespace hpsim::exec
