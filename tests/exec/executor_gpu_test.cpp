// The layer executor on the GPUs at hand: every stage of the model's plan is measured, in
// order, on every rank; traffic and memory are what the layer must post and hold; failures are
// errors, not crashes. Label gpu (skips without a GPU, except the no-GPU case itself).
#include <gtest/gtest.h>

#include <cstdio>

#include "hpsim/core/presets.h"
#include "hpsim/exec/executor.h"
#include "hpsim/kernels/comm.h"
#include "hpsim/model/plan_builder.h"
#include "small_scenario.h"

namespace hpsim::exec {
namespace {

// GTEST_SKIP only leaves the function it is written in, so this is a macro.
#define REQUIRE_GPUS(n)                                                       \
  do {                                                                        \
    const int have_ = kernels::visible_device_count();                                \
    if (have_ < (n)) GTEST_SKIP() << "needs " << (n) << " GPU(s), found " << have_; \
  } while (0)

using testing::small_scenario;

int usable_world() {
  // The largest W <= visible GPUs dividing both H = 4 and E = 16.
  const int have = kernels::visible_device_count();
  return have >= 4 ? 4 : (have >= 2 ? 2 : 1);
}

void expect_plan_stages(const ExecResult& r, core::Strategy strategy) {
  const auto& stages = model::layer_stages(strategy);
  for (const auto& rank : r.timeline.ranks) {
    ASSERT_EQ(rank.spans.size(), stages.size()) << "rank " << rank.rank;
    std::int64_t previous_end = 0;
    for (std::size_t i = 0; i < stages.size(); ++i) {
      EXPECT_EQ(rank.spans[i].stage, stages[i].name) << "rank " << rank.rank << " span " << i;
      EXPECT_EQ(rank.spans[i].phase, stages[i].phase);
      EXPECT_GE(rank.spans[i].start_ns, previous_end) << "spans of one stream must not overlap";
      EXPECT_GE(rank.spans[i].end_ns, rank.spans[i].start_ns);
      previous_end = rank.spans[i].end_ns;
    }
  }
}

TEST(Executor, HpLayerMeasuresEveryPlanStageWithEqualTraffic) {
  REQUIRE_GPUS(1);
  const int w = usable_world();
  const auto s = small_scenario(w, core::Strategy::kHp);
  ExecOptions o;
  o.iterations = 3;
  auto r = execute_layer(s, core::Strategy::kHp, o);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->timeline.ranks.size(), static_cast<std::size_t>(w));
  EXPECT_EQ(r->iteration_us.size(), 3u);
  expect_plan_stages(*r, core::Strategy::kHp);
  // Equal fixed splits: n * (H/W) * h * s bytes between every pair, in every phase.
  const double block = 1000.0 * (4 / w) * 128 * 2;
  for (const auto& m : r->traffic) {
    for (int a = 0; a < w; ++a) {
      for (int b = 0; b < w; ++b) EXPECT_DOUBLE_EQ(m.at(a, b), block) << m.phase;
    }
  }
  // Weights: W_in + W_out (bf16), router + bias (fp32), K and V (bf16), per rank's H/W heads.
  const double L = 4.0 / w;
  const double weights = 2.0 * 512 * 256 * 2 + L * 16 * 128 * 4 + L * 16 * 4 + 2.0 * L * 16 * 128 * 128 * 2;
  for (const auto& rank : r->memory.ranks) {
    EXPECT_GE(rank.weights, weights);
    EXPECT_LT(rank.weights, weights + 6 * 256);  // alignment only
    EXPECT_GT(rank.activations, 0);
    EXPECT_GT(rank.comm_buffers, 0);
  }
}

TEST(Executor, EpLayerMeasuresEveryPlanStageAndPostsEveryCopy) {
  REQUIRE_GPUS(1);
  const int w = usable_world();
  auto s = small_scenario(w, core::Strategy::kEp);
  s.workload.routing = core::Routing::kZipf;
  s.workload.zipf_skew = 1.5;
  ExecOptions o;
  o.iterations = 3;
  auto r = execute_layer(s, core::Strategy::kEp, o);
  ASSERT_TRUE(r) << r.error().message;
  expect_plan_stages(*r, core::Strategy::kEp);
  for (const auto& m : r->traffic) {
    if (m.phase != "dispatch") continue;
    for (int a = 0; a < w; ++a) {
      double row = 0;  // every token's k copies go somewhere (the diagonal included)
      for (int b = 0; b < w; ++b) row += m.at(a, b);
      EXPECT_DOUBLE_EQ(row, 1000.0 * 2 * 256 * 2);
    }
  }
}

void print_numerics(const NumericsReport& r) {
  for (const auto& t : r.tensors) {
    std::printf("  W = %d %s %-9s %9lld values%s: relative L2 %.3e, max |diff| %.3e\n", r.ranks,
                to_string(r.strategy), t.tensor.c_str(), static_cast<long long>(t.count),
                t.summed_over_ranks ? " (summed)" : "", t.relative_l2, t.max_abs);
  }
}

TEST(Executor, NumericsCheckOnOneGpuComparesARunWithItselfBitwise) {
  REQUIRE_GPUS(1);
  // W = 1: the "W-GPU" run and the one-GPU reference are the same layer, so the deterministic
  // kernels must give the same bits; every tensor of the check is there.
  for (auto strategy : {core::Strategy::kHp, core::Strategy::kEp}) {
    auto s = small_scenario(1, strategy);
    s.workload.routing = core::Routing::kZipf;
    s.workload.zipf_skew = 1.0;
    auto r = check_numerics(s, strategy, ExecOptions{});
    ASSERT_TRUE(r) << r.error().message;
    print_numerics(*r);
    ASSERT_EQ(r->tensors.size(), strategy == core::Strategy::kHp ? 7u : 5u);
    for (const auto& t : r->tensors) {
      EXPECT_GT(t.count, 0) << t.tensor;
      EXPECT_EQ(t.max_abs, 0.0) << to_string(strategy) << " " << t.tensor;
    }
  }
}

TEST(ExecutorMultiGpu, WGpuLayersMatchTheOneGpuLayerWithinTolerance) {
  REQUIRE_GPUS(2);
  const int w = usable_world();
  for (auto strategy : {core::Strategy::kHp, core::Strategy::kEp}) {
    auto s = small_scenario(w, strategy);
    s.workload.routing = core::Routing::kZipf;  // uneven EP splits, skewed HP segments
    s.workload.zipf_skew = 1.0;
    auto r = check_numerics(s, strategy, ExecOptions{});
    ASSERT_TRUE(r) << r.error().message;
    print_numerics(*r);
    EXPECT_EQ(r->ranks, w);
    EXPECT_TRUE(r->passed()) << "tolerance " << kNumericsTolerance;
    for (const auto& t : r->tensors) EXPECT_LE(t.relative_l2, kNumericsTolerance) << to_string(strategy) << " " << t.tensor;
  }
}

TEST(Executor, NumericsCheckNeedsForcedRouting) {
  REQUIRE_GPUS(1);
  ExecOptions o;
  o.forced_routing = false;
  auto r = check_numerics(small_scenario(1, core::Strategy::kHp), core::Strategy::kHp, o);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("forced routing"), std::string::npos) << r.error().message;
}

