#include <gtest/gtest.h>

#include <cmath>

#include "hpsim/exec/compare.h"

namespace hpsim::exec {
namespace {

using core::Lane;
using core::Phase;

core::Span span(const char* stage, Phase phase, std::int64_t start_us, std::int64_t end_us) {
  core::Span s;
  s.stage = stage;
  s.phase = phase;
  s.lane = Lane::kCompute;
  s.start_ns = start_us * 1000;
  s.end_ns = end_us * 1000;
  return s;
}

TEST(CompareTimelines, UsesTheSlowestRankPerStageAndTheLayerEnd) {
  core::Timeline measured;
  measured.ranks.push_back({0, {span("router", Phase::kForward, 0, 10), span("dispatch", Phase::kForward, 10, 30)}});
  measured.ranks.push_back({1, {span("router", Phase::kForward, 0, 14), span("dispatch", Phase::kForward, 14, 40)}});
  core::Timeline predicted;
  predicted.ranks.push_back({0, {span("router", Phase::kForward, 0, 12), span("dispatch", Phase::kForward, 12, 33)}});
  predicted.ranks.push_back({1, {span("router", Phase::kForward, 0, 12), span("dispatch", Phase::kForward, 12, 33)}});
  const auto c = compare_timelines(predicted, measured);
  ASSERT_EQ(c.stages.size(), 2u);
  EXPECT_EQ(c.stages[0].stage, "router");
  EXPECT_DOUBLE_EQ(c.stages[0].measured_us, 14);
  EXPECT_DOUBLE_EQ(c.stages[0].predicted_us, 12);
  EXPECT_DOUBLE_EQ(c.stages[0].relative_error, (12.0 - 14.0) / 14.0);
  EXPECT_DOUBLE_EQ(c.stages[1].measured_us, 26);
  EXPECT_DOUBLE_EQ(c.measured_total_us, 40);
  EXPECT_DOUBLE_EQ(c.predicted_total_us, 33);
  EXPECT_DOUBLE_EQ(c.total_relative_error, (33.0 - 40.0) / 40.0);
}

TEST(CompareTimelines, StagesMissingOnOneSideAreFlaggedNotDropped) {
  core::Timeline measured, predicted;
  measured.ranks.push_back({0, {span("router", Phase::kBackward, 0, 5)}});
  predicted.ranks.push_back({0, {span("metadata", Phase::kForward, 0, 2)}});
  const auto c = compare_timelines(predicted, measured);
  ASSERT_EQ(c.stages.size(), 2u);
  EXPECT_FALSE(c.stages[0].in_predicted);
  EXPECT_FALSE(c.stages[1].in_measured);
  EXPECT_TRUE(std::isinf(c.stages[1].relative_error));
}

TEST(CompareTimelines, SameStageInBothPhasesIsKeptApart) {
  core::Timeline t;
  t.ranks.push_back({0, {span("expert_mlp", Phase::kForward, 0, 3), span("expert_mlp", Phase::kBackward, 3, 10)}});
  const auto times = stage_times(t);
  ASSERT_EQ(times.size(), 2u);
  EXPECT_DOUBLE_EQ(times[0].max_us, 3);
  EXPECT_DOUBLE_EQ(times[1].max_us, 7);
}

}  // namespace
}  // namespace hpsim::exec
