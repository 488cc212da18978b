#include <gtest/gtest.h>

#include <cmath>

#include "hpsim/core/rng.h"

namespace hpsim::core {
namespace {

TEST(Rng, SameSeedSameSequence) {
  Rng a(42), b(42), c(43);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    const auto x = a.next_u64();
    EXPECT_EQ(x, b.next_u64());
    differs |= (x != c.next_u64());
  }
  EXPECT_TRUE(differs);
}

TEST(Rng, UniformHasTheRightMoments) {
  Rng rng(7);
  const int n = 200000;
  double sum = 0, sum2 = 0;
  for (int i = 0; i < n; ++i) {
    const double u = rng.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
    sum2 += u * u;
  }
  EXPECT_NEAR(sum / n, 0.5, 0.005);
  EXPECT_NEAR(sum2 / n - (sum / n) * (sum / n), 1.0 / 12.0, 0.002);
}

TEST(AliasTable, DrawsMatchTheWeights) {
  const std::vector<double> w = {1.0, 0.0, 3.0, 6.0};
  AliasTable table(w);
  Rng rng(3);
  std::vector<int> counts(4, 0);
  const int n = 400000;
  for (int i = 0; i < n; ++i) ++counts[static_cast<std::size_t>(table.draw(rng))];
  EXPECT_EQ(counts[1], 0);
  EXPECT_NEAR(counts[0] / double(n), 0.1, 0.003);
  EXPECT_NEAR(counts[2] / double(n), 0.3, 0.004);
  EXPECT_NEAR(counts[3] / double(n), 0.6, 0.004);
}

}  // namespace
}  // namespace hpsim::core
