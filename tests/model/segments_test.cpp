#include "hpsim/model/segments.h"

#include <gtest/gtest.h>

#include <cmath>
#include <utility>
#include <vector>

#include "hpsim/core/presets.h"
#include "hpsim/model/cost.h"
#include "hpsim/model/data_files.h"
#include "hpsim/model/estimate.h"
#include "hpsim/model/plan_builder.h"

namespace hpsim::model {
namespace {

const core::Profile& shipped_profile() {
  static const core::Profile p = load_model_profile("h200-datasheet").value();
  return p;
}

// Sum over c >= from of P(c) g(c) for c ~ Binomial(trials, p): the whole mass function.
template <typename G>
double binomial_sum(std::int64_t trials, double p, std::int64_t from, G g) {
  double sum = 0;
  for (std::int64_t c = from; c <= trials; ++c) {
    const double log_pmf = std::lgamma(static_cast<double>(trials) + 1) - std::lgamma(static_cast<double>(c) + 1) -
                           std::lgamma(static_cast<double>(trials - c) + 1) + static_cast<double>(c) * std::log(p) +
                           static_cast<double>(trials - c) * std::log1p(-p);
    sum += std::exp(log_pmf) * g(c);
  }
  return sum;
}

// E[ceil(c / T)], and E[ceil(c / T) 1(c > T)] (the items of segments cut into several).
double exact_items(std::int64_t trials, double p, std::int64_t T) {
  return binomial_sum(trials, p, 1, [T](std::int64_t c) { return static_cast<double>((c + T - 1) / T); });
}
double exact_split_items(std::int64_t trials, double p, std::int64_t T) {
  return binomial_sum(trials, p, T + 1, [T](std::int64_t c) { return static_cast<double>((c + T - 1) / T); });
}

TEST(ExpectedItems, MatchTheExactBinomialSum) {
  for (double p : {0.0005, 0.005, 0.02, 0.05, 0.2}) {
    for (std::int64_t T : kSegmentTileRows) {
      const double want = exact_items(4096, p, T);
      EXPECT_NEAR(expected_items(4096, p, T), want, 0.01 * want) << "p = " << p << ", T = " << T;
    }
  }
}

TEST(ExpectedItems, SmallSegmentsNeedOneItemWhenNotEmpty) {
  // Mean 2 rows: never more than one tile; the item count is P(c > 0) = 1 - (1 - p)^trials.
  EXPECT_DOUBLE_EQ(expected_items(1000, 0.002, 64), 1 - std::pow(0.998, 1000));
  EXPECT_DOUBLE_EQ(expected_items(1000, 0, 64), 0);
  EXPECT_DOUBLE_EQ(expected_items(1000, 1, 64), 16);  // every row lands: ceil(1000 / 64)
}

TEST(ExpectedSplitItems, MatchTheExactBinomialSum) {
  // Means from 41 to 6,554 rows against items of 256 to 2,048 rows: from rarely split to always.
  for (double p : {0.005, 0.02, 0.05, 0.2, 0.8}) {
    for (std::int64_t T : {256, 1024, 2048}) {
      const double want = exact_split_items(8192, p, T);
      EXPECT_NEAR(expected_split_items(8192, p, T), want, 0.01 * want + 1e-6) << "p = " << p << ", T = " << T;
    }
  }
  EXPECT_DOUBLE_EQ(expected_split_items(1000, 1, 256), 4);  // every row lands: ceil(1000 / 256)
  EXPECT_DOUBLE_EQ(expected_split_items(1000, 1, 1024), 0);  // one item, no partial sums
  EXPECT_DOUBLE_EQ(expected_split_items(1000, 0, 256), 0);
}

TEST(HpWgradItemRows, HalfAnSmShareInTilesWithinTheBounds) {
  EXPECT_EQ(hp_wgrad_item_rows(16384 * 8 * 4, 256), 2048);  // the paper's W = 2 shapes: the most
  EXPECT_EQ(hp_wgrad_item_rows(16384 * 8 * 1, 256), 1024);  // 131,072 rows, 2 units: 993 -> 1024
  EXPECT_EQ(hp_wgrad_item_rows(4096, 256), 256);            // the fewest
  EXPECT_EQ(hp_wgrad_item_rows(65536, 128), 256);           // f = 128: one unit per item, 249 -> 256
  EXPECT_EQ(hp_wgrad_item_rows(100000, 64), 384);           // f = 64 still one unit: 379 -> 384
}

core::Scenario one_rank(core::Strategy strategy, std::int64_t n, std::int64_t k, double skew) {
  core::Scenario s = core::scenario_preset("paper-4.2b-h200x8-uniform").value();
  s.parallel = {strategy, 1};
  s.workload.tokens_per_rank = n;
  s.model.top_k = k;
  if (skew > 0) {
    s.workload.routing = core::Routing::kZipf;
    s.workload.zipf_skew = skew;
  }
  return s;
}

// Recorded routing of EP on the one rank of `s` (E = counts.size(), n and k from `s`).
core::Expected<RoutingWorkload> one_rank_recorded(core::Scenario& s, std::vector<double> counts) {
  s.model.num_experts = static_cast<std::int64_t>(counts.size());
  RoutingTrace t;
  t.num_ranks = 1;
  t.tokens_per_rank = s.workload.tokens_per_rank;
  t.num_experts = s.model.num_experts;
  t.top_k = s.model.top_k;
  t.ep_counts = std::move(counts);
  return workload_from_trace(s, core::Strategy::kEp, t);
}

TEST(SegmentTiles, RecordedCountsAreCountedExactly) {
  // EP, one rank, E = 4, k = 2, n = 300: experts get 300, 200, 100 and 0 rows.
  core::Scenario s = one_rank(core::Strategy::kEp, 300, 2, 0);
  auto w = one_rank_recorded(s, {300, 200, 100, 0});
  ASSERT_TRUE(w) << w.error().message;
  EXPECT_FALSE(w->is_expected);
  const auto tiles = segment_tiles(*w);
  ASSERT_EQ(tiles.size(), 1u);
  EXPECT_EQ(tiles[0].segments, 4);
  EXPECT_EQ(tiles[0].nonempty, 3);
  EXPECT_EQ(tiles[0].items_of(64), 5 + 4 + 2);
  EXPECT_EQ(tiles[0].items_of(128), 3 + 2 + 1);
  EXPECT_EQ(tiles[0].items_of(192), 2 + 2 + 1);
  EXPECT_EQ(tiles[0].items_of(2048), 3);
  EXPECT_EQ(tiles[0].padded_rows(128), 6 * 128);
  EXPECT_EQ(tiles[0].split_items, 0);  // no weight-gradient item rows given
  const auto split = segment_tiles(*w, 128);
  EXPECT_EQ(split[0].split_items, 3 + 2);  // 300 and 200 rows are cut into 128-row items; 100 is one
}

TEST(SegmentTiles, SampledCountsAgreeWithTheExpectation) {
  for (auto strategy : {core::Strategy::kEp, core::Strategy::kHp}) {
    core::Scenario s = one_rank(strategy, 4096, 2, 1.0);
    s.parallel.num_ranks = 2;
    s.cluster = core::cluster_preset("h200x8").value();
    auto expected = build_workload(s, strategy);
    s.workload.mode = core::WorkloadMode::kSampled;
    auto sampled = build_workload(s, strategy);
    ASSERT_TRUE(expected && sampled);
    EXPECT_TRUE(expected->is_expected);
    const auto e = segment_tiles(*expected);
    const auto x = segment_tiles(*sampled);
    for (std::size_t r = 0; r < e.size(); ++r) {
      EXPECT_EQ(x[r].segments, e[r].segments);
      EXPECT_NEAR(x[r].nonempty, e[r].nonempty, 0.03 * e[r].nonempty) << core::to_string(strategy) << " rank " << r;
      for (std::int64_t T : kSegmentTileRows) {
        EXPECT_NEAR(x[r].items_of(T), e[r].items_of(T), 0.03 * e[r].items_of(T))
            << core::to_string(strategy) << " rank " << r << " T " << T;
      }
    }
  }
}

// Work of one expert-MLP family on rank 0 of a scenario, from the plan the estimate uses.
// Rank 0's work as the plan prices it (tiles with the weight-gradient items of the strategy).
KernelWork mlp_work(const core::Scenario& s, core::Strategy strategy, KernelFamily family,
                    SegmentTiles* tiles_out = nullptr) {
  auto workload = build_workload(s, strategy);
  HPSIM_ASSERT(workload.has_value(), "{}", workload.error().message);
  const LayerShape x = LayerShape::of(s, strategy == core::Strategy::kEp);
  const double rows = strategy == core::Strategy::kEp ? workload->rank_load(0) : x.n * x.H * x.k;
  const auto tiles =
      segment_tiles(*workload, wgrad_item_rows(strategy, static_cast<std::int64_t>(rows), s.model.expert_hidden));
  if (tiles_out != nullptr) *tiles_out = tiles[0];
  return moe_kernel_work(family, x, rows, tiles[0]);
}

TEST(ExpertMlpWork, SegmentsLongerThanOneWeightGradientItemPayTheirPartialSums) {
  // One rank, n = 16384, k = 1: HP items of 1024 rows (131,072 rows, f = 256), EP of 1024. Uniform
  // segments (about 21 rows) are one item each; under Zipf(2) the hot experts (about 61 % of a
  // head's 16,384 rows, or of the EP rank's) are cut into several, each of which writes and reads
  // fp32 partials of both gradients.
  const double h = 128, d = 1024, f = 256;
  for (auto strategy : {core::Strategy::kHp, core::Strategy::kEp}) {
    const KernelFamily family =
        strategy == core::Strategy::kHp ? KernelFamily::kHpExpertMlpBwd : KernelFamily::kEpExpertMlpBwd;
    const double w = strategy == core::Strategy::kHp ? h : d;
    SegmentTiles uniform, skewed;
    mlp_work(one_rank(strategy, 16384, 1, 0), strategy, family, &uniform);
    const KernelWork with = mlp_work(one_rank(strategy, 16384, 1, 2.0), strategy, family, &skewed);
    EXPECT_EQ(uniform.split_items, 0) << core::to_string(strategy);
    EXPECT_GT(skewed.split_items, 10) << core::to_string(strategy);
    SegmentTiles none = skewed;
    none.split_items = 0;
    const core::Scenario sc = one_rank(strategy, 16384, 1, 2.0);
    const LayerShape x = LayerShape::of(sc, strategy == core::Strategy::kEp);
    const double rows = strategy == core::Strategy::kEp ? build_workload(sc, strategy)->rank_load(0) : x.n * x.H * x.k;
    const KernelWork without = moe_kernel_work(family, x, rows, none);
    const double partials = skewed.split_items * 2 * w * f * 8;
    EXPECT_NEAR(with.bytes - without.bytes, partials, 1e-9 * with.bytes) << core::to_string(strategy);
    EXPECT_EQ(with.flops, without.flops);
  }
}

TEST(ExpertMlpWork, SkewedRoutingStreamsFewerWeights) {
  // Zipf(2) at k = 1: a few experts take nearly every row, most segments are empty.
  const std::pair<core::Strategy, KernelFamily> cases[] = {{core::Strategy::kHp, KernelFamily::kHpExpertMlpFwd},
                                                           {core::Strategy::kHp, KernelFamily::kHpExpertMlpBwd},
                                                           {core::Strategy::kEp, KernelFamily::kEpExpertMlpFwd},
                                                           {core::Strategy::kEp, KernelFamily::kEpExpertMlpBwd}};
  for (const auto& [strategy, family] : cases) {
    const KernelWork uniform = mlp_work(one_rank(strategy, 4096, 1, 0), strategy, family);
    const KernelWork skewed = mlp_work(one_rank(strategy, 4096, 1, 2.0), strategy, family);
    EXPECT_LT(skewed.bytes, 0.8 * uniform.bytes) << name_of(family);
    EXPECT_LT(skewed.flops, uniform.flops) << name_of(family);  // fewer padded tiles
  }
  // The forward streams only the non-empty segments' weights: far fewer than E.
  auto w = build_workload(one_rank(core::Strategy::kHp, 4096, 1, 2.0), core::Strategy::kHp);
  ASSERT_TRUE(w);
  const auto tiles = segment_tiles(*w);
  EXPECT_LT(tiles[0].nonempty, 0.25 * tiles[0].segments);
}

TEST(ExpertMlpWork, UniformPaperShapesKeepTheirWeightBytes) {
  // One rank, n = 16384, k = 4, E = 768, f = 256: about 85 rows per segment, so every segment is
  // non-empty and the weights are streamed once per segment and pass, as before tiles.
  const double n = 16384, d = 1024, H = 8, h = 128, E = 768, k = 4, f = 256, s = 2;
  {
    const core::Scenario sc = one_rank(core::Strategy::kHp, 16384, 4, 0);
    const double R = n * H * k, weights = H * E * 2 * h * f * s;
    const KernelWork fwd = mlp_work(sc, core::Strategy::kHp, KernelFamily::kHpExpertMlpFwd);
    EXPECT_NEAR(fwd.bytes, 2 * R * h * s + weights, 0.01 * fwd.bytes);
    EXPECT_GT(fwd.flops, 4 * R * h * f);  // 192-row items of ~85 rows
    const KernelWork bwd = mlp_work(sc, core::Strategy::kHp, KernelFamily::kHpExpertMlpBwd);
    // One pass reads the weights and writes the gradients.
    EXPECT_NEAR(bwd.bytes, 3 * R * h * s + 2 * weights, 0.01 * bwd.bytes);
    EXPECT_GT(bwd.flops, 10 * R * h * f);  // 64-row tiles of ~85 rows
  }
  {
    const core::Scenario sc = one_rank(core::Strategy::kEp, 16384, 4, 0);
    const double R = n * k, weights = E * 2 * d * f * s;
    const KernelWork fwd = mlp_work(sc, core::Strategy::kEp, KernelFamily::kEpExpertMlpFwd);
    EXPECT_NEAR(fwd.bytes, 2 * R * d * s + weights + 2 * R * f * s, 0.01 * fwd.bytes);
    const KernelWork bwd = mlp_work(sc, core::Strategy::kEp, KernelFamily::kEpExpertMlpBwd);
    EXPECT_NEAR(bwd.bytes, 3 * R * d * s + 2 * R * f * s + 2 * weights, 0.01 * bwd.bytes);
  }
}

TEST(ExpertMlpWork, UniformDefaultScenarioKeepsItsBytesAndPadsItsRowsALittle) {
  // W = 8, n = 16384: EP's local experts get about 683 rows each, HP's segments as many.
  const core::Scenario sc = core::default_scenarios().front();
  const double n = 16384, d = 1024, E = 768, W = 8, k = 4, f = 256, s = 2;
  const double R = n * k;  // EP rank load under uniform routing
  const KernelWork fwd = mlp_work(sc, core::Strategy::kEp, KernelFamily::kEpExpertMlpFwd);
  EXPECT_NEAR(fwd.bytes, 2 * R * d * s + 2 * R * f * s + E / W * 2 * d * f * s, 1e-6 * fwd.bytes);
  EXPECT_GT(fwd.flops, 4 * R * d * f);
  EXPECT_LT(fwd.flops, 1.15 * 4 * R * d * f);  // 128-row tiles of ~683 rows
}

TEST(ExpertMlpWork, FlopsArePaddedToTheKernelsTiles) {
  // Recorded routing: one EP expert with 300 rows on one rank.
  core::Scenario s = one_rank(core::Strategy::kEp, 300, 1, 0);
  auto w = one_rank_recorded(s, {300, 0});
  ASSERT_TRUE(w);
  const auto tiles = segment_tiles(*w);
  const LayerShape x = LayerShape::of(s, true);
  const double d = 1024, f = 256, sb = 2;
  const KernelWork fwd = moe_kernel_work(KernelFamily::kEpExpertMlpFwd, x, 300, tiles[0]);
  EXPECT_DOUBLE_EQ(fwd.flops, 4 * 384 * d * f);                       // 3 tiles of 128 rows
  EXPECT_DOUBLE_EQ(fwd.bytes, 2 * 300 * d * sb + 2 * 300 * f * sb + 2 * d * f * sb);  // the one non-empty expert
  const KernelWork bwd = moe_kernel_work(KernelFamily::kEpExpertMlpBwd, x, 300, tiles[0]);
  EXPECT_DOUBLE_EQ(bwd.flops, 4 * 384 * d * f + 4 * 320 * d * f);    // dX on 128-row tiles, dW on 64-row steps
  // The non-empty expert's weights read, both experts' gradients written (the empty one's zeros).
  EXPECT_DOUBLE_EQ(bwd.bytes, 3 * 300 * d * sb + 2 * 300 * f * sb + (1 + 2) * 2 * d * f * sb);
}

// ---- Collectives of a one-rank layer and EP's host round trip ----------------------------------

TEST(CopyFloor, ExpertMlpsMoveTheirBytesNoFasterThanTheDeviceCopies) {
  core::KernelFit fit;
  fit.alpha_us = 5;
  fit.tflops = 500;
  fit.gbps = 10000;  // a fitted byte rate above the copy ceiling
  const KernelWork memory_bound{1e9, 8e8};  // 2 us of FLOPs, 80 us of bytes at the fitted rate
  EXPECT_NEAR(kernel_time_us(fit, memory_bound), 5 + 2 + 80, 1e-9);
  EXPECT_NEAR(kernel_time_us(fit, memory_bound, 4000), 5 + 200, 1e-9);  // 800 MB at 4 TB/s
  EXPECT_NEAR(kernel_time_us(fit, memory_bound, 0), 5 + 2 + 80, 1e-9);  // no ceiling: no floor
  const KernelWork compute_bound{1e11, 8e8};  // 200 us of FLOPs: above the floor
  EXPECT_NEAR(kernel_time_us(fit, compute_bound, 4000), 5 + 200 + 80, 1e-9);
  for (KernelFamily f : {KernelFamily::kHpExpertMlpFwd, KernelFamily::kHpExpertMlpBwd, KernelFamily::kEpExpertMlpFwd,
                         KernelFamily::kEpExpertMlpBwd})
    EXPECT_TRUE(has_copy_floor(f)) << name_of(f);
  for (KernelFamily f : {KernelFamily::kHpGroup, KernelFamily::kHpRouterFwd, KernelFamily::kEpPermute})
    EXPECT_FALSE(has_copy_floor(f)) << name_of(f);

  // In a plan: with a profile whose expert-MLP byte rate is far above its copy ceiling, a skewed
  // backward (few rows, every segment's gradients written) costs at least its bytes at the ceiling.
  core::Profile profile = shipped_profile();
  profile.kernels.at("hp_expert_mlp_bwd").gbps = 1e6;
  const core::Scenario s = one_rank(core::Strategy::kHp, 4096, 1, 2.0);
  auto plan = build_layer_plan(s, profile, core::Strategy::kHp);
  ASSERT_TRUE(plan) << plan.error().message;
  int checked = 0;
  for (const auto& st : plan->stages) {
    if (st.kernel != "hp_expert_mlp_bwd") continue;
    ++checked;
    const double floor_ns = profile.kernels.at("hp_expert_mlp_bwd").alpha_us * 1e3 + st.bytes[0] / profile.hbm_gbps;
    EXPECT_GE(st.duration_ns[0], floor_ns - 1e-6);
    EXPECT_GT(st.bytes[0], 0);
  }
  EXPECT_EQ(checked, 1);
}

TEST(OneRankCollectives, AreDeviceCopiesOfTheRanksOwnBlock) {
  const core::Profile& profile = shipped_profile();
  for (auto strategy : {core::Strategy::kEp, core::Strategy::kHp}) {
    const core::Scenario s = one_rank(strategy, 16384, 4, 0);
    auto plan = build_layer_plan(s, profile, strategy);
    ASSERT_TRUE(plan) << plan.error().message;
    int collectives = 0;
    for (const auto& st : plan->stages) {
      if (st.kind != StageKind::kCollective) continue;
      ++collectives;
      double want_ns = 2 * st.traffic.at(0, 0) / profile.hbm_gbps;
      if (st.name == "metadata") want_ns += profile.host_sync_us * 1e3;
      EXPECT_DOUBLE_EQ(st.local_ns, want_ns) << core::to_string(strategy) << " " << st.name;
      EXPECT_GT(st.local_ns, 0);
    }
    EXPECT_GE(collectives, 4) << core::to_string(strategy);  // dispatch, combine and their backward
  }
  // HP's dispatch moves n H h s = 33.5 MB: read and written at the copy ceiling.
  const double bytes = 16384.0 * 8 * 128 * 2;
  const auto r = estimate_strategy(one_rank(core::Strategy::kHp, 16384, 4, 0), profile, core::Strategy::kHp);
  ASSERT_TRUE(r);
  int dispatches = 0;
  for (const auto& st : r->stages) {
    if (st.stage == "dispatch") {
      ++dispatches;
      EXPECT_NEAR(st.max_us, 2 * bytes / profile.hbm_gbps / 1e3, 1e-9);
    }
  }
  EXPECT_GE(dispatches, 1);
}

TEST(OneRankCollectives, SeveralRanksPayOnlyTheHostRoundTripLocally) {
  core::Profile profile = shipped_profile();
  profile.host_sync_us = 37;
  const core::Scenario s = core::default_scenarios().front();  // W = 8
  for (auto strategy : {core::Strategy::kEp, core::Strategy::kHp}) {
    auto plan = build_layer_plan(s, profile, strategy);
    ASSERT_TRUE(plan);
    for (const auto& st : plan->stages) {
      if (st.kind != StageKind::kCollective) continue;
      EXPECT_DOUBLE_EQ(st.local_ns, st.name == "metadata" ? 37e3 : 0.0) << st.name;
    }
  }
}

}  // namespace
}  // namespace hpsim::model
