#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "hpsim/core/json.h"
#include "hpsim/core/presets.h"
#include "hpsim/model/workload.h"

namespace hpsim::model {
namespace {

// Exact inclusion probabilities of successive sampling by dynamic programming over the subsets
// chosen so far (independent of the method under test; fine up to ~16 items).
std::vector<double> exact_inclusion(const std::vector<double>& w, int k) {
  const int n = static_cast<int>(w.size());
  const double total = std::accumulate(w.begin(), w.end(), 0.0);
  std::vector<double> p(std::size_t{1} << n, 0.0);
  p[0] = 1.0;
  std::vector<double> pi(w.size(), 0.0);
  for (std::size_t s = 0; s < p.size(); ++s) {
    if (p[s] == 0) continue;
    const int size = __builtin_popcountll(s);
    if (size == k) {
      for (int i = 0; i < n; ++i) {
        if (s & (std::size_t{1} << i)) pi[static_cast<std::size_t>(i)] += p[s];
      }
      continue;
    }
    double left = total;
    for (int i = 0; i < n; ++i) {
      if (s & (std::size_t{1} << i)) left -= w[static_cast<std::size_t>(i)];
    }
    for (int j = 0; j < n; ++j) {
      if (!(s & (std::size_t{1} << j))) p[s | (std::size_t{1} << j)] += p[s] * w[static_cast<std::size_t>(j)] / left;
    }
  }
  return pi;
}

core::Scenario small_scenario(core::Strategy strategy, std::int64_t W, std::int64_t E, std::int64_t k, std::int64_t n) {
  core::Scenario s = core::default_scenarios().front();
  s.parallel = {strategy, W};
  s.model.num_experts = E;
  s.model.top_k = k;
  s.model.num_heads = 4;
  s.workload.tokens_per_rank = n;
  return s;
}

TEST(InclusionProbabilities, MatchExactEnumerationOnSmallCases) {
  const std::vector<std::vector<double>> cases = {
      {1, 2, 3, 4, 5}, {10, 1, 1, 1, 1, 1}, {0.5, 0.25, 0.125, 0.0625, 0.03125, 0.015625, 0.0078125, 0.00390625}};
  for (const auto& w : cases) {
    for (int k = 1; k < static_cast<int>(w.size()); ++k) {
      const auto got = inclusion_probabilities(w, k);
      const auto want = exact_inclusion(w, k);
      for (std::size_t i = 0; i < w.size(); ++i) {
        EXPECT_NEAR(got[i], want[i], 1e-9) << "items=" << w.size() << " k=" << k << " i=" << i;
      }
    }
  }
}

TEST(InclusionProbabilities, MatchExactEnumerationForSkewedZipf) {
  for (double skew : {0.5, 1.0, 2.0, 3.0}) {
    const auto w = zipf_weights(14, skew);
    for (int k : {1, 2, 4, 8, 13}) {
      const auto got = inclusion_probabilities(w, k);
      const auto want = exact_inclusion(w, k);
      for (std::size_t i = 0; i < w.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-9) << "skew=" << skew << " k=" << k;
    }
  }
}

TEST(InclusionProbabilities, SumToKAndStayInUnitInterval) {
  const auto& pi = zipf_inclusion(768, 4, 1.0);
  EXPECT_NEAR(std::accumulate(pi.begin(), pi.end(), 0.0), 4.0, 1e-9);
  for (double p : pi) {
    EXPECT_GE(p, 0.0);
    EXPECT_LE(p, 1.0);
  }
  // Hotter experts are more likely to be chosen.
  for (std::size_t i = 1; i < pi.size(); ++i) EXPECT_GE(pi[i - 1], pi[i]);
}

TEST(InclusionProbabilities, UniformWeightsGiveKOverE) {
  std::vector<double> w(10, 1.0);
  w[3] = 1.0 + 1e-12;  // take the quadrature path, not the equal-weights shortcut
  const auto pi = inclusion_probabilities(w, 3);
  for (double p : pi) EXPECT_NEAR(p, 0.3, 1e-9);
}

TEST(RoutingWorkload, PerRankLoadsSumToTheTotal) {
  for (auto strategy : {core::Strategy::kEp, core::Strategy::kHp}) {
    for (auto routing : {core::Routing::kUniform, core::Routing::kZipf}) {
      for (auto mode : {core::WorkloadMode::kExpectation, core::WorkloadMode::kSampled}) {
        for (auto ownership : {core::Ownership::kContiguous, core::Ownership::kStrided}) {
          auto s = small_scenario(strategy, 4, 64, 4, 1000);
          s.workload.routing = routing;
          s.workload.zipf_skew = routing == core::Routing::kZipf ? 1.0 : 0.0;
          s.workload.mode = mode;
          s.workload.ownership = ownership;
          auto wl = build_workload(s, strategy);
          ASSERT_TRUE(wl) << wl.error().message;
          const double groups = strategy == core::Strategy::kEp ? 1.0 : 4.0;
          const double total = 4.0 * 1000 * 4 * groups;  // W * n * k per group
          EXPECT_DOUBLE_EQ(wl->total_slots(), total);
          const auto loads = wl->rank_loads();
          EXPECT_NEAR(std::accumulate(loads.begin(), loads.end(), 0.0), total, 1e-9 * total);
          EXPECT_NEAR(std::accumulate(wl->expert_slots.begin(), wl->expert_slots.end(), 0.0), total, 1e-9 * total);
          for (std::int64_t r = 0; r < 4; ++r) EXPECT_NEAR(wl->rank_source_slots(r), 1000.0 * 4 * groups, 1e-9 * total);
        }
      }
    }
  }
}

TEST(RoutingWorkload, SampledModeConvergesToExpectationMode) {
  auto s = small_scenario(core::Strategy::kEp, 4, 64, 4, 50000);
  s.workload.routing = core::Routing::kZipf;
  s.workload.zipf_skew = 1.2;
  auto expected = build_workload(s, core::Strategy::kEp);
  s.workload.mode = core::WorkloadMode::kSampled;
  auto sampled = build_workload(s, core::Strategy::kEp);
  ASSERT_TRUE(expected && sampled);
  // Each expert's count is a sum of W*n Bernoulli(pi_e): standard deviation <= sqrt(mean).
  for (std::size_t e = 0; e < expected->expert_slots.size(); ++e) {
    const double mean = expected->expert_slots[e];
    EXPECT_NEAR(sampled->expert_slots[e], mean, 5 * std::sqrt(mean) + 1) << "expert " << e;
  }
  for (std::int64_t r = 0; r < 4; ++r) {
    EXPECT_NEAR(sampled->rank_load(r) / expected->rank_load(r), 1.0, 0.01) << "rank " << r;
  }
}

TEST(RoutingWorkload, SampledModeIsReproducibleAndSeeded) {
  auto s = small_scenario(core::Strategy::kHp, 2, 16, 2, 300);
  s.workload.routing = core::Routing::kZipf;
  s.workload.zipf_skew = 1.0;
  s.workload.mode = core::WorkloadMode::kSampled;
  s.workload.seed = 7;
  auto a = build_workload(s, core::Strategy::kHp);
  auto b = build_workload(s, core::Strategy::kHp);
  s.workload.seed = 8;
  auto c = build_workload(s, core::Strategy::kHp);
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(a->expert_slots, b->expert_slots);
  EXPECT_NE(a->expert_slots, c->expert_slots);
}

TEST(RoutingWorkload, ContiguousZipfLoadsTheFirstRankAndStridedSpreadsIt) {
  auto s = small_scenario(core::Strategy::kEp, 8, 768, 4, 16384);
  s.workload.routing = core::Routing::kZipf;
  s.workload.zipf_skew = 1.0;
  auto contiguous = build_workload(s, core::Strategy::kEp);
  s.workload.ownership = core::Ownership::kStrided;
  auto strided = build_workload(s, core::Strategy::kEp);
  ASSERT_TRUE(contiguous && strided);
  const auto loads = contiguous->rank_loads();
  EXPECT_EQ(std::max_element(loads.begin(), loads.end()) - loads.begin(), 0);
  EXPECT_GT(contiguous->load_imbalance(), 2.0);
  EXPECT_LT(strided->load_imbalance(), contiguous->load_imbalance());
  EXPECT_GT(strided->load_imbalance(), 1.0);
}

TEST(RoutingWorkload, HpRankLoadsAreBalancedWhateverTheSkew) {
  auto s = small_scenario(core::Strategy::kHp, 4, 64, 4, 1000);
  s.workload.routing = core::Routing::kZipf;
  s.workload.zipf_skew = 2.0;
  for (auto mode : {core::WorkloadMode::kExpectation, core::WorkloadMode::kSampled}) {
    s.workload.mode = mode;
    auto wl = build_workload(s, core::Strategy::kHp);
    ASSERT_TRUE(wl);
    EXPECT_DOUBLE_EQ(wl->load_imbalance(), 1.0);
    // ... while the experts inside a head are not balanced.
    EXPECT_GT(wl->expert_slots[0], 5 * wl->expert_slots[63]);
  }
}

TEST(RoutingWorkload, EpOwnershipRules) {
  EXPECT_EQ(ep_owner(0, 8, 4, core::Ownership::kContiguous), 0);
  EXPECT_EQ(ep_owner(3, 8, 4, core::Ownership::kContiguous), 1);
  EXPECT_EQ(ep_owner(7, 8, 4, core::Ownership::kContiguous), 3);
  EXPECT_EQ(ep_owner(3, 8, 4, core::Ownership::kStrided), 3);
  EXPECT_EQ(ep_owner(5, 8, 4, core::Ownership::kStrided), 1);
}

// ---- Routing trace files -----------------------------------------------------------------------

std::string shipped(const std::string& name) {
  return std::string(HPSIM_SOURCE_DIR) + "/traces/data/scenarios/" + name;
}

TEST(RoutingTrace, ShippedSampleLoadsIntoBothStrategies) {
  auto s = core::load_scenario(shipped("tiny-trace.json"));
  ASSERT_TRUE(s) << s.error().message;
  s->workload.trace_file = shipped("routing-tiny.json");
  auto ep = build_workload(*s, core::Strategy::kEp);
  ASSERT_TRUE(ep) << ep.error().message;
  // EP rows [5,4,2,1] and [3,3,3,3]; rank 0 owns experts 0-1, rank 1 owns 2-3.
  EXPECT_EQ(ep->slots(0, 0), 9);
  EXPECT_EQ(ep->slots(0, 1), 3);
  EXPECT_EQ(ep->slots(1, 0), 6);
  EXPECT_EQ(ep->slots(1, 1), 6);
  auto hp = build_workload(*s, core::Strategy::kHp);
  ASSERT_TRUE(hp) << hp.error().message;
  EXPECT_EQ(hp->expert_slots[0], 8);      // head 0, expert 0: 6 + 2
  EXPECT_EQ(hp->expert_slots[4 + 3], 8);  // head 1, expert 3: 3 + 5
  EXPECT_EQ(hp->slots(0, 1), 12);         // rank 0's sub-tokens of head 1: n * k
}

class TraceFile : public ::testing::Test {
 protected:
  std::string write(const std::string& text) {
    const auto dir = std::filesystem::temp_directory_path() / ("hpsim_trace_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const auto path = (dir / "t.json").string();
    std::ofstream(path) << text;
    return path;
  }
};

TEST_F(TraceFile, RowsThatDoNotSumToNKAreNamed) {
  const auto path = write(R"({"format": "hpsim-routing-counts", "version": 1, "num_ranks": 2, "tokens_per_rank": 2,
    "num_experts": 2, "top_k": 1, "ep": [[1, 1], [2, 1]]})");
  auto t = load_routing_trace(path);
  ASSERT_FALSE(t);
  EXPECT_NE(t.error().message.find(path + ": ep[1]: counts sum to 3, expected tokens_per_rank * top_k = 2"),
            std::string::npos)
      << t.error().message;
}

TEST_F(TraceFile, UnknownAndMissingFieldsAreNamed) {
  const auto path = write(R"({"format": "hpsim-routing-counts", "version": 1, "num_ranks": 2, "tokens_per_rank": 2,
    "num_experts": 2, "colour": "red", "ep": [[1, 1], [1, 1]]})");
  auto t = load_routing_trace(path);
  ASSERT_FALSE(t);
  EXPECT_NE(t.error().message.find("top_k: missing field"), std::string::npos) << t.error().message;
  EXPECT_NE(t.error().message.find("colour: unknown field"), std::string::npos) << t.error().message;
}

TEST_F(TraceFile, CountAboveTokensIsRejected) {
  const auto path = write(R"({"format": "hpsim-routing-counts", "version": 1, "num_ranks": 1, "tokens_per_rank": 2,
    "num_experts": 3, "top_k": 2, "ep": [[3, 1, 0]]})");
  auto t = load_routing_trace(path);
  ASSERT_FALSE(t);
  EXPECT_NE(t.error().message.find("ep[0][0]: must be in [0, tokens_per_rank = 2]"), std::string::npos)
      << t.error().message;
}

TEST_F(TraceFile, ShapeMismatchWithTheScenarioNamesBothFields) {
  auto s = core::load_scenario(shipped("tiny-trace.json"));
  ASSERT_TRUE(s);
  s->workload.trace_file = shipped("routing-tiny.json");
  s->workload.tokens_per_rank = 7;
  auto wl = build_workload(*s, core::Strategy::kEp);
  ASSERT_FALSE(wl);
  EXPECT_NE(wl.error().message.find("workload.trace_file"), std::string::npos);
  EXPECT_NE(wl.error().message.find("workload.tokens_per_rank = 7"), std::string::npos) << wl.error().message;
}

}  // namespace
}  // namespace hpsim::model
