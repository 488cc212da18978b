#include <gtest/gtest.h>

#include "hpsim/core/json.h"
#include "hpsim/core/presets.h"

namespace hpsim::core {
namespace {

TEST(ScenarioJson, RoundTripsEveryPreset) {
  for (const auto& preset : scenario_presets()) {
    const Scenario original = scenario_preset(preset.name).value();
    const std::string text = to_json(original);
    auto parsed = parse_scenario(text);
    ASSERT_TRUE(parsed) << preset.name << ": " << parsed.error().message;
    EXPECT_EQ(to_json(*parsed), text) << preset.name;
  }
}

TEST(ScenarioJson, MalformedJsonNamesLineAndColumn) {
  auto parsed = parse_scenario("{\n  \"name\": \"x\",\n  oops\n}");
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().code, ErrorCode::kParse);
  EXPECT_NE(parsed.error().message.find("line 3"), std::string::npos) << parsed.error().message;
}

TEST(ScenarioJson, ReportsUnknownMissingAndMistypedFieldsTogether) {
  std::string text = to_json(default_scenarios().front());
  // Mistype top_k, drop seed, add an unknown field.
  auto replace = [&](const std::string& from, const std::string& to) {
    auto pos = text.find(from);
    ASSERT_NE(pos, std::string::npos) << from;
    text.replace(pos, from.size(), to);
  };
  replace("\"top_k\": 4", "\"top_k\": \"four\"");
  replace("\"seed\": 1", "\"colour\": \"blue\"");
  auto parsed = parse_scenario(text);
  ASSERT_FALSE(parsed);
  const std::string& m = parsed.error().message;
  EXPECT_NE(m.find("model.top_k: expected an integer, got a string"), std::string::npos) << m;
  EXPECT_NE(m.find("workload.seed: missing field"), std::string::npos) << m;
  EXPECT_NE(m.find("workload.colour: unknown field"), std::string::npos) << m;
}

TEST(ScenarioJson, RejectsAnUnknownEnumValueListingTheChoices) {
  std::string text = to_json(default_scenarios().front());
  auto pos = text.find("\"uniform\"");
  text.replace(pos, 9, "\"zipfian\"");
  auto parsed = parse_scenario(text);
  ASSERT_FALSE(parsed);
  EXPECT_NE(parsed.error().message.find("workload.routing: expected one of \"uniform\", \"zipf\" or \"trace\""),
            std::string::npos)
      << parsed.error().message;
}

TEST(ScenarioJson, MissingFileIsAnIoErrorNamingThePath) {
  auto loaded = load_scenario("/nonexistent/dir/s.json");
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().code, ErrorCode::kIo);
  EXPECT_NE(loaded.error().message.find("/nonexistent/dir/s.json"), std::string::npos);
}

