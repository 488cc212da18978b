#include "hpsim/sim/max_min.h"

#include <gtest/gtest.h>

namespace hpsim::sim {
namespace {

TEST(MaxMin, TwoFlowsOnOneLinkGetHalfEach) {
  MaxMinProblem p;
  p.capacity = {10.0};
  p.add_group({{0, 1.0}});
  p.add_group({{0, 1.0}});
  MaxMinSolution s;
  solve_max_min(p, s);
  EXPECT_DOUBLE_EQ(s.rate[0], 5.0);
  EXPECT_DOUBLE_EQ(s.rate[1], 5.0);
  EXPECT_DOUBLE_EQ(s.load[0], 10.0);
}

// Link A (capacity 1) carries flows 0 and 1; link B (capacity 2) carries flows 1 and 2. A fills
// first at 1/2, which fixes flows 0 and 1; flow 2 takes what B has left: 2 - 1/2.
TEST(MaxMin, ThreeFlowsWithDifferentBottlenecksGetTextbookShares) {
  MaxMinProblem p;
  p.capacity = {1.0, 2.0};
  p.add_group({{0, 1.0}});
  p.add_group({{0, 1.0}, {1, 1.0}});
  p.add_group({{1, 1.0}});
  MaxMinSolution s;
  solve_max_min(p, s);
  EXPECT_DOUBLE_EQ(s.rate[0], 0.5);
  EXPECT_DOUBLE_EQ(s.rate[1], 0.5);
  EXPECT_DOUBLE_EQ(s.rate[2], 1.5);
  EXPECT_EQ(s.bottleneck[0], 0);
  EXPECT_EQ(s.bottleneck[2], 1);
  EXPECT_DOUBLE_EQ(s.load[1], 2.0);
}

TEST(MaxMin, AFlowLimitedElsewhereLeavesItsShareToTheOthers) {
  // Three flows share link 0 (capacity 9); flow 0 also crosses link 1 (capacity 1).
  MaxMinProblem p;
  p.capacity = {9.0, 1.0};
  p.add_group({{0, 1.0}, {1, 1.0}});
  p.add_group({{0, 1.0}});
  p.add_group({{0, 1.0}});
  MaxMinSolution s;
  solve_max_min(p, s);
  EXPECT_DOUBLE_EQ(s.rate[0], 1.0);
  EXPECT_DOUBLE_EQ(s.rate[1], 4.0);
  EXPECT_DOUBLE_EQ(s.rate[2], 4.0);
}

TEST(MaxMin, AGroupOfFlowsGetsWhatEachOfItsFlowsWould) {
  // A group of 3 flows (weight 3) and a single flow share capacity 8: four flows, 2 each.
  MaxMinProblem p;
  p.capacity = {8.0};
  p.add_group({{0, 3.0}});
  p.add_group({{0, 1.0}});
  MaxMinSolution s;
  solve_max_min(p, s);
  EXPECT_DOUBLE_EQ(s.rate[0], 2.0);
  EXPECT_DOUBLE_EQ(s.rate[1], 2.0);
}

TEST(MaxMin, MarksFullChannelsAndOnlyThem) {
  MaxMinProblem p;
  p.capacity = {4.0, 100.0};
  p.add_group({{0, 1.0}, {1, 1.0}});
  p.add_group({{0, 1.0}});
  MaxMinSolution s;
  solve_max_min(p, s);
  EXPECT_DOUBLE_EQ(s.level[0], 2.0);
  EXPECT_LT(s.level[1], 0.0);
}

TEST(MaxMin, TiedChannelsAreBothBottlenecks) {
  // Both links fill at the same level: the second one must be reported full as well.
  MaxMinProblem p;
  p.capacity = {2.0, 2.0};
  p.add_group({{0, 1.0}, {1, 1.0}});
  p.add_group({{0, 1.0}, {1, 1.0}});
  MaxMinSolution s;
  solve_max_min(p, s);
  EXPECT_DOUBLE_EQ(s.level[0], 1.0);
  EXPECT_DOUBLE_EQ(s.level[1], 1.0);
}

}  // namespace
}  // namespace hpsim::sim
