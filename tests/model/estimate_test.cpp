#include <gtest/gtest.h>

#include "hpsim/core/presets.h"
#include "hpsim/core/validate.h"
#include "hpsim/model/cost.h"
#include "hpsim/model/data_files.h"
#include "hpsim/model/estimate.h"
#include "hpsim/model/step.h"

namespace hpsim::model {
namespace {

// The datasheet profile: these tests' expectations are about the model, not about a measurement.
const core::Profile& shipped_profile() {
  static const core::Profile p = load_model_profile("h200-datasheet").value();
  return p;
}

core::StrategyReport run(const core::Scenario& s, core::Strategy strategy) {
  auto r = estimate_strategy(s, shipped_profile(), strategy);
  HPSIM_ASSERT(r.has_value(), "{}", r.error().message);
  return *r;
}

TEST(ShippedProfiles, LoadValidateAndCoverEveryFamily) {
  for (const char* name : {"h200-datasheet", "h100-datasheet"}) {
    auto p = load_model_profile(name);
    ASSERT_TRUE(p) << p.error().message;
    EXPECT_EQ(p->source, core::ProfileSource::kDatasheet);
    EXPECT_NE(p->note.find("DATASHEET"), std::string::npos);
    EXPECT_TRUE(missing_profile_entries(*p).empty());
    for (const auto& [family, fit] : p->kernels) EXPECT_GT(fit.tflops + fit.gbps, 0) << family;
  }
  // The default is the profile measured on two H200: complete, labelled measured, with its kernel
  // fits' points and its intra-node collectives measured (points, and a large-message line).
  EXPECT_EQ(default_profile_name(), "h200x2-measured");
  auto measured = load_default_profile();
  ASSERT_TRUE(measured) << measured.error().message;
  EXPECT_EQ(measured->name, "h200x2-measured");
  EXPECT_EQ(measured->source, core::ProfileSource::kMeasured);
  EXPECT_TRUE(missing_profile_entries(*measured).empty());
  EXPECT_FALSE(measured->kernels.at("hp_expert_mlp_bwd").points.empty());
  const auto& all_to_all = measured->collectives.at("intra_node").at("all_to_all_v");
  EXPECT_GE(all_to_all.points.size(), 4u);
  EXPECT_TRUE(all_to_all.has_large_line());
  EXPECT_NE(measured->note.find("intra_node measured on 2 GPUs"), std::string::npos);
}

TEST(ShippedProfiles, UnknownNameOrFileIsAnError) {
  auto p = load_model_profile("no-such-profile");
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().message.find("no-such-profile"), std::string::npos);
}

TEST(Estimate, ForwardPlusBackwardIsTheLayerTotal) {
  for (const auto& s : core::default_scenarios()) {
    for (auto strategy : {core::Strategy::kEp, core::Strategy::kHp}) {
      const auto r = run(s, strategy);
      EXPECT_GT(r.layer_forward_us, 0);
      EXPECT_GT(r.layer_backward_us, 0);
      EXPECT_NEAR(r.layer_forward_us + r.layer_backward_us, r.layer_total_us, 1e-9 * r.layer_total_us);
      ASSERT_TRUE(r.timeline.has_value());
      EXPECT_NEAR(static_cast<double>(r.timeline->end_ns()), r.layer_total_us * 1e3, 1.0);
      // Without overlap the stages of a rank add up to the layer.
      double sum = 0;
      for (const auto& st : r.stages) sum += st.max_us;
      EXPECT_GE(sum + 1e-6, r.layer_total_us);
    }
  }
}

TEST(Estimate, HpStagesAreIndependentOfSkewButTheExpertMlpAndEpGrowsWithIt) {
  auto uniform = core::default_scenarios().front();
  auto skewed = core::default_scenarios().back();
  // HP's skew stays inside each rank: only the expert MLP (segments and row tiles) sees it.
  const auto hp_uniform = run(uniform, core::Strategy::kHp);
  const auto hp_skewed = run(skewed, core::Strategy::kHp);
  ASSERT_EQ(hp_uniform.stages.size(), hp_skewed.stages.size());
  for (std::size_t i = 0; i < hp_uniform.stages.size(); ++i) {
    const auto& a = hp_uniform.stages[i];
    const auto& b = hp_skewed.stages[i];
    if (a.stage == "expert_mlp" || a.stage == "expert_mlp_bwd") {
      EXPECT_NE(a.flops, b.flops) << a.stage;  // tile-padded rows of longer and shorter segments
    } else {
      EXPECT_DOUBLE_EQ(a.max_us, b.max_us) << a.stage;
    }
  }
  EXPECT_GT(run(skewed, core::Strategy::kEp).layer_total_us, run(uniform, core::Strategy::kEp).layer_total_us);
}

TEST(Estimate, HotRankSetsTheEndOfEpCollectives) {
  const auto r = run(core::default_scenarios().back(), core::Strategy::kEp);
  for (const auto& st : r.stages) {
    if (st.stage == "combine") {
      EXPECT_GT(st.max_us, st.mean_us);  // the others wait for rank 0
    }
    if (st.stage == "expert_mlp") {
      EXPECT_GT(st.max_us, 2 * st.mean_us);
    }
  }
  EXPECT_GT(r.traffic[1].receive_imbalance(), 2.0);  // dispatch: rank 0 receives most
}

TEST(Estimate, HpDispatchCostsAlphaPlusBytesOverBandwidth) {
  const auto s = core::default_scenarios().front();
  const auto r = run(s, core::Strategy::kHp);
  const auto& fit = shipped_profile().collectives.at("intra_node").at("all_to_all");
  const double bytes = 16384.0 * (8 / 8) * 128 * 2 * 7;  // n (H/W) h s (W-1)
  for (const auto& st : r.stages) {
    if (st.lane != core::Lane::kComm) continue;
    EXPECT_NEAR(st.max_us, fit.alpha_us + bytes / (fit.efficiency * 450e9) * 1e6, 1e-6) << st.stage;
    EXPECT_DOUBLE_EQ(st.bytes, bytes);
  }
}

TEST(Estimate, LeavesOutAStrategyTheScenarioCannotRunWithANote) {
  auto s = core::default_scenarios().front();
  s.model.num_experts = 764;  // 8 does not divide 764: no EP
  auto e = estimate(s, shipped_profile(), {core::Strategy::kEp, core::Strategy::kHp});
  ASSERT_TRUE(e) << e.error().message;
  ASSERT_EQ(e->report.strategies.size(), 1u);
  EXPECT_EQ(e->report.strategies[0].strategy, "hp");
  ASSERT_EQ(e->notes.size(), 1u);
  EXPECT_NE(e->notes[0].find("ep: parallel.num_ranks: must divide model.num_experts (764)"), std::string::npos);
  auto none = estimate(s, shipped_profile(), {core::Strategy::kEp});
  EXPECT_FALSE(none);
}

TEST(Estimate, ReportCarriesTrafficMetadataAndMemory) {
  auto e = estimate(core::default_scenarios().front(), shipped_profile(), {core::Strategy::kEp, core::Strategy::kHp});
  ASSERT_TRUE(e);
  EXPECT_EQ(e->report.engine, "analytic");
  EXPECT_EQ(e->report.profile, "h200-datasheet");
  const auto& ep = e->report.strategies[0];
  const auto& hp = e->report.strategies[1];
  EXPECT_EQ(ep.traffic.size(), 5u);
  EXPECT_EQ(hp.traffic.size(), 4u);
  EXPECT_DOUBLE_EQ(ep.metadata_bytes_per_rank, 7 * 96 * 4.0);  // (W-1) peers x E/W int32 counts
  EXPECT_EQ(hp.metadata_bytes_per_rank, 0);
  EXPECT_EQ(ep.memory.ranks.size(), 8u);
  EXPECT_GT(ep.memory.max_peak(), 0);
  EXPECT_GT(hp.step_us, 0);
}

// ---- Training step -----------------------------------------------------------------------------

TEST(TrainingStep, PassesTokensAndHoursFollowTheTrainingSpec) {
  const auto s = core::default_scenarios().front();  // W = 8 of 8 GPUs, n = 16384, batch 655360, 10B tokens
  auto step = estimate_step(s, shipped_profile(), core::Strategy::kHp, 1000.0);
  ASSERT_TRUE(step) << step.error().message;
  EXPECT_DOUBLE_EQ(step->data_parallel_copies, 1);
  EXPECT_DOUBLE_EQ(step->passes, 655360.0 / (8 * 16384));
  EXPECT_DOUBLE_EQ(step->moe_us, 10 * 1000.0);
  EXPECT_NEAR(step->step_us, step->passes * step->pass_us + step->grad_allreduce_us + step->optimizer_us, 1e-6);
  EXPECT_NEAR(step->tokens_per_second * step->step_us * 1e-6, 655360.0, 1e-6);
  EXPECT_NEAR(step->hours_for_budget * 3600 * step->tokens_per_second, 10e9, 1);
}

TEST(TrainingStep, GrowsWithTheMoeLayerAtPassesTimesMoeLayers) {
  const auto s = core::default_scenarios().front();
  auto a = estimate_step(s, shipped_profile(), core::Strategy::kEp, 1000.0);
  auto b = estimate_step(s, shipped_profile(), core::Strategy::kEp, 3000.0);
  ASSERT_TRUE(a && b);
  EXPECT_NEAR(b->step_us - a->step_us, 2000.0 * 5 * 10, 1e-6);
}

TEST(TrainingStep, AttentionFlopsFollowTheCausalFormula) {
  // Profile with attention at a pure FLOP rate: attention_us = L (2 n T d / F_fwd + 5 n T d / F_bwd).
  core::Profile p = shipped_profile();
  p.kernels["attention_fwd"] = {0, 100, 0, 0, {}};
  p.kernels["attention_bwd"] = {0, 50, 0, 0, {}};
  const auto s = core::default_scenarios().front();
  auto step = estimate_step(s, p, core::Strategy::kHp, 0.0);
  ASSERT_TRUE(step);
  const double nTd = 16384.0 * 2048 * 1024;
  EXPECT_NEAR(step->attention_us, 12 * (2 * nTd / 100e12 + 5 * nTd / 50e12) * 1e6, 1e-6);
}

TEST(TrainingStep, ReplicatedParametersAreCountedOnce) {
  const auto s = core::default_scenarios().front();
  auto ep = estimate_step(s, shipped_profile(), core::Strategy::kEp, 0.0);
  auto hp = estimate_step(s, shipped_profile(), core::Strategy::kHp, 0.0);
  ASSERT_TRUE(ep && hp);
  const double d = 1024, V = 50304, F = 4096;
  const double common = 2 * V * d + 12 * 4 * d * d + 2 * 2 * d * F;
  EXPECT_DOUBLE_EQ(ep->replicated_params, common + 10 * d * 768);           // + EP routers
  EXPECT_DOUBLE_EQ(hp->replicated_params, common + 10 * 2 * d * 8 * 128);   // + W_in, W_out
  EXPECT_DOUBLE_EQ(ep->sharded_params, 10 * 96 * 2 * d * 256);
  EXPECT_DOUBLE_EQ(hp->sharded_params, 10 * (768 * 2 * 128 * 256 + 128 * 768));
}

}  // namespace
}  // namespace hpsim::model

namespace hpsim::model {
namespace {

TEST(TrainingStep, ABatchSmallerThanOnePassStillCostsOnePass) {
  auto s = core::default_scenarios().front();
  s.training.global_batch_tokens = 1000;  // far below G n = 8 * 16384
  auto step = estimate_step(s, load_default_profile().value(), core::Strategy::kHp, 1000.0);
  ASSERT_TRUE(step);
  EXPECT_DOUBLE_EQ(step->passes, 1.0);
  EXPECT_DOUBLE_EQ(step->tokens_per_step, 8.0 * 16384);
  EXPECT_NEAR(step->tokens_per_second * step->step_us * 1e-6, 8.0 * 16384, 1e-6);
}

}  // namespace
}  // namespace hpsim::model
