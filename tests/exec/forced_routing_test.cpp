#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <set>

#include "hpsim/exec/forced_routing.h"

namespace hpsim::exec {
namespace {

core::WorkloadSpec zipf(double skew, core::Ownership own) {
  core::WorkloadSpec w;
  w.routing = core::Routing::kZipf;
  w.zipf_skew = skew;
  w.ownership = own;
  return w;
}

TEST(ForcedRouting, RowsHaveKDistinctExpertsAndGatesSumToOne) {
  const auto weights = expert_weights(zipf(2.0, core::Ownership::kContiguous), 64, 4);
  const auto r = draw_routing(weights, 1001, 8, 7, 0);
  ASSERT_EQ(r.experts.size(), 1001u * 8u);
  for (std::int64_t row = 0; row < r.num_rows; ++row) {
    std::set<int> seen;
    double sum = 0;
    for (std::int64_t j = 0; j < 8; ++j) {
      const auto e = r.experts[static_cast<std::size_t>(row * 8 + j)];
      ASSERT_GE(e, 0);
      ASSERT_LT(e, 64);
      seen.insert(e);
      const float g = r.gates[static_cast<std::size_t>(row * 8 + j)];
      ASSERT_GT(g, 0.0f);
      sum += g;
    }
    EXPECT_EQ(seen.size(), 8u) << "row " << row;
    EXPECT_NEAR(sum, 1.0, 1e-5);
  }
}

TEST(ForcedRouting, SameSeedAndStreamGiveTheSameRows) {
  const std::vector<double> w(32, 1.0);
  const auto a = draw_routing(w, 500, 4, 11, 3);
  const auto b = draw_routing(w, 500, 4, 11, 3);
  const auto c = draw_routing(w, 500, 4, 11, 4);
  EXPECT_EQ(a.experts, b.experts);
  EXPECT_EQ(a.gates, b.gates);
  EXPECT_NE(a.experts, c.experts);
}

TEST(ForcedRouting, ContiguousZipfLoadsRankZeroMost) {
  const std::int64_t e = 64, w = 4, k = 4;
  const auto weights = expert_weights(zipf(1.0, core::Ownership::kContiguous), e, w);
  const auto r = draw_routing(weights, 20000, k, 1, 0);
  std::vector<double> per_rank(w, 0);
  for (auto x : r.experts) per_rank[static_cast<std::size_t>(x / (e / w))] += 1;
  EXPECT_GT(per_rank[0], 1.5 * per_rank[3]);
  // Strided ownership spreads the same popularity across ranks (popularity i on rank i mod W).
  const auto strided = draw_routing(expert_weights(zipf(1.0, core::Ownership::kStrided), e, w), 20000, k, 1, 0);
  std::vector<double> per_rank_s(w, 0);
  for (auto x : strided.experts) per_rank_s[static_cast<std::size_t>(x / (e / w))] += 1;
  auto spread = [](const std::vector<double>& v) {
    return *std::max_element(v.begin(), v.end()) / *std::min_element(v.begin(), v.end());
  };
  EXPECT_LT(spread(per_rank_s), 0.5 * spread(per_rank));
  EXPECT_GT(spread(per_rank_s), 1.0);  // the hottest expert still sits on rank 0
}

TEST(ForcedRouting, UniformDrawsMatchTheInclusionProbabilities) {
  // Uniform over E with k distinct: each expert appears in a row with probability k/E.
  const std::vector<double> w(10, 1.0);
  const auto r = draw_routing(w, 50000, 3, 5, 0);
  std::vector<double> count(10, 0);
  for (auto x : r.experts) count[static_cast<std::size_t>(x)] += 1;
  for (double c : count) EXPECT_NEAR(c / 50000.0, 0.3, 0.01);
}

TEST(ForcedRouting, ExtremeSkewStillGivesDistinctExperts) {
  // Skew 8: the first expert takes almost everything; the fallback must still find k distinct.
  const auto weights = expert_weights(zipf(8.0, core::Ownership::kContiguous), 16, 2);
  const auto r = draw_routing(weights, 200, 6, 3, 0);
  for (std::int64_t row = 0; row < r.num_rows; ++row) {
    std::set<int> seen(r.experts.begin() + row * 6, r.experts.begin() + row * 6 + 6);
    EXPECT_EQ(seen.size(), 6u);
  }
}

}  // namespace
}  // namespace hpsim::exec
