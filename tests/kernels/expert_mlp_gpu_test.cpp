// HP fused expert MLP on the GPU against the float64 twin: bf16 operands with fp32 accumulation,
// so relative L2 error within 1e-2 for y, dx and the weight gradients; padding rows exactly zero;
// experts without rows get exactly zero gradients; two runs bitwise equal; outputs poisoned.
#include <cstdio>

#include "gpu_test_util.h"
#include "hpsim/kernels/expert_mlp.h"
#include "hpsim/kernels/grouping.h"
#include "hpsim/kernels/ref.h"

namespace hpsim::kernels {
namespace {

using namespace testing;

// kHotAndEmpty (k = 1): 60 % of the tokens pick expert 0, the rest the experts 1 .. E/2 - 1
// uniformly, so the upper half of the experts is empty.
enum class Routing { kUniform, kOneExpertTakesAll, kHotAndEmpty };

struct MlpCase {
  std::int64_t L, N, k, E, f, pad;
  Routing routing;
};

struct MlpProblem {
  MlpCase c;
  std::int64_t h = 128, rows = 0, total = 0;
  std::vector<Bf16> x, wk, wv, dy;
  std::vector<std::int32_t> offsets, perm;

  MlpProblem(const MlpCase& mc, std::uint64_t seed) : c(mc) {
    core::Rng rng(seed);
    x = random_bf16(rng, static_cast<std::size_t>(c.N * c.L * h), 1.0);
    wk = random_bf16(rng, static_cast<std::size_t>(c.L * c.E * c.f * h), 1.0 / std::sqrt(128.0));
    wv = random_bf16(rng, wk.size(), 1.0 / std::sqrt(static_cast<double>(c.f)));
    auto topk = random_topk(rng, c.L, c.N, c.k, c.E);
    if (c.routing == Routing::kOneExpertTakesAll)
      for (std::int64_t lt = 0; lt < c.L * c.N; ++lt)
        for (std::int64_t j = 0; j < c.k; ++j) topk[static_cast<std::size_t>(lt * c.k + j)] = static_cast<std::int32_t>(j);
    if (c.routing == Routing::kHotAndEmpty) {
      HPSIM_ASSERT(c.k == 1 && c.E >= 4, "kHotAndEmpty is for k = 1");
      for (auto& e : topk)
        e = rng.below(10) < 6 ? 0 : static_cast<std::int32_t>(1 + rng.below(static_cast<std::uint64_t>(c.E / 2 - 1)));
    }
    GroupingArgs g;
    g.num_heads = c.L;
    g.num_tokens = c.N;
    g.top_k = c.k;
    g.num_experts = c.E;
    g.pad_to = c.pad;
    rows = grouping_rows_bound(g);
    offsets.resize(static_cast<std::size_t>(c.L * c.E + 1));
    perm.resize(static_cast<std::size_t>(rows));
    std::vector<std::int32_t> inverse(topk.size());
    g.topk_expert = topk.data();
    g.offsets = offsets.data();
    g.perm = perm.data();
    g.inverse = inverse.data();
    HPSIM_ASSERT(ref::run(g).is_ok(), "grouping");
    total = offsets.back();
    dy = random_bf16(rng, static_cast<std::size_t>(rows * h), 1.0);
  }

