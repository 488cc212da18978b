#include <gtest/gtest.h>

#include <string>

#include "hpsim/core/presets.h"
#include "hpsim/core/validate.h"

namespace hpsim::core {
namespace {

std::string only_error(const Scenario& s) {
  auto errors = check_scenario(s);
  if (errors.size() != 1) {
    std::string all;
    for (const auto& e : errors) all += e.to_string() + "; ";
    return "expected one error, got " + std::to_string(errors.size()) + ": " + all;
  }
  return errors[0].to_string();
}

TEST(Validate, EveryPresetIsValid) {
  for (const auto& p : scenario_presets()) {
    auto s = scenario_preset(p.name).value();
    EXPECT_TRUE(check_scenario(s).empty()) << p.name << ": " << only_error(s);
  }
}

TEST(Validate, TopKAboveExpertsIsRejected) {
  Scenario s = default_scenarios().front();
  s.model.top_k = 800;
  EXPECT_EQ(only_error(s), "model.top_k: must be <= model.num_experts (768), got 800");
}

TEST(Validate, HpNeedsWDividingH) {
  Scenario s = default_scenarios().front();
  s.cluster = cluster_preset("h100-16x8").value();
  s.parallel = {Strategy::kHp, 6};
  EXPECT_EQ(only_error(s), "parallel.num_ranks: must divide model.num_heads (8) for HP (each rank owns H/W heads), got 6");
}

TEST(Validate, EpNeedsWDividingE) {
  Scenario s = default_scenarios().front();
  s.cluster = cluster_preset("h100-128x8").value();
  s.parallel = {Strategy::kEp, 1000};
  EXPECT_EQ(only_error(s),
            "parallel.num_ranks: must divide model.num_experts (768) for EP (each rank owns E/W experts), got 1000");
}

TEST(Validate, MoreRanksThanGpusIsRejected) {
  Scenario s = default_scenarios().front();
  s.parallel = {Strategy::kEp, 16};
  EXPECT_EQ(only_error(s), "parallel.num_ranks: must be <= the cluster's GPUs (1 nodes x 8 = 8), got 16");
}

TEST(Validate, NonPositiveSizesAreEachNamed) {
  Scenario s = default_scenarios().front();
  s.model.d_model = 0;
  s.workload.tokens_per_rank = -5;
  s.cluster.intra_node.bandwidth_gbps = 0;
  auto errors = check_scenario(s);
  ASSERT_EQ(errors.size(), 3u);
  EXPECT_EQ(errors[0].to_string(), "model.d_model: must be > 0, got 0");
  EXPECT_EQ(errors[1].to_string(), "cluster.intra_node.bandwidth_gbps: must be > 0, got 0");
  EXPECT_EQ(errors[2].to_string(), "workload.tokens_per_rank: must be > 0, got -5");
}

TEST(Validate, TraceRoutingNeedsAFile) {
  Scenario s = default_scenarios().front();
  s.workload.routing = Routing::kTrace;
  EXPECT_EQ(only_error(s), "workload.trace_file: must name a routing-counts file when workload.routing is \"trace\"");
}

TEST(Validate, SkewWithoutZipfIsRejectedNotIgnored) {
  Scenario s = default_scenarios().front();
  s.workload.zipf_skew = 1.5;
  EXPECT_EQ(only_error(s), "workload.zipf_skew: must be 0 unless workload.routing is \"zipf\"");
}

TEST(Validate, StrategyRulesCanBeAskedForTheOtherStrategy) {
  Scenario s = scenario_preset("ep-zipf1-h200-128x8").value();
  EXPECT_TRUE(check_strategy(s, Strategy::kEp).empty());
  ASSERT_EQ(check_strategy(s, Strategy::kHp).size(), 1u);
}

// The smallest profile check_profile accepts.
Profile minimal_profile() {
  Profile p;
  p.name = std::string(1, 'x');  // (moved in: copying a literal here trips a -Wrestrict false positive of GCC 12)
  p.gpu = std::string(1, 'g');
  p.bf16_tflops = p.fp32_tflops = p.hbm_gbps = 1;
  return p;
}

TEST(Validate, ProfileEfficiencyMustBeAFraction) {
  Profile p = minimal_profile();
  p.collectives["intra_node"]["all_to_all"] = {1, 1.5, 0, {}};
  auto errors = check_profile(p);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].to_string(), "collectives.intra_node.all_to_all.efficiency: must be in (0, 1], got 1.5");
}

// A large-message line must be faster than the first (else the envelope is the first line alone
// at large sizes) and its latency not negative.
TEST(Validate, ProfileLargeMessageLineMustBeTheFasterOne) {
  Profile p = minimal_profile();
  p.collectives["intra_node"]["all_to_all"] = {10, 0.5, 0, {}, 20, 0.8};
  EXPECT_TRUE(check_profile(p).empty());
  p.collectives["intra_node"]["all_to_all"] = {10, 0.5, 0, {}, -1, 0.4};
  auto errors = check_profile(p);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].to_string(), "collectives.intra_node.all_to_all.large.alpha_us: must be >= 0, got -1");
  EXPECT_EQ(errors[1].to_string(), "collectives.intra_node.all_to_all.large.efficiency: must be in (efficiency = 0.5, 1], got 0.4");
}

TEST(Validate, ProfileHostSyncMustNotBeNegative) {
  Profile p = minimal_profile();
  p.host_sync_us = 0;
  EXPECT_TRUE(check_profile(p).empty());
  p.host_sync_us = -3;
  auto errors = check_profile(p);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].to_string(), "host_sync_us: must be >= 0, got -3");
}

TEST(Validate, ProfileKernelNeedsARateAndTheSelectionRateIsOne) {
  Profile p = minimal_profile();
  p.kernels["hp_router_fwd"] = {5, 0, 0, 0, {}, 1400};  // a selection rate alone is a rate
  EXPECT_TRUE(check_profile(p).empty());
  p.kernels["hp_router_fwd"].select_gps = -1;
  auto errors = check_profile(p);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].to_string(), "kernels.hp_router_fwd.select_gps: must be >= 0, got -1");
  EXPECT_EQ(errors[1].to_string(), "kernels.hp_router_fwd: needs tflops, gbps or select_gps > 0 (else its time is constant)");
}

}  // namespace
}  // namespace hpsim::core
