// The Engine adapter: what it returns is the library's, and it says what is missing.
#include <gtest/gtest.h>

#include <QDir>

#include "hpsim/core/json.h"
#include "hpsim/core/presets.h"
#include "hpsim/gui/engine.h"
#include "qt_env.h"

namespace hpsim::gui {
namespace {

Engine timedEngine() {
  Engine engine;
  auto profile = Engine::load_profile(testing::shippedProfilePath());
  if (profile) engine.set_profile(*profile);
  return engine;
}

TEST(GuiEngine, BlockingErrorsLeaveTheStrategyRulesOut) {
  core::Scenario s = core::default_scenarios().front();
  s.cluster = core::cluster_preset("h100-16x8").value();
  s.parallel.num_ranks = 6;  // HP needs W | H = 8; EP runs
  EXPECT_TRUE(Engine::blocking_errors(s).empty());
  s.model.top_k = 0;
  const auto errors = Engine::blocking_errors(s);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors.front().path, "model.top_k");
}

TEST(GuiEngine, LeavesOutTheStrategyThatCannotRunWithItsRule) {
  if (!Engine::capabilities().has_traffic) GTEST_SKIP() << "no hpsim::model in this build";
  core::Scenario s = core::default_scenarios().front();
  s.cluster = core::cluster_preset("h100-16x8").value();
  s.parallel.num_ranks = 6;
  auto result = Engine().evaluate(s);
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_NE(result->strategy("ep"), nullptr);
  EXPECT_EQ(result->strategy("hp"), nullptr);
  const auto rule = core::check_strategy(s, core::Strategy::kHp).front().to_string();
  EXPECT_NE(std::find(result->notes.begin(), result->notes.end(), "hp: " + rule), result->notes.end());
}

TEST(GuiEngine, WithoutProfileThereIsNoTimingAndTheNoteSaysSo) {
  if (!Engine::capabilities().has_traffic) GTEST_SKIP() << "no hpsim::model in this build";
  auto result = Engine().evaluate(core::default_scenarios().front());
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_FALSE(result->has_timing);
  EXPECT_FALSE(result->strategy("hp")->timeline.has_value());
  EXPECT_FALSE(result->strategy("hp")->traffic.empty());
  EXPECT_FALSE(result->notes.empty());
}

TEST(GuiEngine, WithProfileGivesTimingAndAnalyticTimelines) {
  if (!Engine::capabilities().has_estimate) GTEST_SKIP() << "no analytic estimate in this build";
  auto result = timedEngine().evaluate(core::default_scenarios().front());
  ASSERT_TRUE(result.has_value()) << result.error().message;
  ASSERT_TRUE(result->has_timing);
  const auto* hp = result->strategy("hp");
  ASSERT_NE(hp, nullptr);
  ASSERT_TRUE(hp->timeline.has_value());
  EXPECT_EQ(hp->timeline->source, "analytic");
  EXPECT_GT(hp->layer_total_us, 0);
  ASSERT_NE(result->metrics_of("hp"), nullptr);
  EXPECT_GT(result->metrics_of("hp")->comm_us, 0);
}

TEST(GuiEngine, SimulatedTimelinesComeFromTheSimulator) {
  if (!Engine::capabilities().has_simulator || !Engine::capabilities().has_estimate) {
    GTEST_SKIP() << "no simulator in this build";
  }
  Engine engine = timedEngine();
  engine.set_options({.simulated_timelines = true});
  auto result = engine.evaluate(core::default_scenarios().front());
  ASSERT_TRUE(result.has_value()) << result.error().message;
  for (const char* s : {"ep", "hp"}) {
    ASSERT_NE(result->strategy(s), nullptr);
    ASSERT_TRUE(result->strategy(s)->timeline.has_value());
    EXPECT_EQ(result->strategy(s)->timeline->source, "simulated") << s;
  }
}

TEST(GuiEngine, ChromeTraceRoundTripsThroughTheTracesLibrary) {
  core::Timeline t;
  t.source = "executed";
  t.strategy = "hp";
  t.ranks.push_back({0,
                     {{"dispatch", core::Phase::kForward, core::Lane::kComm, 1000, 2500, 4096, 0, 0, 0},
                      {"expert_mlp", core::Phase::kForward, core::Lane::kCompute, 2500, 9000, 0, 1e9, 0, 0}}});
  auto json = Engine::chrome_trace_json(t);
  if (!Engine::capabilities().has_traces) {
    ASSERT_FALSE(json.has_value());
    EXPECT_EQ(json.error().code, core::ErrorCode::kUnsupported);
    return;
  }
  ASSERT_TRUE(json.has_value()) << json.error().message;
  const std::string path = QDir::temp().filePath(QStringLiteral("hpsim-gui-trace.json")).toStdString();
  ASSERT_TRUE(static_cast<bool>(core::write_text_file(path, *json)));
  auto back = Engine::load_timeline(path);
  ASSERT_TRUE(back.has_value()) << back.error().message;
  ASSERT_EQ(back->ranks.size(), 1u);
  ASSERT_EQ(back->ranks[0].spans.size(), 2u);
  EXPECT_EQ(back->ranks[0].spans[1].end_ns - back->ranks[0].spans[1].start_ns, 6500);
}

TEST(GuiEngine, LoadTimelineReadsHpsimTimelineJson) {
  core::Timeline t;
  t.source = "executed";
  t.strategy = "ep";
  t.ranks.push_back({3, {{"combine", core::Phase::kBackward, core::Lane::kComm, 10, 20, 1, 0, 0, 0}}});
  const std::string path = QDir::temp().filePath(QStringLiteral("hpsim-gui-timeline.json")).toStdString();
  ASSERT_TRUE(static_cast<bool>(core::write_text_file(path, core::to_json(t))));
  auto back = Engine::load_timeline(path);
  ASSERT_TRUE(back.has_value()) << back.error().message;
  EXPECT_EQ(back->strategy, "ep");
  EXPECT_EQ(back->ranks.at(0).rank, 3);
  auto missing = Engine::load_timeline("/nonexistent/t.json");
  ASSERT_FALSE(missing.has_value());
  EXPECT_NE(missing.error().message.find("/nonexistent/t.json"), std::string::npos);
}

}  // namespace
}  // namespace hpsim::gui
