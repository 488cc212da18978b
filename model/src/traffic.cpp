// Traffic matrices of EP and HP (formulas in traffic.h and docs/model.md, "Traffic").
#include "hpsim/model/traffic.h"

#include <algorithm>

namespace hpsim::model {

const core::TrafficMatrix* LayerTraffic::find(std::string_view phase) const {
  auto it = std::find_if(phases.begin(), phases.end(), [&](const core::TrafficMatrix& m) { return m.phase == phase; });
  return it == phases.end() ? nullptr : &*it;
}

RankBytes rank_bytes(const core::TrafficMatrix& m) {
  RankBytes out;
  const auto W = static_cast<std::size_t>(m.num_ranks);
  out.sent.assign(W, 0.0);
  out.received.assign(W, 0.0);
  double* __restrict received = out.received.data();
  for (std::size_t src = 0; src < W; ++src) {
    const double* __restrict row = &m.bytes[src * W];
    double row_sum = 0;
    for (std::size_t dst = 0; dst < W; ++dst) row_sum += row[dst];
    for (std::size_t dst = 0; dst < W; ++dst) received[dst] += row[dst];
    out.sent[src] = row_sum - row[src];
  }
  for (std::size_t r = 0; r < W; ++r) {
    out.received[r] -= m.bytes[r * W + r];
    out.total += out.sent[r];
    out.max_sent = std::max(out.max_sent, out.sent[r]);
    out.max_received = std::max(out.max_received, out.received[r]);
  }
  return out;
}

core::TrafficMatrix transpose(const core::TrafficMatrix& m, std::string_view phase) {
  core::TrafficMatrix t(std::string(phase), m.num_ranks);
  for (std::int64_t src = 0; src < m.num_ranks; ++src) {
    for (std::int64_t dst = 0; dst < m.num_ranks; ++dst) t.at(dst, src) = m.at(src, dst);
  }
  return t;
}

core::TrafficMatrix ep_dispatch_matrix(const RoutingWorkload& workload, std::int64_t d, std::int64_t s) {
  const std::int64_t W = workload.num_ranks;
  core::TrafficMatrix m(std::string(kPhaseDispatch), W);
  const double row_bytes = static_cast<double>(d) * static_cast<double>(s);
  for (std::size_t i = 0; i < m.bytes.size(); ++i) m.bytes[i] = workload.rank_slots[i] * row_bytes;
  return m;
}

core::TrafficMatrix ep_metadata_matrix(std::int64_t num_ranks, std::int64_t num_experts) {
  core::TrafficMatrix m(std::string(kPhaseMetadata), num_ranks);
  const double per_pair = static_cast<double>(num_experts / num_ranks) * kMetadataCountBytes;
  std::fill(m.bytes.begin(), m.bytes.end(), per_pair);
  return m;
}

core::TrafficMatrix hp_dispatch_matrix(std::int64_t num_ranks, std::int64_t n, std::int64_t H, std::int64_t h,
                                       std::int64_t s) {
  HPSIM_ASSERT(num_ranks > 0 && H % num_ranks == 0, "HP needs W dividing H, got W={} H={}", num_ranks, H);
  core::TrafficMatrix m(std::string(kPhaseDispatch), num_ranks);
  const double per_pair = static_cast<double>(n) * static_cast<double>(H / num_ranks) * static_cast<double>(h) *
                          static_cast<double>(s);
  std::fill(m.bytes.begin(), m.bytes.end(), per_pair);
  return m;
}

LayerTraffic layer_traffic(const core::ModelSpec& model, const RoutingWorkload& workload) {
  LayerTraffic out;
  const std::int64_t W = workload.num_ranks;
  core::TrafficMatrix dispatch;
  if (workload.strategy == core::Strategy::kEp) {
    core::TrafficMatrix meta = ep_metadata_matrix(W, workload.experts_per_group);
    out.metadata_bytes_per_rank = meta.max_sent();
    out.phases.push_back(std::move(meta));
    dispatch = ep_dispatch_matrix(workload, model.d_model, model.bytes_per_element);
  } else {
    dispatch = hp_dispatch_matrix(W, workload.tokens_per_rank, model.num_heads, model.head_dim, model.bytes_per_element);
  }
  core::TrafficMatrix combine = transpose(dispatch, kPhaseCombine);
  core::TrafficMatrix combine_bwd = dispatch;
  combine_bwd.phase = std::string(kPhaseCombineBwd);
  core::TrafficMatrix dispatch_bwd = combine;
  dispatch_bwd.phase = std::string(kPhaseDispatchBwd);
  out.phases.push_back(std::move(dispatch));
  out.phases.push_back(std::move(combine));
  out.phases.push_back(std::move(combine_bwd));
  out.phases.push_back(std::move(dispatch_bwd));
  return out;
}

double uniform_hp_ep_dispatch_ratio(const core::ModelSpec& model) {
  return static_cast<double>(model.num_heads * model.head_dim) / static_cast<double>(model.top_k * model.d_model);
}

}  // namespace hpsim::model
