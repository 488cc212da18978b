// The reports of `hpsim validate` and `hpsim imbalance` from hand-made points: the Markdown tables
// and the JSON carry the same values, the error summaries are the medians and maxima worked out
// here by hand, and ratios or errors that cannot be formed are "n/a" / null.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "gpu_reports.h"

namespace hpsim::cli {
namespace {

ValidationReport three_points() {
  ValidationReport r;
  r.predictor = "simulator";
  r.profile = "test-profile";
  r.ranks = 2;
  // Layer errors +10 %, -20 %, +5 %: |error| median 10 %, worst 20 %.
  r.points.push_back({"ep", 1, 0, 4096, 110, 100, 0.10, {{"fwd", "router", 55, 50, 0.10}, {"bwd", "router_bwd", 9, 10, -0.10}}});
  r.points.push_back({"ep", 4, 2, 4096, 80, 100, -0.20, {{"fwd", "router", 40, 50, -0.20}}});
  r.points.push_back({"hp", 4, 2, 16384, 210, 200, 0.05, {{"fwd", "router", 102, 100, 0.02}}});
  return r;
}

TEST(ErrorSummary, MedianOfOddAndEvenCountsAndTheWorst) {
  const auto odd = summarize_errors({0.3, 0.1, 0.2});
  EXPECT_DOUBLE_EQ(odd.median, 0.2);
  EXPECT_DOUBLE_EQ(odd.worst, 0.3);
  EXPECT_EQ(odd.count, 3u);
  const auto even = summarize_errors({0.4, 0.1, 0.2, 0.3});
  EXPECT_DOUBLE_EQ(even.median, 0.25);
  EXPECT_DOUBLE_EQ(even.worst, 0.4);
  const auto none = summarize_errors({});
  EXPECT_EQ(none.count, 0u);
  EXPECT_EQ(none.worst, 0.0);
}

TEST(ValidationReport, MarkdownListsEveryPointAndTheSummaries) {
  const std::string md = validation_markdown(three_points());
  EXPECT_NE(md.find("Layer total, predicted (simulator, profile test-profile) against measured, W = 2:"), std::string::npos);
  EXPECT_NE(md.find("| ep | 1 | 0 | 4096 | 110.0 | 100.0 | +10.0% |"), std::string::npos) << md;
  EXPECT_NE(md.find("| ep | 4 | 2 | 4096 | 80.0 | 100.0 | -20.0% |"), std::string::npos) << md;
  EXPECT_NE(md.find("| hp | 4 | 2 | 16384 | 210.0 | 200.0 | +5.0% |"), std::string::npos) << md;
  EXPECT_NE(md.find("Median |error| of the layer total: 10.0%; worst: 20.0% (3 points)."), std::string::npos) << md;
  // ep fwd router: |errors| 10 % and 20 % -> median 15 %; hp fwd router alone: 2 %.
  EXPECT_NE(md.find("| ep fwd router | 15.0% | 20.0% |"), std::string::npos) << md;
  EXPECT_NE(md.find("| ep bwd router_bwd | 10.0% | 10.0% |"), std::string::npos) << md;
  EXPECT_NE(md.find("| hp fwd router | 2.0% | 2.0% |"), std::string::npos) << md;
}

TEST(ValidationReport, JsonCarriesThePointsStagesAndSummaries) {
  const auto j = validation_json(three_points());
  EXPECT_EQ(j["predictor"], "simulator");
  EXPECT_EQ(j["profile"], "test-profile");
  EXPECT_EQ(j["ranks"], 2);
  ASSERT_EQ(j["points"].size(), 3u);
  const auto& p = j["points"][1];
  EXPECT_EQ(p["strategy"], "ep");
  EXPECT_EQ(p["top_k"], 4);
  EXPECT_EQ(p["skew"], 2.0);
  EXPECT_EQ(p["tokens_per_rank"], 4096);
  EXPECT_DOUBLE_EQ(p["predicted_us"].get<double>(), 80.0);
  EXPECT_DOUBLE_EQ(p["measured_us"].get<double>(), 100.0);
  EXPECT_DOUBLE_EQ(p["relative_error"].get<double>(), -0.20);
  ASSERT_EQ(j["points"][0]["stages"].size(), 2u);
  EXPECT_EQ(j["points"][0]["stages"][1]["phase"], "bwd");
  EXPECT_EQ(j["points"][0]["stages"][1]["stage"], "router_bwd");
  EXPECT_DOUBLE_EQ(j["points"][0]["stages"][1]["predicted_us"].get<double>(), 9.0);
  EXPECT_DOUBLE_EQ(j["total"]["median"].get<double>(), 0.10);
  EXPECT_DOUBLE_EQ(j["total"]["worst"].get<double>(), 0.20);
  EXPECT_EQ(j["total"]["count"], 3);
  EXPECT_DOUBLE_EQ(j["stages"]["ep fwd router"]["median"].get<double>(), 0.15);
  EXPECT_EQ(j["stages"]["ep fwd router"]["count"], 2);
  EXPECT_EQ(j["stages"].size(), 3u);
}

TEST(ValidationReport, AnInfiniteErrorIsNotANumber) {
  ValidationReport r = three_points();
  r.points[0].stages[0].relative_error = std::numeric_limits<double>::infinity();  // measured 0
  r.points[0].stages[0].measured_us = 0;
  const auto j = validation_json(r);
  EXPECT_TRUE(j["points"][0]["stages"][0]["relative_error"].is_null());
  EXPECT_EQ(pct(std::numeric_limits<double>::infinity()), "n/a");
  EXPECT_EQ(pct(-0.1234), "-12.3%");
}

ImbalanceReport four_points() {
  ImbalanceReport r;
  r.predictor = "analytic model";
  r.profile = "test-profile";
  r.ranks = 4;
  r.tokens_per_rank = 16384;
  r.points.push_back({"ep", 8, 0, 100, 90, 1000, 2e9, 2e9, 3e9});
  r.points.push_back({"ep", 8, 2, 250, 95, 1400, 3e9, 1.5e9, 3e9});
  r.points.push_back({"hp", 8, 0, 80, 70, 900, 1e9, 1e9, 2e9});
  r.points.push_back({"hp", 8, 2, 0, 70, 900, 1e9, 1e9, 2e9});
  return r;
}

TEST(ImbalanceReport, MarkdownHasThePointsAndTheGrowthUnderSkew) {
  const std::string md = imbalance_markdown(four_points());
  EXPECT_NE(md.find("W = 4, 16384 tokens per rank"), std::string::npos) << md;
  EXPECT_NE(md.find("prediction: analytic model, profile test-profile."), std::string::npos) << md;
  EXPECT_NE(md.find("| ep | 8 | 2 | 250.0 | 95.0 | 1400.0 | 3.000 | 1.500 | 3.000 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| ep | 8 | 2.50x | 1.50x |"), std::string::npos) << md;
  EXPECT_NE(md.find("| hp | 8 | 0.00x | 1.00x |"), std::string::npos) << md;
}

TEST(ImbalanceReport, JsonGrowthIsARatioOrNull) {
  ImbalanceReport r = four_points();
  r.points[2].comm_measured_us = 0;  // hp at skew 0: no ratio can be formed
  const auto j = imbalance_json(r);
  EXPECT_EQ(j["ranks"], 4);
  EXPECT_EQ(j["tokens_per_rank"], 16384);
  ASSERT_EQ(j["points"].size(), 4u);
  EXPECT_DOUBLE_EQ(j["points"][1]["peak_bytes_min_rank"].get<double>(), 1.5e9);
  ASSERT_EQ(j["growth"].size(), 2u);
  EXPECT_EQ(j["growth"][0]["strategy"], "ep");
  EXPECT_DOUBLE_EQ(j["growth"][0]["all_to_all"].get<double>(), 2.5);
  EXPECT_DOUBLE_EQ(j["growth"][0]["peak_memory"].get<double>(), 1.5);
  EXPECT_EQ(j["growth"][0]["from_skew"], 0.0);
  EXPECT_EQ(j["growth"][0]["to_skew"], 2.0);
  EXPECT_TRUE(j["growth"][1]["all_to_all"].is_null());
  EXPECT_DOUBLE_EQ(j["growth"][1]["peak_memory"].get<double>(), 1.0);
}

}  // namespace
}  // namespace hpsim::cli
