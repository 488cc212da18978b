// Small methods of the vocabulary types and enum names.
#include <algorithm>
#include <numeric>

#include "enums.h"
#include "hpsim/core/memory_report.h"
#include "hpsim/core/timeline.h"
#include "hpsim/core/traffic.h"

namespace hpsim::core {

const char* to_string(Strategy v) { return detail::name_of(detail::kStrategyNames, v).data(); }
const char* to_string(Routing v) { return detail::name_of(detail::kRoutingNames, v).data(); }
const char* to_string(Ownership v) { return detail::name_of(detail::kOwnershipNames, v).data(); }
const char* to_string(WorkloadMode v) { return detail::name_of(detail::kModeNames, v).data(); }
const char* to_string(TopologyKind v) { return detail::name_of(detail::kTopologyNames, v).data(); }
const char* to_string(ProfileSource v) { return detail::name_of(detail::kProfileSourceNames, v).data(); }
const char* to_string(Phase v) { return detail::name_of(detail::kPhaseNames, v).data(); }
const char* to_string(Lane v) { return detail::name_of(detail::kLaneNames, v).data(); }

std::int64_t Timeline::end_ns() const {
  std::int64_t end = 0;
  for (const auto& rank : ranks) {
    for (const auto& span : rank.spans) end = std::max(end, span.end_ns);
  }
  return end;
}

TrafficMatrix::TrafficMatrix(std::string phase_name, std::int64_t ranks)
    : phase(std::move(phase_name)), num_ranks(ranks), bytes(static_cast<std::size_t>(ranks * ranks), 0.0) {}

double TrafficMatrix::sent(std::int64_t rank) const {
  double sum = 0;
  for (std::int64_t dst = 0; dst < num_ranks; ++dst) {
    if (dst != rank) sum += at(rank, dst);
  }
  return sum;
}

double TrafficMatrix::received(std::int64_t rank) const {
  double sum = 0;
  for (std::int64_t src = 0; src < num_ranks; ++src) {
    if (src != rank) sum += at(src, rank);
  }
  return sum;
}

double TrafficMatrix::total_sent() const {
  double sum = 0;
  for (std::int64_t r = 0; r < num_ranks; ++r) sum += sent(r);
  return sum;
}

double TrafficMatrix::max_sent() const {
  double m = 0;
  for (std::int64_t r = 0; r < num_ranks; ++r) m = std::max(m, sent(r));
  return m;
}

double TrafficMatrix::max_received() const {
  double m = 0;
  for (std::int64_t r = 0; r < num_ranks; ++r) m = std::max(m, received(r));
  return m;
}

double TrafficMatrix::send_imbalance() const {
  const double total = total_sent();
  if (num_ranks == 0 || total <= 0) return 1.0;
  return max_sent() / (total / static_cast<double>(num_ranks));
}

double TrafficMatrix::receive_imbalance() const {
  const double total = total_sent();
  if (num_ranks == 0 || total <= 0) return 1.0;
  return max_received() / (total / static_cast<double>(num_ranks));
}

double MemoryReport::max_peak() const {
  double m = 0;
  for (const auto& r : ranks) m = std::max(m, r.peak());
  return m;
}

double MemoryReport::mean_peak() const {
  if (ranks.empty()) return 0;
  double sum = 0;
  for (const auto& r : ranks) sum += r.peak();
  return sum / static_cast<double>(ranks.size());
}

std::int64_t MemoryReport::num_over_capacity() const {
  return std::count_if(ranks.begin(), ranks.end(),
                       [&](const RankMemory& r) { return capacity_bytes > 0 && r.peak() > capacity_bytes; });
}

}  // namespace hpsim::core
