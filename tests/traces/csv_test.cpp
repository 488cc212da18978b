#include "hpsim/traces/csv.h"

#include <gtest/gtest.h>

namespace hpsim::traces {
namespace {

core::Timeline timeline() {
  core::Timeline t;
  t.source = "executed";
  t.strategy = "hp";
  core::RankTimeline r0;
  r0.rank = 0;
  r0.spans.push_back({"w_in", core::Phase::kForward, core::Lane::kCompute, 10, 250, 1e6, 2.5e9, 3, 1});
  r0.spans.push_back({"a2a, \"fast\"", core::Phase::kBackward, core::Lane::kComm, 250, 999, 0.125, 0, 3, 1});
  core::RankTimeline r5;
  r5.rank = 5;
  r5.spans.push_back({"w_out", core::Phase::kForward, core::Lane::kCompute, 1, 2, 0, 0, 0, 0});
  t.ranks = {r0, r5};
  return t;
}

TEST(Csv, RoundTripsATimeline) {
  const core::Timeline t = timeline();
  const std::string text = to_csv(t);
  auto back = parse_timeline_csv(text);
  ASSERT_TRUE(back.has_value()) << back.error().message;
  EXPECT_EQ(back->source, "executed");
  EXPECT_EQ(back->strategy, "hp");
  ASSERT_EQ(back->ranks.size(), 2u);
  EXPECT_EQ(back->ranks[1].rank, 5);
  ASSERT_EQ(back->ranks[0].spans.size(), 2u);
  const auto& s = back->ranks[0].spans[1];
  EXPECT_EQ(s.stage, "a2a, \"fast\"");
  EXPECT_EQ(s.phase, core::Phase::kBackward);
  EXPECT_EQ(s.lane, core::Lane::kComm);
  EXPECT_EQ(s.start_ns, 250);
  EXPECT_EQ(s.end_ns, 999);
  EXPECT_EQ(s.bytes, 0.125);
  EXPECT_EQ(back->ranks[0].spans[0].flops, 2.5e9);
  EXPECT_EQ(back->ranks[0].spans[0].layer, 3);
  EXPECT_EQ(back->ranks[0].spans[0].micro_batch, 1);
}

TEST(Csv, HasOneRowPerSpanWithDuration) {
  const std::string text = to_csv(timeline());
  EXPECT_EQ(text.rfind("source,strategy,rank,lane,stage,phase,layer,micro_batch,start_ns,end_ns,duration_ns,bytes,flops\n", 0), 0u);
  EXPECT_NE(text.find("executed,hp,0,compute,w_in,forward,3,1,10,250,240,1000000,2500000000\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\"a2a, \"\"fast\"\"\""), std::string::npos);
}

TEST(Csv, ReportsTheLineAndColumnOfABadRow) {
  auto bad = parse_timeline_csv(
      "source,strategy,rank,lane,stage,phase,layer,micro_batch,start_ns,end_ns,duration_ns,bytes,flops\n"
      "sim,ep,0,compute,a,forward,0,0,1,2,1,0,0\n"
      "sim,ep,0,gpu,a,forward,0,0,1,2,1,0,0\n",
      "t.csv");
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message.find("t.csv: line 3: lane"), std::string::npos) << bad.error().message;
  auto no_header = parse_timeline_csv("rank,stage\n", "t.csv");
  ASSERT_FALSE(no_header.has_value());
  EXPECT_NE(no_header.error().message.find("line 1"), std::string::npos);
}

}  // namespace
}  // namespace hpsim::traces
