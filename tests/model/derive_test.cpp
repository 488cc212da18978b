#include "hpsim/model/derive.h"

#include <gtest/gtest.h>

#include "hpsim/core/json.h"
#include "hpsim/model/cost.h"
#include "hpsim/model/data_files.h"

namespace hpsim::model {
namespace {

core::Profile load(const char* name) {
  auto p = load_model_profile(name);
  EXPECT_TRUE(p.has_value()) << name;
  return *p;
}

TEST(DeriveProfile, MovesRatesByTheDatasheetRatiosAndKeepsTheRest) {
  const core::Profile base = load("h200x2-measured");
  core::Profile from = load("h200-datasheet");
  core::Profile to = load("h100-datasheet");
  to.fp32_tflops = from.fp32_tflops / 2;  // a target whose fp32 differs from its bf16, to tell the two apart
  to.bf16_tflops = from.bf16_tflops * 0.75;
  auto d = derive_profile(base, from, to, "test-derived");
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->name, "test-derived");
  EXPECT_EQ(d->source, core::ProfileSource::kDerived);
  EXPECT_EQ(d->gpu, to.gpu);
  EXPECT_NE(d->note.find("DERIVED, not measured"), std::string::npos);
  EXPECT_NE(d->note.find("h200x2-measured"), std::string::npos);
  const double hbm = to.hbm_gbps / from.hbm_gbps;  // 3.35 / 4.8
  EXPECT_NEAR(hbm, 0.698, 1e-3);
  EXPECT_DOUBLE_EQ(d->hbm_gbps, base.hbm_gbps * hbm);
  EXPECT_DOUBLE_EQ(d->bf16_tflops, base.bf16_tflops * 0.75);
  EXPECT_DOUBLE_EQ(d->fp32_tflops, base.fp32_tflops * 0.5);
  for (const auto& [family, fit] : base.kernels) {
    const core::KernelFit& got = d->kernels.at(family);
    const double compute = family.find("router") != std::string::npos ? 0.5 : 0.75;
    EXPECT_DOUBLE_EQ(got.alpha_us, fit.alpha_us) << family;
    EXPECT_DOUBLE_EQ(got.tflops, fit.tflops * compute) << family;
    EXPECT_DOUBLE_EQ(got.select_gps, fit.select_gps * compute) << family;
    EXPECT_DOUBLE_EQ(got.gbps, fit.gbps * hbm) << family;
    EXPECT_TRUE(got.points.empty()) << family;
  }
  for (const auto& [tier, collectives] : base.collectives) {
    for (const auto& [name, fit] : collectives) {
      EXPECT_DOUBLE_EQ(d->collectives.at(tier).at(name).efficiency, fit.efficiency) << tier << " " << name;
      EXPECT_DOUBLE_EQ(d->collectives.at(tier).at(name).alpha_us, fit.alpha_us) << tier << " " << name;
    }
  }
  EXPECT_DOUBLE_EQ(d->host_sync_us, base.host_sync_us);
  // A memory-bound expert MLP backward's time past its fixed cost grows by 1 / 0.698 on the
  // derived profile (whether the fit's byte rate or the copy floor binds).
  const KernelWork bytes_only{0, 1e9};
  const double alpha = base.kernels.at("hp_expert_mlp_bwd").alpha_us;
  const double t_base = kernel_time_us(base.kernels.at("hp_expert_mlp_bwd"), bytes_only, base.hbm_gbps);
  const double t_derived = kernel_time_us(d->kernels.at("hp_expert_mlp_bwd"), bytes_only, d->hbm_gbps);
  EXPECT_NEAR((t_derived - alpha) / (t_base - alpha), 1 / hbm, 1e-9);
  // It round-trips through JSON.
  auto parsed = core::parse_profile(core::to_json(*d));
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->source, core::ProfileSource::kDerived);
}

TEST(DeriveProfile, RefusesAnIncompleteBaseAndSheetsWithoutCeilings) {
  const core::Profile from = load("h200-datasheet");
  const core::Profile to = load("h100-datasheet");
  core::Profile base = load("h200x2-measured");
  core::Profile broken = base;
  broken.kernels.erase("hp_group");
  auto d = derive_profile(broken, from, to, "x");
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message.find("hp_group"), std::string::npos) << d.error().message;
  core::Profile no_hbm = to;
  no_hbm.hbm_gbps = 0;
  auto e = derive_profile(base, from, no_hbm, "x");
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message.find("hbm_gbps"), std::string::npos) << e.error().message;
  EXPECT_FALSE(derive_profile(base, from, to, ""));
}

TEST(DeriveProfile, TheShippedH100ProfileIsDerivedFromTheTwoGpuMeasurement) {
  const core::Profile p = load("h100-derived");
  EXPECT_EQ(p.source, core::ProfileSource::kDerived);
  EXPECT_EQ(p.gpu, "NVIDIA H100");
  EXPECT_TRUE(missing_profile_entries(p).empty());
  EXPECT_NE(p.note.find("h200x2-measured"), std::string::npos);
}

}  // namespace
}  // namespace hpsim::model
