#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "hpsim/core/presets.h"
#include "hpsim/model/traffic.h"

namespace hpsim::model {
namespace {

// A scenario small enough to count by hand: W ranks, d = 8, H = 4, h = 3, s = 2.
core::Scenario tiny(core::Strategy strategy, std::int64_t W, std::int64_t E, std::int64_t k, std::int64_t n) {
  core::Scenario s = core::default_scenarios().front();
  s.parallel = {strategy, W};
  s.model.d_model = 8;
  s.model.num_heads = 4;
  s.model.head_dim = 3;
  s.model.num_experts = E;
  s.model.top_k = k;
  s.model.bytes_per_element = 2;
  s.workload.tokens_per_rank = n;
  return s;
}

LayerTraffic traffic_of(const core::Scenario& s, core::Strategy strategy) {
  auto wl = build_workload(s, strategy);
  HPSIM_ASSERT(wl.has_value(), "{}", wl.error().message);
  return layer_traffic(s.model, *wl);
}

std::string write_trace(const std::string& text) {
  const auto dir = std::filesystem::temp_directory_path() / ("hpsim_traffic_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto path = (dir / "trace.json").string();
  std::ofstream(path) << text;
  return path;
}

// W = 2, E = 4, k = 2, n = 3. Rank 0's tokens pick experts [3, 1, 2, 0] times, rank 1's [0, 1, 2, 3].
core::Scenario hand_trace(core::Ownership ownership) {
  core::Scenario s = tiny(core::Strategy::kEp, 2, 4, 2, 3);
  s.workload.routing = core::Routing::kTrace;
  s.workload.ownership = ownership;
  s.workload.trace_file = write_trace(R"({"format": "hpsim-routing-counts", "version": 1, "num_ranks": 2,
    "tokens_per_rank": 3, "num_experts": 4, "top_k": 2, "ep": [[3, 1, 2, 0], [0, 1, 2, 3]]})");
  return s;
}

TEST(EpTraffic, HandCountedContiguousW2) {
  const auto t = traffic_of(hand_trace(core::Ownership::kContiguous), core::Strategy::kEp);
  ASSERT_EQ(t.phases.size(), 5u);
  EXPECT_EQ(t.phases[0].phase, "metadata");
  EXPECT_EQ(t.phases[1].phase, "dispatch");
  EXPECT_EQ(t.phases[2].phase, "combine");
  EXPECT_EQ(t.phases[3].phase, "combine_bwd");
  EXPECT_EQ(t.phases[4].phase, "dispatch_bwd");
  // Rank 0 owns experts 0, 1. Slots: 0->0: 3+1, 0->1: 2+0, 1->0: 0+1, 1->1: 2+3. A row is d*s = 16 bytes.
  const auto& dispatch = *t.find("dispatch");
  EXPECT_EQ(dispatch.at(0, 0), 64);
  EXPECT_EQ(dispatch.at(0, 1), 32);
  EXPECT_EQ(dispatch.at(1, 0), 16);
  EXPECT_EQ(dispatch.at(1, 1), 80);
  EXPECT_EQ(dispatch.sent(0), 32);
  EXPECT_EQ(dispatch.received(0), 16);
  // Combine sends each copy back: the transpose.
  const auto& combine = *t.find("combine");
  EXPECT_EQ(combine.at(1, 0), 32);
  EXPECT_EQ(combine.at(0, 1), 16);
  // Backward: combine_bwd follows dispatch, dispatch_bwd follows combine.
  EXPECT_EQ(t.find("combine_bwd")->bytes, dispatch.bytes);
  EXPECT_EQ(t.find("dispatch_bwd")->bytes, combine.bytes);
  // Metadata: E/W = 2 int32 counts per pair.
  EXPECT_EQ(t.find("metadata")->at(0, 1), 8);
  EXPECT_EQ(t.metadata_bytes_per_rank, 8);
  // Imbalance of the dispatch sends: max 32 over mean (32 + 16) / 2.
  EXPECT_DOUBLE_EQ(dispatch.send_imbalance(), 32.0 / 24.0);
}

TEST(EpTraffic, HandCountedStridedW2) {
  const auto t = traffic_of(hand_trace(core::Ownership::kStrided), core::Strategy::kEp);
  // Rank 0 owns experts 0, 2. Slots: 0->0: 3+2, 0->1: 1+0, 1->0: 0+2, 1->1: 1+3.
  const auto& dispatch = *t.find("dispatch");
  EXPECT_EQ(dispatch.at(0, 1), 16);
  EXPECT_EQ(dispatch.at(1, 0), 32);
  EXPECT_EQ(dispatch.at(0, 0), 80);
  EXPECT_EQ(dispatch.at(1, 1), 64);
}

TEST(EpTraffic, HandCountedUniformW4) {
  // W = 4, E = 8, k = 2, n = 10, uniform: each token's 2 slots land on a rank with probability
  // 2/8 each, so src -> dst carries n * k / W = 5 slots = 5 * 16 bytes, and a rank sends 3 * 80.
  const auto t = traffic_of(tiny(core::Strategy::kEp, 4, 8, 2, 10), core::Strategy::kEp);
  const auto& dispatch = *t.find("dispatch");
  for (std::int64_t src = 0; src < 4; ++src) {
    for (std::int64_t dst = 0; dst < 4; ++dst) EXPECT_DOUBLE_EQ(dispatch.at(src, dst), 80.0);
    EXPECT_DOUBLE_EQ(dispatch.sent(src), 240.0);
  }
  EXPECT_DOUBLE_EQ(t.find("metadata")->at(2, 3), 2 * 4.0);
  EXPECT_DOUBLE_EQ(t.metadata_bytes_per_rank, 3 * 8.0);
}

TEST(HpTraffic, HandCountedW4AndW2) {
  // n = 5, H = 4, h = 3, s = 2. W = 4: one head per rank, 5 * 1 * 3 * 2 = 30 bytes per pair.
  const auto t4 = traffic_of(tiny(core::Strategy::kHp, 4, 8, 2, 5), core::Strategy::kHp);
  ASSERT_EQ(t4.phases.size(), 4u);
  EXPECT_EQ(t4.find("metadata"), nullptr);
  EXPECT_EQ(t4.metadata_bytes_per_rank, 0);
  for (const auto& m : t4.phases) {
    for (double b : m.bytes) EXPECT_DOUBLE_EQ(b, 30.0) << m.phase;
    EXPECT_DOUBLE_EQ(m.max_sent(), 90.0);
    EXPECT_DOUBLE_EQ(m.send_imbalance(), 1.0);
  }
  // W = 2: two heads per rank, 60 bytes per pair.
  const auto t2 = traffic_of(tiny(core::Strategy::kHp, 2, 8, 2, 5), core::Strategy::kHp);
  for (const auto& m : t2.phases) EXPECT_DOUBLE_EQ(m.at(0, 1), 60.0) << m.phase;
}

TEST(HpTraffic, IsIndependentOfTopK) {
  const auto base = traffic_of(tiny(core::Strategy::kHp, 4, 16, 1, 100), core::Strategy::kHp);
  for (std::int64_t k : {2, 4, 8, 16}) {
    const auto t = traffic_of(tiny(core::Strategy::kHp, 4, 16, k, 100), core::Strategy::kHp);
    for (std::size_t p = 0; p < t.phases.size(); ++p) EXPECT_EQ(t.phases[p].bytes, base.phases[p].bytes) << "k=" << k;
  }
}

TEST(HpTraffic, IsIndependentOfSkewAndMode) {
  auto s = tiny(core::Strategy::kHp, 4, 16, 4, 100);
  const auto base = traffic_of(s, core::Strategy::kHp);
  s.workload.routing = core::Routing::kZipf;
  for (double skew : {0.5, 1.0, 2.5}) {
    s.workload.zipf_skew = skew;
    for (auto mode : {core::WorkloadMode::kExpectation, core::WorkloadMode::kSampled}) {
      s.workload.mode = mode;
      const auto t = traffic_of(s, core::Strategy::kHp);
      for (std::size_t p = 0; p < t.phases.size(); ++p) EXPECT_EQ(t.phases[p].bytes, base.phases[p].bytes);
    }
  }
}

TEST(EpTraffic, ExpectedBytesAreLinearInTopK) {
  // Uniform: every entry, diagonal or not, is n * k / W * d * s.
  const auto one = traffic_of(tiny(core::Strategy::kEp, 4, 16, 1, 100), core::Strategy::kEp);
  for (std::int64_t k : {2, 4, 8}) {
    const auto t = traffic_of(tiny(core::Strategy::kEp, 4, 16, k, 100), core::Strategy::kEp);
    EXPECT_NEAR(t.find("dispatch")->total_sent(), static_cast<double>(k) * one.find("dispatch")->total_sent(), 1e-6);
  }
  // Any routing: all slots (the diagonal included) are n * k * W rows.
  auto s = tiny(core::Strategy::kEp, 4, 16, 1, 100);
  s.workload.routing = core::Routing::kZipf;
  s.workload.zipf_skew = 1.0;
  for (std::int64_t k : {1, 3, 5}) {
    s.model.top_k = k;
    const auto t = traffic_of(s, core::Strategy::kEp);
    double all = 0;
    for (double b : t.find("dispatch")->bytes) all += b;
    EXPECT_NEAR(all, 100.0 * static_cast<double>(k) * 4 * 16, 1e-6);
  }
}

TEST(HpEpTraffic, UniformDispatchRatioIsHhOverKd) {
  struct Shape {
    std::int64_t d, H, h, E, k, W;
  };
  for (const Shape& c : {Shape{1024, 8, 128, 768, 4, 8}, Shape{1024, 8, 128, 1536, 8, 4}, Shape{512, 4, 64, 64, 2, 2},
                         Shape{256, 16, 32, 32, 3, 16}}) {
    core::Scenario s = core::default_scenarios().front();
    s.cluster = core::cluster_preset("h200-16x8").value();
    s.model.d_model = c.d;
    s.model.num_heads = c.H;
    s.model.head_dim = c.h;
    s.model.num_experts = c.E;
    s.model.top_k = c.k;
    s.parallel.num_ranks = c.W;
    const auto ep = traffic_of(s, core::Strategy::kEp);
    const auto hp = traffic_of(s, core::Strategy::kHp);
    const double ratio = hp.find("dispatch")->max_sent() / ep.find("dispatch")->max_sent();
    EXPECT_NEAR(ratio, static_cast<double>(c.H * c.h) / static_cast<double>(c.k * c.d), 1e-12);
    EXPECT_NEAR(ratio, uniform_hp_ep_dispatch_ratio(s.model), 1e-12);
    // Per-rank bytes: EP n k d s (W-1)/W, HP n H h s (W-1)/W.
    const double n = static_cast<double>(s.workload.tokens_per_rank);
    const double frac = static_cast<double>(c.W - 1) / static_cast<double>(c.W);
    const double ep_want = n * static_cast<double>(c.k * c.d * 2) * frac;
    const double hp_want = n * static_cast<double>(c.H * c.h * 2) * frac;
    EXPECT_NEAR(ep.find("dispatch")->max_sent(), ep_want, 1e-12 * ep_want);
    EXPECT_NEAR(hp.find("dispatch")->max_sent(), hp_want, 1e-12 * hp_want);
  }
}

}  // namespace
}  // namespace hpsim::model

namespace hpsim::model {
namespace {

TEST(RankBytes, AgreesWithTheMatrixPerRankTotals) {
  core::Scenario s = core::default_scenarios().back();  // Zipf: uneven rows and columns
  s.parallel.strategy = core::Strategy::kEp;
  auto wl = build_workload(s, core::Strategy::kEp);
  ASSERT_TRUE(wl);
  const auto t = layer_traffic(s.model, *wl);
  for (const auto& m : t.phases) {
    const RankBytes b = rank_bytes(m);
    for (std::int64_t r = 0; r < m.num_ranks; ++r) {
      EXPECT_NEAR(b.sent[static_cast<std::size_t>(r)], m.sent(r), 1e-9 * m.sent(r) + 1e-9);
      EXPECT_NEAR(b.received[static_cast<std::size_t>(r)], m.received(r), 1e-9 * m.received(r) + 1e-9);
    }
    EXPECT_NEAR(b.total, m.total_sent(), 1e-9 * m.total_sent());
    EXPECT_NEAR(b.max_sent, m.max_sent(), 1e-9 * m.max_sent());
    EXPECT_NEAR(b.max_received, m.max_received(), 1e-9 * m.max_received());
  }
}

}  // namespace
}  // namespace hpsim::model