  template <typename Args>
  void fill_shape(Args& a) const {
    a.num_heads = c.L;
    a.num_tokens = c.N;
    a.top_k = c.k;
    a.num_experts = c.E;
    a.head_dim = h;
    a.hidden = c.f;
    a.rows = rows;
  }
};

void check_forward(const MlpCase& mc, std::uint64_t seed, ExpertMlpAlgo algo) {
  MlpProblem p(mc, seed);
  std::vector<Bf16> y_ref(static_cast<std::size_t>(p.rows * p.h));
  ExpertMlpForwardArgs a;
  p.fill_shape(a);
  a.x = p.x.data();
  a.offsets = p.offsets.data();
  a.perm = p.perm.data();
  a.w_k = p.wk.data();
  a.w_v = p.wv.data();
  a.y = y_ref.data();
  ASSERT_TRUE(ref::run(a).is_ok());

  DeviceBuffer<Bf16> x_d(p.x), wk_d(p.wk), wv_d(p.wv), y_d(y_ref.size());
  DeviceBuffer<std::int32_t> off_d(p.offsets), perm_d(p.perm);
  a.x = x_d.get();
  a.offsets = off_d.get();
  a.perm = perm_d.get();
  a.w_k = wk_d.get();
  a.w_v = wv_d.get();
  a.y = y_d.get();
  a.algo = algo;
  auto ws = workspace(workspace_bytes(a));
  std::vector<Bf16> first;
  for (int run = 0; run < 2; ++run) {
    y_d.poison();
    const auto status = launch(a, ws.get(), nullptr);
    ASSERT_TRUE(status.is_ok()) << status.error().message;
    const auto y = y_d.download();
    const auto yd = to_double(y);
    EXPECT_EQ(count_nonfinite(yd, p.total * p.h), 0) << "unwritten or non-finite rows";
    const double err_y = rel_l2(yd, to_double(y_ref), p.total * p.h);
    if (run == 0) std::printf("[ rel. L2 ] y %.2e (tolerance 1e-2)\n", err_y);
    EXPECT_LT(err_y, 1e-2);
    for (std::int64_t r = 0; r < p.total; ++r) {
      if (p.perm[static_cast<std::size_t>(r)] >= 0) continue;
      for (std::int64_t i = 0; i < p.h; ++i) {
        ASSERT_EQ(yd[static_cast<std::size_t>(r * p.h + i)], 0.0) << "padding row " << r;
      }
    }
    if (run == 0)
      first = y;
    else
      EXPECT_TRUE(bitwise_equal(y, first));
  }
}

void check_backward(const MlpCase& mc, std::uint64_t seed, ExpertMlpAlgo algo) {
  MlpProblem p(mc, seed);
  std::vector<Bf16> dx_ref(static_cast<std::size_t>(p.rows * p.h)), dwk_ref(p.wk.size()), dwv_ref(p.wk.size());
  ExpertMlpBackwardArgs a;
  p.fill_shape(a);
  a.x = p.x.data();
  a.offsets = p.offsets.data();
  a.perm = p.perm.data();
  a.w_k = p.wk.data();
  a.w_v = p.wv.data();
  a.dy = p.dy.data();
  a.dx_grouped = dx_ref.data();
  a.d_w_k = dwk_ref.data();
  a.d_w_v = dwv_ref.data();
  ASSERT_TRUE(ref::run(a).is_ok());

  DeviceBuffer<Bf16> x_d(p.x), wk_d(p.wk), wv_d(p.wv), dy_d(p.dy), dx_d(dx_ref.size()), dwk_d(p.wk.size()),
      dwv_d(p.wk.size());
  DeviceBuffer<std::int32_t> off_d(p.offsets), perm_d(p.perm);
  a.x = x_d.get();
  a.offsets = off_d.get();
  a.perm = perm_d.get();
  a.w_k = wk_d.get();
  a.w_v = wv_d.get();
  a.dy = dy_d.get();
  a.dx_grouped = dx_d.get();
  a.d_w_k = dwk_d.get();
  a.d_w_v = dwv_d.get();
  a.algo = algo;
  auto ws = workspace(workspace_bytes(a));
  std::vector<Bf16> first_dx, first_dwk, first_dwv;
  for (int run = 0; run < 2; ++run) {
    dx_d.poison();
    dwk_d.poison();
    dwv_d.poison();
    const auto status = launch(a, ws.get(), nullptr);
    ASSERT_TRUE(status.is_ok()) << status.error().message;
    const auto dx = dx_d.download(), dwk = dwk_d.download(), dwv = dwv_d.download();
    EXPECT_EQ(count_nonfinite(to_double(dx), p.total * p.h), 0);
    EXPECT_EQ(count_nonfinite(to_double(dwk)), 0);
    EXPECT_EQ(count_nonfinite(to_double(dwv)), 0);
    const double err_dx = rel_l2(to_double(dx), to_double(dx_ref), p.total * p.h);
    const double err_dwk = rel_l2(to_double(dwk), to_double(dwk_ref)), err_dwv = rel_l2(to_double(dwv), to_double(dwv_ref));
    if (run == 0) std::printf("[ rel. L2 ] dx %.2e, dK %.2e, dV %.2e (tolerance 1e-2)\n", err_dx, err_dwk, err_dwv);
    EXPECT_LT(err_dx, 1e-2);
    EXPECT_LT(err_dwk, 1e-2);
    EXPECT_LT(err_dwv, 1e-2);
    // Empty experts: exact zeros.
    const std::int64_t fh = p.c.f * p.h;
    for (std::int64_t s = 0; s < p.c.L * p.c.E; ++s) {
      if (p.offsets[static_cast<std::size_t>(s)] != p.offsets[static_cast<std::size_t>(s + 1)]) continue;
      for (std::int64_t i = 0; i < fh; ++i) {
        ASSERT_EQ(to_float(dwk[static_cast<std::size_t>(s * fh + i)]), 0.0f) << "segment " << s;
        ASSERT_EQ(to_float(dwv[static_cast<std::size_t>(s * fh + i)]), 0.0f) << "segment " << s;
      }
    }
    if (run == 0) {
      first_dx = dx;
      first_dwk = dwk;
      first_dwv = dwv;
    } else {
      EXPECT_TRUE(bitwise_equal(dx, first_dx));
      EXPECT_TRUE(bitwise_equal(dwk, first_dwk));
      EXPECT_TRUE(bitwise_equal(dwv, first_dwv));
    }
  }
}

void check_forward_shapes(ExpertMlpAlgo algo) {
  check_forward({2, 300, 4, 13, 256, 1, Routing::kUniform}, 1, algo);
  check_forward({3, 123, 8, 40, 128, 1, Routing::kUniform}, 2, algo);  // some experts empty
  check_forward({1, 77, 2, 5, 192, 8, Routing::kUniform}, 3, algo);    // padded segments
  check_forward({2, 1000, 2, 9, 256, 1, Routing::kOneExpertTakesAll}, 4, algo);
}

TEST(ExpertMlpForwardGpu, MmaSyncMatchesFloat64OnAwkwardSegmentsAndOneExpertTakingEverything) {
  HPSIM_REQUIRE_GPUS(1);
  check_forward_shapes(ExpertMlpAlgo::kMmaSync);
}

TEST(ExpertMlpForwardGpu, WgmmaMatchesFloat64OnAwkwardSegmentsAndOneExpertTakingEverything) {
  HPSIM_REQUIRE_GPUS(1);
  check_forward_shapes(ExpertMlpAlgo::kWgmma);
}

// More work items than an H200 has SMs (132), so each block of the persistent kernel walks
// several items and loads the next item's rows and weights while computing the current one:
// f = 256, 128 and 192 (4, 2 and 3 chunks per item), segments of about 160, 80 and 150 rows.
TEST(ExpertMlpForwardGpu, WgmmaMatchesFloat64WhenEveryBlockWalksSeveralItems) {
  HPSIM_REQUIRE_GPUS(1);
  check_forward({2, 4000, 4, 100, 256, 1, Routing::kUniform}, 11, ExpertMlpAlgo::kWgmma);
  check_forward({4, 3001, 8, 300, 128, 1, Routing::kUniform}, 12, ExpertMlpAlgo::kWgmma);
  check_forward({2, 3000, 4, 80, 192, 8, Routing::kUniform}, 13, ExpertMlpAlgo::kWgmma);
}

TEST(ExpertMlpBackwardGpu, MmaSyncMatchesFloat64OnAwkwardSegments) {
  HPSIM_REQUIRE_GPUS(1);
  check_backward({2, 300, 4, 13, 256, 1, Routing::kUniform}, 5, ExpertMlpAlgo::kMmaSync);
  check_backward({3, 123, 8, 40, 128, 4, Routing::kUniform}, 6, ExpertMlpAlgo::kMmaSync);
  check_backward({1, 77, 2, 5, 192, 8, Routing::kUniform}, 8, ExpertMlpAlgo::kMmaSync);  // f not a multiple of 128
}

TEST(ExpertMlpBackwardGpu, MmaSyncSplitsLongSegmentsDeterministically) {
  HPSIM_REQUIRE_GPUS(1);
  // 2500 rows in each of experts 0 and 1: several weight-gradient work items with partial sums.
  check_backward({1, 2500, 2, 6, 128, 1, Routing::kOneExpertTakesAll}, 7, ExpertMlpAlgo::kMmaSync);
}

TEST(ExpertMlpBackwardGpu, WgmmaMatchesFloat64OnAwkwardSegments) {
  HPSIM_REQUIRE_GPUS(1);
  check_backward({2, 300, 4, 13, 256, 1, Routing::kUniform}, 5, ExpertMlpAlgo::kWgmma);
  check_backward({3, 123, 8, 40, 128, 4, Routing::kUniform}, 6, ExpertMlpAlgo::kWgmma);  // some experts empty
  check_backward({1, 77, 2, 5, 256, 8, Routing::kUniform}, 8, ExpertMlpAlgo::kWgmma);    // padded segments
  check_backward({2, 301, 4, 7, 512, 1, Routing::kUniform}, 10, ExpertMlpAlgo::kWgmma);  // dX summed over four chunks
}

TEST(ExpertMlpBackwardGpu, WgmmaSplitsLongSegmentsDeterministically) {
  HPSIM_REQUIRE_GPUS(1);
  check_backward({1, 2500, 2, 6, 128, 1, Routing::kOneExpertTakesAll}, 7, ExpertMlpAlgo::kWgmma);
  check_backward({2, 3000, 2, 5, 256, 1, Routing::kOneExpertTakesAll}, 9, ExpertMlpAlgo::kWgmma);
}

// More dX items and weight-gradient units than an H200 has SMs: every block of both persistent
// kernels walks several, reusing its row buffers, weight stages and tile ring.
TEST(ExpertMlpBackwardGpu, WgmmaMatchesFloat64WhenEveryBlockWalksSeveralItems) {
  HPSIM_REQUIRE_GPUS(1);
  check_backward({2, 4000, 4, 100, 256, 1, Routing::kUniform}, 14, ExpertMlpAlgo::kWgmma);
  check_backward({4, 3001, 8, 300, 128, 1, Routing::kUniform}, 15, ExpertMlpAlgo::kWgmma);
}

// The dynamically scheduled weight gradients on a mixed schedule: per head one hot segment of about
// 2500 rows (cut into 256-row items at this size: partial sums), hundreds of light ones
// handed out after the heavy ones, the upper half of the segments empty (zero gradients written
// without their weights read), and more units than SMs.
TEST(ExpertMlpBackwardGpu, WgmmaMatchesFloat64WithAHotSegmentAndManyEmptyOnes) {
  HPSIM_REQUIRE_GPUS(1);
  check_backward({2, 4200, 1, 600, 128, 1, Routing::kHotAndEmpty}, 16, ExpertMlpAlgo::kWgmma);
}

TEST(ExpertMlpBackwardGpu, WgmmaRefusesHiddenNotAMultipleOf128) {
  HPSIM_REQUIRE_GPUS(1);
  MlpProblem p({1, 77, 2, 5, 192, 8, Routing::kUniform}, 8);
  ExpertMlpBackwardArgs a;
  p.fill_shape(a);
  a.algo = ExpertMlpAlgo::kWgmma;
  DeviceBuffer<Bf16> any(16);
  a.x = a.w_k = a.w_v = a.dy = any.get();
  a.dx_grouped = a.d_w_k = a.d_w_v = any.get();
  DeviceBuffer<std::int32_t> ints(16);
  a.offsets = a.perm = ints.get();
  auto ws = workspace(workspace_bytes(a));
  const auto status = launch(a, ws.get(), nullptr);
  ASSERT_FALSE(status.is_ok());
  EXPECT_NE(status.error().message.find("multiple of 128"), std::string::npos) << status.error().message;
}

}  // namespace
}  // namespace hpsim::kernels