TEST(Executor, ALayerThatCannotFitIsAnErrorNamingSizesOrField) {
  REQUIRE_GPUS(1);
  auto s = small_scenario(1, core::Strategy::kHp);
  s.model.d_model = 4096;
  s.workload.tokens_per_rank = 40'000'000;  // x alone is 328 GB
  auto r = execute_layer(s, core::Strategy::kHp, ExecOptions{});
  ASSERT_FALSE(r);
  // Either the memory check (naming the sizes) or a kernel's shape rule (naming the field) stops it.
  if (r.error().code == core::ErrorCode::kOutOfMemory) {
    EXPECT_NE(r.error().message.find("GB"), std::string::npos) << r.error().message;
  } else {
    EXPECT_EQ(r.error().code, core::ErrorCode::kInvalidArgument) << r.error().message;
    EXPECT_NE(r.error().message.find(':'), std::string::npos) << r.error().message;
  }
}

TEST(Executor, MoreRanksThanGpusIsAnErrorNotAHang) {
  REQUIRE_GPUS(1);
  const int have = kernels::visible_device_count();
  auto s = small_scenario(1, core::Strategy::kEp);
  s.cluster = core::cluster_preset("h200-16x8").value();
  s.parallel = {core::Strategy::kEp, 16};
  if (have >= 16) GTEST_SKIP() << "this machine has 16 GPUs";
  auto r = execute_layer(s, core::Strategy::kEp, ExecOptions{});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, core::ErrorCode::kNoDevice) << r.error().message;
}

TEST(Executor, WithoutAGpuSaysSo) {
  if (kernels::visible_device_count() > 0) GTEST_SKIP() << "a GPU is visible";
  auto r = execute_layer(small_scenario(1, core::Strategy::kHp), core::Strategy::kHp, ExecOptions{});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, core::ErrorCode::kNoDevice);
}

}  // namespace
}  // namespace hpsim::exec
