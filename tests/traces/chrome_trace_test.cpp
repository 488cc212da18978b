#include "hpsim/traces/chrome_trace.h"

#include <map>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace hpsim::traces {
namespace {

core::Timeline sample_timeline() {
  core::Timeline t;
  t.source = "simulated";
  t.strategy = "ep";
  for (std::int64_t r = 0; r < 3; ++r) {
    core::RankTimeline rank;
    rank.rank = r;
    rank.spans.push_back({"router", core::Phase::kForward, core::Lane::kCompute, 0, 12345 + r, 0, 1.5e9, 0, 0});
    rank.spans.push_back({"dispatch", core::Phase::kForward, core::Lane::kComm, 12345 + r, 987654321 + r,
                          1234567.25 * static_cast<double>(r + 1), 0, 0, 1});
    rank.spans.push_back({"expert, \"mlp\"", core::Phase::kBackward, core::Lane::kCompute, 987654321 + r,
                          987654322 + 7 * r, 3.0, 0.1, 2, 1});
    t.ranks.push_back(rank);
  }
  return t;
}

void expect_same(const core::Timeline& a, const core::Timeline& b) {
  EXPECT_EQ(a.source, b.source);
  EXPECT_EQ(a.strategy, b.strategy);
  ASSERT_EQ(a.ranks.size(), b.ranks.size());
  for (std::size_t r = 0; r < a.ranks.size(); ++r) {
    EXPECT_EQ(a.ranks[r].rank, b.ranks[r].rank);
    ASSERT_EQ(a.ranks[r].spans.size(), b.ranks[r].spans.size());
    for (std::size_t i = 0; i < a.ranks[r].spans.size(); ++i) {
      const auto& x = a.ranks[r].spans[i];
      const auto& y = b.ranks[r].spans[i];
      EXPECT_EQ(x.stage, y.stage);
      EXPECT_EQ(x.phase, y.phase);
      EXPECT_EQ(x.lane, y.lane);
      EXPECT_EQ(x.start_ns, y.start_ns);
      EXPECT_EQ(x.end_ns, y.end_ns);
      EXPECT_EQ(x.bytes, y.bytes);
      EXPECT_EQ(x.flops, y.flops);
      EXPECT_EQ(x.layer, y.layer);
      EXPECT_EQ(x.micro_batch, y.micro_batch);
    }
  }
}

TEST(ChromeTrace, RoundTripsATimelineExactly) {
  const core::Timeline t = sample_timeline();
  auto back = parse_chrome_trace(to_chrome_trace(t));
  ASSERT_TRUE(back.has_value()) << back.error().message;
  expect_same(t, *back);
}

TEST(ChromeTrace, TimestampsAloneKeepNanoseconds) {
  // Without the start_ns/end_ns args, ts and dur (microseconds, three decimals) are enough.
  const std::string text = R"({"traceEvents":[
    {"ph":"M","name":"process_name","pid":4,"tid":0,"args":{"name":"rank 2"}},
    {"ph":"X","name":"combine","pid":4,"tid":1,"ts":987654.321,"dur":0.007}]})";
  auto t = parse_chrome_trace(text);
  ASSERT_TRUE(t.has_value()) << t.error().message;
  ASSERT_EQ(t->ranks.size(), 1u);
  EXPECT_EQ(t->ranks[0].rank, 2);
  const auto& s = t->ranks[0].spans.at(0);
  EXPECT_EQ(s.start_ns, 987654321);
  EXPECT_EQ(s.end_ns, 987654328);
  EXPECT_EQ(s.lane, core::Lane::kComm);
}

TEST(ChromeTrace, HasOneProcessPerRankAndOneThreadPerLane) {
  const auto doc = nlohmann::json::parse(to_chrome_trace(sample_timeline()));
  std::map<std::int64_t, std::string> processes;
  std::set<std::pair<std::int64_t, std::string>> threads;
  int complete = 0;
  for (const auto& e : doc["traceEvents"]) {
    if (e["ph"] == "M" && e["name"] == "process_name") {
      processes[e["pid"].get<std::int64_t>()] = e["args"]["name"].get<std::string>();
    }
    if (e["ph"] == "M" && e["name"] == "thread_name") {
      threads.insert({e["pid"].get<std::int64_t>(), e["args"]["name"].get<std::string>()});
    }
    if (e["ph"] == "X") {
      ++complete;
      for (const char* key : {"stage", "phase", "bytes", "flops", "layer", "micro_batch"}) {
        EXPECT_TRUE(e["args"].contains(key)) << key;
      }
    }
  }
  EXPECT_EQ(processes, (std::map<std::int64_t, std::string>{{0, "rank 0"}, {1, "rank 1"}, {2, "rank 2"}}));
  EXPECT_EQ(threads.size(), 6u);
  EXPECT_TRUE(threads.count({1, "comm"}) == 1 && threads.count({1, "compute"}) == 1);
  EXPECT_EQ(complete, 9);
  EXPECT_EQ(doc["displayTimeUnit"], "ns");
}

