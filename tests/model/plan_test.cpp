#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "hpsim/core/presets.h"
#include "hpsim/model/cost.h"
#include "hpsim/model/data_files.h"
#include "hpsim/model/estimate.h"
#include "hpsim/model/plan_builder.h"
#include "hpsim/model/traffic.h"

namespace hpsim::model {
namespace {

// A profile with round numbers: every kernel alpha 2 us, 100 TFLOP/s, 1000 GB/s; every
// collective alpha 10 us at efficiency 0.5.
core::Profile round_profile() {
  core::Profile p;
  p.name = "round";
  p.gpu = "test";
  p.bf16_tflops = 100;
  p.fp32_tflops = 10;
  p.hbm_gbps = 1000;
  for (const auto& info : kKernelFamilies) p.kernels[std::string(info.name)] = {2.0, 100.0, 1000.0, 0, {}};
  for (auto tier : kTiers) {
    for (auto c : kRequiredCollectives) p.collectives[std::string(tier)][std::string(c)] = {10.0, 0.5, 0, {}};
  }
  return p;
}

core::Scenario default_uniform() { return core::default_scenarios().front(); }

TEST(LayerPlan, StagesFollowTheDesignOrder) {
  std::vector<std::string> ep, hp;
  for (const auto& t : layer_stages(core::Strategy::kEp)) ep.emplace_back(t.name);
  for (const auto& t : layer_stages(core::Strategy::kHp)) hp.emplace_back(t.name);
  EXPECT_EQ(ep, (std::vector<std::string>{"router", "metadata", "permute", "dispatch", "regroup", "expert_mlp",
                                          "unregroup", "combine", "unpermute", "unpermute_bwd", "combine_bwd",
                                          "unregroup_bwd", "expert_mlp_bwd", "regroup_bwd", "dispatch_bwd",
                                          "permute_bwd", "router_bwd"}));
  EXPECT_EQ(hp, (std::vector<std::string>{"w_in", "dispatch", "router", "group", "expert_mlp", "weighted_sum",
                                          "combine", "w_out", "w_out_bwd", "combine_bwd", "weighted_sum_bwd",
                                          "expert_mlp_bwd", "group_bwd", "router_bwd", "dispatch_bwd", "w_in_bwd"}));
}

TEST(LayerPlan, DepsPointBackwardsAndChainEachRank) {
  PlanOptions options;
  options.num_layers = 3;
  options.micro_batches = 2;
  for (auto strategy : {core::Strategy::kEp, core::Strategy::kHp}) {
    auto plan = build_layer_plan(default_uniform(), round_profile(), strategy, options);
    ASSERT_TRUE(plan) << plan.error().message;
    const auto per_layer = static_cast<std::int64_t>(layer_stages(strategy).size());
    ASSERT_EQ(static_cast<std::int64_t>(plan->stages.size()), per_layer * 3 * 2);
    for (std::size_t i = 0; i < plan->stages.size(); ++i) {
      const auto& st = plan->stages[i];
      EXPECT_EQ(st.id, static_cast<std::int64_t>(i));
      for (auto dep : st.deps) EXPECT_LT(dep, st.id);
      if (i > 0) {
        EXPECT_EQ(st.deps, std::vector<std::int64_t>{st.id - 1});
      }
    }
    // Micro-batch 0: layers 0, 1, 2 forward, then 2, 1, 0 backward.
    EXPECT_EQ(plan->stages.front().layer, 0);
    std::size_t forward_per_layer = 0;
    for (const auto& t : layer_stages(strategy)) forward_per_layer += t.phase == core::Phase::kForward ? 1 : 0;
    const auto& first_backward = plan->stages[3 * forward_per_layer];
    EXPECT_EQ(plan->stages[3 * forward_per_layer - 1].phase, core::Phase::kForward);
    EXPECT_EQ(plan->stages[3 * forward_per_layer - 1].layer, 2);
    EXPECT_EQ(first_backward.phase, core::Phase::kBackward);
    EXPECT_EQ(first_backward.layer, 2);
    EXPECT_EQ(plan->stages.back().micro_batch, 1);
    EXPECT_EQ(plan->stages.back().layer, 0);
  }
}

TEST(LayerPlan, ForwardOnlyLeavesOutTheBackward) {
  PlanOptions options;
  options.include_backward = false;
  auto plan = build_layer_plan(default_uniform(), round_profile(), core::Strategy::kHp, options);
  ASSERT_TRUE(plan);
  EXPECT_EQ(plan->stages.size(), 8u);
  for (const auto& st : plan->stages) EXPECT_EQ(st.phase, core::Phase::kForward);
}

TEST(LayerPlan, ComputeDurationsComeFromTheKernelFormula) {
  const auto s = default_uniform();
  auto plan = build_layer_plan(s, round_profile(), core::Strategy::kHp);
  ASSERT_TRUE(plan);
  const auto& w_in = plan->stages[0];
  EXPECT_EQ(w_in.kernel, "hp_w_in");
  // W_in: 2 n d (H h) FLOPs and (n d + d H h + n H h) s bytes.
  const double n = 16384, d = 1024, Hh = 1024, sb = 2;
  EXPECT_DOUBLE_EQ(w_in.flops[0], 2 * n * d * Hh);
  EXPECT_DOUBLE_EQ(w_in.bytes[0], (n * d + d * Hh + n * Hh) * sb);
  EXPECT_NEAR(w_in.duration_ns[0], (2.0 + 2 * n * d * Hh / 100e12 * 1e6 + (n * d + d * Hh + n * Hh) * sb / 1000e9 * 1e6) * 1e3,
              1e-6);
}

TEST(LayerPlan, CollectivesCarryTheirTrafficAndTier) {
  auto s = default_uniform();
  auto plan = build_layer_plan(s, round_profile(), core::Strategy::kEp);
  ASSERT_TRUE(plan);
  auto workload = build_workload(s, core::Strategy::kEp);
  ASSERT_TRUE(workload);
  const auto traffic = layer_traffic(s.model, *workload);
  std::set<std::string> seen;
  for (const auto& st : plan->stages) {
    if (st.kind != StageKind::kCollective) continue;
    seen.insert(st.name);
    EXPECT_EQ(st.traffic.bytes, traffic.find(st.name)->bytes) << st.name;
    EXPECT_EQ(st.tier, "intra_node");
    EXPECT_DOUBLE_EQ(st.bandwidth_gbps, 0.5 * 450);
    EXPECT_DOUBLE_EQ(st.alpha_ns, 10e3);
    EXPECT_EQ(st.collective, st.name == "metadata" ? "all_to_all" : "all_to_all_v");
  }
  EXPECT_EQ(seen, (std::set<std::string>{"metadata", "dispatch", "combine", "combine_bwd", "dispatch_bwd"}));
  // 16 ranks do not fit a node of 8: the inter-node tier.
  s.cluster = core::cluster_preset("h200-16x8").value();
  s.parallel.num_ranks = 16;
  auto wide = build_layer_plan(s, round_profile(), core::Strategy::kEp);
  ASSERT_TRUE(wide);
  EXPECT_EQ(wide->stages[1].tier, "inter_node");
  EXPECT_DOUBLE_EQ(wide->stages[1].bandwidth_gbps, 0.5 * 50);
}

// A profile whose all-to-alls have a large-message line: each collective stage takes the line that
// is faster at its own bottleneck bytes (EP's metadata, a few KB: the first; its data all-to-alls,
// tens of MB: the second), and so does the analytic time of the stage.
TEST(LayerPlan, EachCollectiveTakesTheLineOfItsMessageSize) {
  auto s = default_uniform();
  auto profile = round_profile();
  for (auto c : kRequiredCollectives) {
    auto& fit = profile.collectives["intra_node"][std::string(c)];
    fit.large_alpha_us = 30.0;
    fit.large_efficiency = 0.9;
  }
  auto plan = build_layer_plan(s, profile, core::Strategy::kEp);
  ASSERT_TRUE(plan);
  for (const auto& st : plan->stages) {
    if (st.kind != StageKind::kCollective) continue;
    const double bytes = std::max(st.traffic.max_sent(), st.traffic.max_received());
    const bool large = 30.0 + bytes / (0.9 * 450e3) < 10.0 + bytes / (0.5 * 450e3);
    EXPECT_EQ(large, st.name != "metadata") << st.name << " " << bytes;
    EXPECT_DOUBLE_EQ(st.alpha_ns, large ? 30e3 : 10e3) << st.name;
    EXPECT_DOUBLE_EQ(st.efficiency, large ? 0.9 : 0.5) << st.name;
    EXPECT_DOUBLE_EQ(st.bandwidth_gbps, (large ? 0.9 : 0.5) * 450) << st.name;
  }
}

TEST(LayerPlan, MissingKernelFamilyIsNamed) {
  auto p = round_profile();
  p.kernels.erase("hp_group");
  auto plan = build_layer_plan(default_uniform(), p, core::Strategy::kHp);
  ASSERT_FALSE(plan);
  EXPECT_EQ(plan.error().message, "profile \"round\": kernels.hp_group: missing (every family of docs/model.md is needed)");
}

// ---- The analytic walk -------------------------------------------------------------------------

TEST(AnalyticWalk, HandComputedTinyPlan) {
  // Two ranks: compute [10, 30] ns; an all-to-all (alpha 5 ns, 10 GB/s = 10 bytes/ns) with rank 0
  // sending 100 and rank 1 sending 200 bytes; compute [7, 1] ns.
  LayerPlan plan;
  plan.strategy = "hp";
  plan.num_ranks = 2;
  PlanStage a;
  a.id = 0;
  a.name = "a";
  a.duration_ns = {10, 30};
  a.flops = {0, 0};
  a.bytes = {0, 0};
  PlanStage c;
  c.id = 1;
  c.name = "x";
  c.kind = StageKind::kCollective;
  c.lane = core::Lane::kComm;
  c.traffic = core::TrafficMatrix("dispatch", 2);
  c.traffic.at(0, 1) = 100;
  c.traffic.at(1, 0) = 200;
  c.alpha_ns = 5;
  c.bandwidth_gbps = 10;
  c.deps = {0};
  PlanStage b = a;
  b.id = 2;
  b.name = "b";
  b.duration_ns = {7, 1};
  b.deps = {1};
  plan.stages = {a, c, b};

  const auto walk = walk_plan(plan);
  // Rank 0: ready 10, 10 + 5 + max(100 sent, 200 received) / 10 = 35. Rank 1: 30 + 5 + 20 = 55.
  // Both leave the all-to-all at 55; then 62 and 56.
  EXPECT_DOUBLE_EQ(walk.end_ns[1][0], 55);
  EXPECT_DOUBLE_EQ(walk.end_ns[1][1], 55);
  EXPECT_DOUBLE_EQ(walk.end_ns[2][0], 62);
  EXPECT_DOUBLE_EQ(walk.end_ns[2][1], 56);
  EXPECT_DOUBLE_EQ(walk.end_ns_max(), 62);

  const auto costs = stage_costs(plan, walk);
  ASSERT_EQ(costs.size(), 3u);
  EXPECT_DOUBLE_EQ(costs[1].max_us, 0.045);   // rank 0 waits from 10 to 55
  EXPECT_DOUBLE_EQ(costs[1].mean_us, 0.035);  // (45 + 25) / 2
  EXPECT_DOUBLE_EQ(costs[1].bytes, 200);

  const auto timeline = analytic_timeline(plan, walk);
  EXPECT_EQ(timeline.source, "analytic");
  ASSERT_EQ(timeline.ranks.size(), 2u);
  EXPECT_EQ(timeline.ranks[1].spans[1].start_ns, 30);
  EXPECT_EQ(timeline.ranks[1].spans[1].end_ns, 55);
  EXPECT_EQ(timeline.ranks[1].spans[1].bytes, 200);
  EXPECT_EQ(timeline.end_ns(), 62);
}

TEST(AnalyticWalk, HpLayerIsTheSumOfItsStages) {
  // HP is balanced: no rank waits, so the layer is the sum of the kernel times plus, for each of
  // the four all-to-alls, alpha + n (H/W) h s (W-1) / (efficiency * link).
  const auto s = default_uniform();
  auto plan = build_layer_plan(s, round_profile(), core::Strategy::kHp);
  ASSERT_TRUE(plan);
  double want_ns = 0;
  for (const auto& st : plan->stages) {
    if (st.kind == StageKind::kCompute) want_ns += st.duration_ns[3];
  }
  const double a2a_bytes = 16384.0 * 1 * 128 * 2 * 7;
  want_ns += 4 * (10e3 + a2a_bytes / (0.5 * 450));
  EXPECT_NEAR(walk_plan(*plan).end_ns_max(), want_ns, 1e-6 * want_ns);
}

}  // namespace
}  // namespace hpsim::model
