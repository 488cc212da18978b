// Golden test: the structured values of `hpsim simulate --json` on the shipped default scenarios
// against a committed expected report, with tolerances (never stdout text).
// After an intended change of the model, regenerate with
//   HPSIM_UPDATE_GOLDEN=1 <build>/tests/apps/hpsim_cli_tests --gtest_filter='Golden*'
// and review the diff of tests/apps/golden/simulate_default.json.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "run_cli.h"

namespace hpsim::testing {
namespace {

using nlohmann::json;

constexpr double kRelTol = 1e-6;
constexpr double kAbsTol = 1e-9;

void compare(const json& got, const json& want, const std::string& path, std::vector<std::string>& diffs) {
  if (diffs.size() > 20) return;
  if (want.is_number() && got.is_number()) {
    const double g = got.get<double>(), w = want.get<double>();
    if (std::fabs(g - w) > kAbsTol + kRelTol * std::fabs(w)) {
      diffs.push_back(path + ": got " + std::to_string(g) + ", expected " + std::to_string(w));
    }
    return;
  }
  if (got.type() != want.type()) {
    diffs.push_back(path + ": got " + std::string(got.type_name()) + ", expected " + want.type_name());
    return;
  }
  if (want.is_object()) {
    for (const auto& [key, value] : want.items()) {
      if (!got.contains(key)) {
        diffs.push_back(path + "." + key + ": missing");
        continue;
      }
      compare(got[key], value, path + "." + key, diffs);
    }
    for (const auto& [key, value] : got.items()) {
      if (!want.contains(key)) diffs.push_back(path + "." + key + ": not in the golden file");
    }
  } else if (want.is_array()) {
    if (got.size() != want.size()) {
      diffs.push_back(path + ": " + std::to_string(got.size()) + " elements, expected " + std::to_string(want.size()));
      return;
    }
    for (std::size_t i = 0; i < want.size(); ++i) compare(got[i], want[i], path + "[" + std::to_string(i) + "]", diffs);
  } else if (got != want) {
    diffs.push_back(path + ": got " + got.dump() + ", expected " + want.dump());
  }
}

TEST(Golden, SimulateJsonOnTheDefaultScenarios) {
  const std::string golden = std::string(HPSIM_SOURCE_DIR) + "/tests/apps/golden/simulate_default.json";
  const auto r = run_cli({"simulate", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json got = json::parse(r.out);
  if (const char* update = std::getenv("HPSIM_UPDATE_GOLDEN"); update && std::string(update) == "1") {
    std::ofstream(golden) << got.dump(1) << "\n";
    GTEST_SKIP() << "rewrote " << golden;
  }
  const std::string text = read_file(golden);
  ASSERT_FALSE(text.empty()) << golden << " is missing";
  std::vector<std::string> diffs;
  compare(got, json::parse(text), "$", diffs);
  std::string all;
  for (const auto& d : diffs) all += d + "\n";
  EXPECT_TRUE(diffs.empty()) << all;
}

}  // namespace
}  // namespace hpsim::testing