TEST(ChromeTrace, FlowArrowsEndInsideTheReceiversSpan) {
  const core::Timeline t = sample_timeline();
  TraceExtras x;
  // Arrives at 100 ns, before rank 2 starts its dispatch (12347 ns): drawn at that start.
  x.flows.push_back(FlowArrow{"dispatch", 0, 2, 12345, 100, 4096, 1});
  // Arrives during rank 1's dispatch: drawn where it arrives.
  x.flows.push_back(FlowArrow{"dispatch", 0, 1, 12345, 500000, 4096, 3});
  x.counters.push_back(CounterSample{"bytes in flight", -1, 0, 8192});
  const auto doc = nlohmann::json::parse(to_chrome_trace(t, x));
  std::map<std::int64_t, double> arrow_end;
  std::map<std::int64_t, double> arrow_start;
  bool network = false;
  int counters = 0;
  for (const auto& e : doc["traceEvents"]) {
    if (e["ph"] == "s") arrow_start[e["id"].get<std::int64_t>()] = e["ts"].get<double>();
    if (e["ph"] == "f") {
      EXPECT_EQ(e["bp"], "e");
      arrow_end[e["id"].get<std::int64_t>()] = e["ts"].get<double>();
    }
    if (e["ph"] == "M" && e["name"] == "process_name" && e["args"]["name"] == "network") network = true;
    if (e["ph"] == "C") ++counters;
  }
  EXPECT_DOUBLE_EQ(arrow_start.at(1), 12.345);
  EXPECT_DOUBLE_EQ(arrow_end.at(1), 12.347);
  EXPECT_DOUBLE_EQ(arrow_end.at(2), 500.0);
  EXPECT_TRUE(network);
  // One "comm bytes" start and end per comm span, plus the network counter.
  EXPECT_EQ(counters, 3 * 2 + 1);
  // Arrows and counters do not come back as spans.
  auto back = parse_chrome_trace(to_chrome_trace(t, x));
  ASSERT_TRUE(back.has_value());
  expect_same(t, *back);
}

TEST(ChromeTrace, SameTimelineGivesTheSameBytes) {
  EXPECT_EQ(to_chrome_trace(sample_timeline()), to_chrome_trace(sample_timeline()));
}

TEST(ChromeTrace, ErrorsNameTheEventAndField) {
  auto bad_ts = parse_chrome_trace(R"({"traceEvents":[{"ph":"X","name":"a","pid":0,"tid":0,"ts":"soon","dur":1}]})", "t.json");
  ASSERT_FALSE(bad_ts.has_value());
  EXPECT_NE(bad_ts.error().message.find("t.json: traceEvents[0].ts"), std::string::npos) << bad_ts.error().message;

  auto bad_phase = parse_chrome_trace(
      R"({"traceEvents":[{"ph":"X","name":"a","pid":0,"tid":0,"ts":1,"dur":1,"args":{"phase":"sideways"}}]})", "t.json");
  ASSERT_FALSE(bad_phase.has_value());
  EXPECT_NE(bad_phase.error().message.find("traceEvents[0].args.phase"), std::string::npos);

  auto malformed = parse_chrome_trace("{\"traceEvents\": [", "t.json");
  ASSERT_FALSE(malformed.has_value());
  EXPECT_EQ(malformed.error().code, core::ErrorCode::kParse);

  auto missing = read_chrome_trace("/nonexistent/trace.json");
  ASSERT_FALSE(missing.has_value());
  EXPECT_NE(missing.error().message.find("/nonexistent/trace.json"), std::string::npos);
}

}  // namespace
}  // namespace hpsim::traces