TEST(ProfileJson, RoundTrips) {
  Profile p;
  p.name = "test";
  p.source = ProfileSource::kMeasured;
  p.gpu = "NVIDIA H200";
  p.date = "2026-11-29";
  p.versions["cuda"] = "13.0";
  p.bf16_tflops = 790;
  p.fp32_tflops = 51;
  p.hbm_gbps = 4300;
  p.kernels["expert_mlp_fwd"] = {1.5, 400, 0, 0.02, {{"rows=1", 1e9, 1e6, 3.0}}};
  p.kernels["hp_router_fwd"] = {20, 110, 0, 0.08, {{"n=1", 6e9, 1e7, 120.0, 2.5e8}}, 750};
  p.collectives["intra_node"]["all_to_all"] = {10, 0.8, 0.03, {{2, 1e6, 12}}};
  p.collectives["intra_node"]["all_gather"] = {10, 0.3, 0.01, {{2, 1e6, 12}}, 25, 0.6};
  auto parsed = parse_profile(to_json(p));
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(to_json(*parsed), to_json(p));
  EXPECT_FALSE(parsed->collectives["intra_node"]["all_to_all"].has_large_line());
  EXPECT_EQ(parsed->collectives["intra_node"]["all_gather"].large_alpha_us, 25.0);
  EXPECT_EQ(parsed->collectives["intra_node"]["all_gather"].large_efficiency, 0.6);
  EXPECT_EQ(parsed->kernels["hp_router_fwd"].select_gps, 750.0);
  EXPECT_EQ(parsed->kernels["hp_router_fwd"].points.at(0).selections, 2.5e8);
  // Families without a selection term write neither field: one "selections" (the router's point)
  // and one "select_gps" in the whole document.
  const std::string text = to_json(p);
  const auto count = [&](const std::string& key) {
    std::size_t n = 0;
    for (auto at = text.find(key); at != std::string::npos; at = text.find(key, at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count("\"selections\":"), 1u);
  EXPECT_EQ(count("\"select_gps\":"), 1u);
}

TEST(ProfileJson, TheRooflineFormRoundTripsAndAnUnknownFormIsNamed) {
  Profile p;
  p.name = "test";
  p.gpu = "NVIDIA H200";
  p.bf16_tflops = p.fp32_tflops = p.hbm_gbps = 1;
  p.kernels["hp_expert_mlp_bwd"] = {0, 280, 3000, 0.05, {}};
  p.kernels["hp_expert_mlp_bwd"].roofline = true;
  p.kernels["hp_combine_fwd"] = {4, 0, 3500, 0.05, {}};
  const std::string text = to_json(p);
  EXPECT_NE(text.find("\"form\": \"roofline\""), std::string::npos) << text;
  EXPECT_EQ(text.find("\"form\": \"sum\""), std::string::npos);  // the default is not written
  auto parsed = parse_profile(text);
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_TRUE(parsed->kernels.at("hp_expert_mlp_bwd").roofline);
  EXPECT_FALSE(parsed->kernels.at("hp_combine_fwd").roofline);
  std::string bad = text;
  bad.replace(bad.find("\"roofline\""), 10, "\"maximum\"");
  auto rejected = parse_profile(bad);
  ASSERT_FALSE(rejected);
  EXPECT_NE(rejected.error().message.find("kernels.hp_expert_mlp_bwd.form"), std::string::npos) << rejected.error().message;
}

TEST(ProfileJson, HostSyncIsOptionalWithItsDefault) {
  Profile p;
  p.name = "test";
  p.gpu = "NVIDIA H200";
  p.bf16_tflops = p.fp32_tflops = p.hbm_gbps = 1;
  p.host_sync_us = 23.5;
  const std::string with = to_json(p);
  ASSERT_NE(with.find("\"host_sync_us\": 23.5"), std::string::npos) << with;
  auto parsed = parse_profile(with);
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_DOUBLE_EQ(parsed->host_sync_us, 23.5);
  // Without the field: the documented default.
  const std::string field = "\"host_sync_us\": 23.5,";
  const std::size_t at = with.find(field);
  ASSERT_NE(at, std::string::npos);
  const std::string without = with.substr(0, at) + with.substr(at + field.size());
  auto defaulted = parse_profile(without);
  ASSERT_TRUE(defaulted) << defaulted.error().message << "\n" << without;
  EXPECT_DOUBLE_EQ(defaulted->host_sync_us, kDefaultHostSyncUs);
  // Strict typing still applies.
  const std::size_t number = with.find("23.5");
  auto bad = parse_profile(with.substr(0, number) + "\"fast\"" + with.substr(number + 4));
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("host_sync_us: expected a number"), std::string::npos) << bad.error().message;
}

TEST(TimelineJson, RoundTrips) {
  Timeline t;
  t.source = "simulated";
  t.strategy = "hp";
  t.ranks.push_back({0, {{"router", Phase::kForward, Lane::kCompute, 0, 1500, 10, 20, 3, 0},
                         {"dispatch", Phase::kBackward, Lane::kComm, 1500, 4000, 1e6, 0, 3, 1}}});
  auto parsed = parse_timeline(to_json(t));
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(to_json(*parsed), to_json(t));
  EXPECT_EQ(parsed->end_ns(), 4000);
}

}  // namespace
}  // namespace hpsim::core
