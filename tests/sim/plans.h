#pragma once
// Hand-built layer plans and clusters for the simulator tests.

#include <cmath>
#include <string>
#include <vector>

#include "hpsim/core/scenario.h"
#include "hpsim/model/layer_plan.h"

namespace hpsim::sim::testing {

inline model::PlanStage compute(std::string name, std::vector<double> duration_ns, std::vector<std::int64_t> deps,
                                core::Phase phase = core::Phase::kForward) {
  model::PlanStage s;
  s.name = std::move(name);
  s.phase = phase;
  s.lane = core::Lane::kCompute;
  s.kind = model::StageKind::kCompute;
  s.flops = std::vector<double>(duration_ns.size(), 0.0);
  for (std::size_t r = 0; r < duration_ns.size(); ++r) s.flops[r] = 1e6 * duration_ns[r];
  s.duration_ns = std::move(duration_ns);
  s.deps = std::move(deps);
  return s;
}

inline model::PlanStage collective(std::string name, core::TrafficMatrix traffic, double alpha_ns,
                                   std::vector<std::int64_t> deps, core::Phase phase = core::Phase::kForward,
                                   std::string kind = "all_to_all_v") {
  model::PlanStage s;
  s.name = std::move(name);
  s.phase = phase;
  s.lane = core::Lane::kComm;
  s.kind = model::StageKind::kCollective;
  s.collective = std::move(kind);
  s.traffic = std::move(traffic);
  s.alpha_ns = alpha_ns;
  s.deps = std::move(deps);
  return s;
}

inline model::LayerPlan plan_of(std::string strategy, std::int64_t w, std::vector<model::PlanStage> stages) {
  model::LayerPlan p;
  p.strategy = std::move(strategy);
  p.num_ranks = w;
  for (std::size_t i = 0; i < stages.size(); ++i) stages[i].id = static_cast<std::int64_t>(i);
  p.stages = std::move(stages);
  return p;
}

inline core::TrafficMatrix uniform(std::string phase, std::int64_t w, double bytes) {
  core::TrafficMatrix m(std::move(phase), w);
  for (std::int64_t s = 0; s < w; ++s) {
    for (std::int64_t d = 0; d < w; ++d) m.at(s, d) = bytes;
  }
  return m;
}

// Column-constant bytes: every rank sends share[d] * total to rank d (EP dispatch in expectation).
inline core::TrafficMatrix by_destination(std::string phase, const std::vector<double>& share, double total) {
  const auto w = static_cast<std::int64_t>(share.size());
  core::TrafficMatrix m(std::move(phase), w);
  for (std::int64_t s = 0; s < w; ++s) {
    for (std::int64_t d = 0; d < w; ++d) m.at(s, d) = share[static_cast<std::size_t>(d)] * total;
  }
  return m;
}

inline core::TrafficMatrix transpose(const core::TrafficMatrix& m, std::string phase) {
  core::TrafficMatrix t(std::move(phase), m.num_ranks);
  for (std::int64_t s = 0; s < m.num_ranks; ++s) {
    for (std::int64_t d = 0; d < m.num_ranks; ++d) t.at(d, s) = m.at(s, d);
  }
  return t;
}

// Zipf-like shares over ranks: rank r gets weight 1/(r+1)^skew.
inline std::vector<double> zipf_shares(std::int64_t w, double skew) {
  std::vector<double> share(static_cast<std::size_t>(w));
  double sum = 0;
  for (std::int64_t r = 0; r < w; ++r) sum += share[static_cast<std::size_t>(r)] = 1.0 / std::pow(static_cast<double>(r + 1), skew);
  for (double& x : share) x /= sum;
  return share;
}

// An EP-like layer, forward and backward: router, metadata, dispatch (by destination), expert MLP
// (time proportional to the rank's load), combine (the transpose), and the mirror backward.
inline model::LayerPlan ep_like(std::int64_t w, double skew, double tokens_bytes, double expert_ns_at_mean) {
  const std::vector<double> share = zipf_shares(w, skew);
  const auto dispatch = by_destination("dispatch", share, tokens_bytes);
  std::vector<double> expert(static_cast<std::size_t>(w));
  for (std::int64_t r = 0; r < w; ++r) {
    expert[static_cast<std::size_t>(r)] = expert_ns_at_mean * share[static_cast<std::size_t>(r)] * static_cast<double>(w);
  }
  std::vector<double> expert_bwd = expert;
  for (double& x : expert_bwd) x *= 2;
  const std::vector<double> flat(static_cast<std::size_t>(w), 20000.0);
  using core::Phase;
  return plan_of(
      "ep", w,
      {compute("router", flat, {}), collective("metadata", uniform("metadata", w, 4096), 5000, {0}),
       collective("dispatch", dispatch, 8000, {1}), compute("expert_mlp", expert, {2}),
       collective("combine", transpose(dispatch, "combine"), 8000, {3}), compute("ungroup", flat, {4}),
       compute("ungroup", flat, {5}, Phase::kBackward),
       collective("combine", dispatch, 8000, {6}, Phase::kBackward),
       compute("expert_mlp", expert_bwd, {7}, Phase::kBackward),
       collective("dispatch", transpose(dispatch, "dispatch_bwd"), 8000, {8}, Phase::kBackward),
       compute("router", flat, {9}, Phase::kBackward)});
}

// An HP-like layer: equal all-to-alls, equal compute on every rank, forward and backward.
inline model::LayerPlan hp_like(std::int64_t w, double bytes_per_pair) {
  const std::vector<double> flat(static_cast<std::size_t>(w), 30000.0);
  using core::Phase;
  return plan_of("hp", w,
                 {compute("w_in", flat, {}), collective("dispatch", uniform("dispatch", w, bytes_per_pair), 6000, {0}),
                  compute("expert_mlp", flat, {1}), collective("combine", uniform("combine", w, bytes_per_pair), 6000, {2}),
                  compute("w_out", flat, {3}), compute("w_out", flat, {4}, Phase::kBackward),
                  collective("combine", uniform("combine_bwd", w, bytes_per_pair), 6000, {5}, Phase::kBackward),
                  compute("expert_mlp", flat, {6}, Phase::kBackward),
                  collective("dispatch", uniform("dispatch_bwd", w, bytes_per_pair), 6000, {7}, Phase::kBackward),
                  compute("w_in", flat, {8}, Phase::kBackward)});
}

inline core::ClusterSpec cluster(std::int64_t nodes, std::int64_t per_node, std::int64_t nodes_per_leaf,
                                 double oversubscription = 1.0, double intra_gbps = 400, double inter_gbps = 50,
                                 double intra_us = 0, double inter_us = 0) {
  core::ClusterSpec c;
  c.name = "test";
  c.num_nodes = nodes;
  c.gpus_per_node = per_node;
  c.gpu = {"H200", 141};
  c.intra_node = {intra_gbps, intra_us};
  c.inter_node = {inter_gbps, inter_us};
  c.topology = core::TopologyKind::kFatTree;
  c.nodes_per_leaf = nodes_per_leaf;
  c.oversubscription = oversubscription;
  return c;
}

}  // namespace hpsim::sim::testing
