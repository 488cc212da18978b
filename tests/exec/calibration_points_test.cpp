// The calibration's stage counts rebuilt without a GPU (calibration_points.h): the shipped
// measured profiles' stored points are reproduced exactly, so --refit --recount changes a point's
// counts only where the model counts differently; shapes that are not calibration labels are
// errors naming the point.
#include "hpsim/exec/calibration_points.h"

#include <gtest/gtest.h>

#include "hpsim/model/data_files.h"

namespace hpsim::exec {
namespace {

TEST(CalibrationPoints, RecountReproducesTheStoredCountsOfTheShippedProfiles) {
  for (const auto& [name, ranks] : {std::pair{"h200x1-measured", 1}, {"h200x2-measured", 2}, {"h200x4-measured", 4}}) {
    auto profile = model::load_model_profile(name);
    ASSERT_TRUE(profile.has_value()) << profile.error().message;
    auto recounted = recount_points(*profile, ranks);
    ASSERT_TRUE(recounted.has_value()) << recounted.error().message;
    int points = 0;
    for (const auto& [family, fit] : recounted->kernels) {
      const auto& stored = profile->kernels.at(family).points;
      ASSERT_EQ(fit.points.size(), stored.size()) << family;
      for (std::size_t i = 0; i < stored.size(); ++i, ++points) {
        EXPECT_NEAR(fit.points[i].flops, stored[i].flops, 1e-9 * stored[i].flops) << name << " " << stored[i].shape;
        EXPECT_NEAR(fit.points[i].bytes, stored[i].bytes, 1e-9 * stored[i].bytes) << name << " " << stored[i].shape;
        EXPECT_NEAR(fit.points[i].selections, stored[i].selections, 1e-9 * stored[i].selections + 1e-9)
            << name << " " << stored[i].shape;
        EXPECT_EQ(fit.points[i].time_us, stored[i].time_us);
      }
    }
    EXPECT_GT(points, 300) << name;
  }
}

TEST(CalibrationPoints, RecountAtAnotherGpuCountChangesTheCommunicatingShapes) {
  auto profile = model::load_model_profile("h200x2-measured");
  ASSERT_TRUE(profile.has_value());
  auto at_one = recount_points(*profile, 1);
  ASSERT_TRUE(at_one.has_value()) << at_one.error().message;
  // At W = 1 an EP rank holds every expert: its expert MLP counts differ from W = 2's.
  const auto& a = profile->kernels.at("ep_expert_mlp_fwd").points.front();
  const auto& b = at_one->kernels.at("ep_expert_mlp_fwd").points.front();
  EXPECT_NE(a.bytes, b.bytes) << a.shape;
}

TEST(CalibrationPoints, AShapeThatIsNotACalibrationLabelIsAnErrorNamingIt) {
  auto profile = model::load_model_profile("h200x2-measured");
  ASSERT_TRUE(profile.has_value());
  for (auto& [family, fit] : profile->kernels) {
    if (family != "hp_router_fwd") fit.points.clear();  // they would be counted first
  }
  auto& point = profile->kernels.at("hp_router_fwd").points.front();
  for (const char* shape : {"rows=32768 h=128 f=256", "router xp paper-4.2b n=2048 k=1 zipf=0",
                            "router hp paper-4.2b n=two k=1 zipf=0", "no_such_stage hp paper-4.2b n=2048 k=1 zipf=0"}) {
    point.shape = shape;
    auto r = recount_points(*profile, 2);
    ASSERT_FALSE(r.has_value()) << shape;
    EXPECT_NE(r.error().message.find("kernels.hp_router_fwd.points"), std::string::npos) << r.error().message;
  }
}

TEST(CalibrationPoints, LabelsRoundTripAndScenariosCarryTheShape) {
  const CalibrationShape shape{"paper-4.2b-g", 8192, 8, 1.0};
  EXPECT_EQ(calibration_label(shape, core::Strategy::kHp), "hp paper-4.2b-g n=8192 k=8 zipf=1");
  auto s = calibration_scenario(shape, core::Strategy::kEp, 4);
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_EQ(s->model.top_k, 8);
  EXPECT_EQ(s->model.num_experts, 1536);
  EXPECT_EQ(s->workload.tokens_per_rank, 8192);
  EXPECT_EQ(s->workload.routing, core::Routing::kZipf);
  EXPECT_EQ(s->parallel.num_ranks, 4);
  EXPECT_EQ(s->cluster.gpus_per_node, 4);
  EXPECT_FALSE(calibration_scenario({"no-such-model", 2048, 1, 0}, core::Strategy::kHp, 2).has_value());
}

}  // namespace
}  // namespace hpsim::exec
