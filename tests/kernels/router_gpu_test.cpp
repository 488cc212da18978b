// Router kernels on the GPU against float64 references: selections identical except near-ties
// (|biased score - k-th best| < 1e-5 * (1 + |score|), where fp32 rounding may legitimately order
// differently), gates within 2e-5 (fp32), counts exact; d_weight (fp32) within 1e-5 relative L2,
// dx (bf16 output) within 1e-2; two runs bitwise equal; outputs poisoned before each run.
#include <algorithm>
#include <numeric>

#include "gpu_test_util.h"
#include "hpsim/kernels/grouping.h"
#include "hpsim/kernels/ref.h"
#include "hpsim/kernels/router.h"

namespace hpsim::kernels {
namespace {

using namespace testing;

struct RouterCase {
  std::int64_t L, N, dim, E, k;
  bool bias;
  RouterAlgo algo;
};

struct RouterOut {
  std::vector<std::int32_t> idx, counts;
  std::vector<float> gate;
};

class RouterProblem {
 public:
  explicit RouterProblem(const RouterCase& c, std::uint64_t seed) : c_(c) {
    core::Rng rng(seed);
    x_ = random_bf16(rng, static_cast<std::size_t>(c.N * c.L * c.dim), 1.0);
    w_ = random_float(rng, static_cast<std::size_t>(c.L * c.E * c.dim), 1.0 / std::sqrt(static_cast<double>(c.dim)));
    if (c.bias) bias_ = random_float(rng, static_cast<std::size_t>(c.L * c.E), 0.3);
    // float64 biased and clean scores.
    score_.resize(static_cast<std::size_t>(c.L * c.N * c.E));
    for (std::int64_t l = 0; l < c.L; ++l)
      for (std::int64_t t = 0; t < c.N; ++t)
        for (std::int64_t e = 0; e < c.E; ++e) {
          double s = 0;
          for (std::int64_t i = 0; i < c.dim; ++i)
            s += bf(x_[static_cast<std::size_t>((t * c.L + l) * c.dim + i)]) *
                 static_cast<double>(w_[static_cast<std::size_t>((l * c.E + e) * c.dim + i)]);
          score_[static_cast<std::size_t>((l * c.N + t) * c.E + e)] = s;
        }
  }

  double clean(std::int64_t l, std::int64_t t, std::int64_t e) const {
    return score_[static_cast<std::size_t>((l * c_.N + t) * c_.E + e)];
  }
  double biased(std::int64_t l, std::int64_t t, std::int64_t e) const {
    return clean(l, t, e) + (bias_.empty() ? 0.0 : static_cast<double>(bias_[static_cast<std::size_t>(l * c_.E + e)]));
  }

  RouterOut run_gpu(RouterAlgo algo) const {
    DeviceBuffer<Bf16> x(x_);
    DeviceBuffer<float> w(w_), bias(bias_);
    const std::size_t slots = static_cast<std::size_t>(c_.L * c_.N * c_.k);
    DeviceBuffer<std::int32_t> idx(slots), counts(static_cast<std::size_t>(c_.L * c_.E));
    DeviceBuffer<float> gate(slots);
    idx.poison(0x7f);
    counts.poison(0x7f);
    gate.poison();
    RouterForwardArgs a;
    a.x = x.get();
    a.weight = w.get();
    a.bias = bias_.empty() ? nullptr : bias.get();
    a.topk_expert = idx.get();
    a.topk_gate = gate.get();
    a.expert_counts = counts.get();
    a.num_heads = c_.L;
    a.num_tokens = c_.N;
    a.dim = c_.dim;
    a.num_experts = c_.E;
    a.top_k = c_.k;
    a.algo = algo;
    auto ws = workspace(workspace_bytes(a));
    const auto status = launch(a, ws.get(), nullptr);
    EXPECT_TRUE(status.is_ok()) << status.error().message;
    sync();
    return RouterOut{idx.download(), counts.download(), gate.download()};
  }

  // Checks one GPU result against the float64 scores; returns the number of near-tie tokens.
  std::int64_t check(const RouterOut& out) const {
    std::int64_t near_ties = 0;
    std::vector<std::int32_t> counts(static_cast<std::size_t>(c_.L * c_.E), 0);
    std::vector<std::int64_t> order(static_cast<std::size_t>(c_.E));
    for (std::int64_t l = 0; l < c_.L; ++l)
      for (std::int64_t t = 0; t < c_.N; ++t) {
        std::iota(order.begin(), order.end(), 0);
        std::sort(order.begin(), order.end(), [&](std::int64_t p, std::int64_t q) {
          const double bp = biased(l, t, p), bq = biased(l, t, q);
          return bp > bq || (bp == bq && p < q);
        });
        const double kth = biased(l, t, order[static_cast<std::size_t>(c_.k - 1)]);
        const double tol = 1e-5 * (1.0 + std::abs(kth));
        bool tie = false;
        double max_clean = -1e300, z = 0;
        const std::size_t base = static_cast<std::size_t>((l * c_.N + t) * c_.k);
        for (std::int64_t j = 0; j < c_.k; ++j) {
          const std::int32_t e = out.idx[base + static_cast<std::size_t>(j)];
          if (e < 0 || e >= c_.E) {
            ADD_FAILURE() << "head " << l << " token " << t << " slot " << j << ": expert " << e << " out of range";
            return near_ties;
          }
          ++counts[static_cast<std::size_t>(l * c_.E + e)];
          const double v = biased(l, t, e);
          const double expected = biased(l, t, order[static_cast<std::size_t>(j)]);
          if (v != expected) {
            // Allowed only where float32 cannot separate the two (near-tie).
            if (std::abs(v - expected) > tol) {
              ADD_FAILURE() << "head " << l << " token " << t << " slot " << j << ": expert " << e << " scores " << v
                            << ", expected a score of " << expected;
              return near_ties;
            }
            tie = true;
          }
          max_clean = std::max(max_clean, clean(l, t, e));
        }
        for (std::int64_t j = 0; j < c_.k; ++j) z += std::exp(clean(l, t, out.idx[base + static_cast<std::size_t>(j)]) - max_clean);
        for (std::int64_t j = 0; j < c_.k; ++j) {
          const double g = std::exp(clean(l, t, out.idx[base + static_cast<std::size_t>(j)]) - max_clean) / z;
          if (std::abs(out.gate[base + static_cast<std::size_t>(j)] - g) > 2e-5) {
            ADD_FAILURE() << "head " << l << " token " << t << " slot " << j << ": gate "
                          << out.gate[base + static_cast<std::size_t>(j)] << ", expected " << g;
            return near_ties;
          }
        }
        near_ties += tie ? 1 : 0;
      }
    EXPECT_EQ(out.counts, counts);
    return near_ties;
  }

  const RouterCase& shape() const { return c_; }
  const std::vector<Bf16>& x() const { return x_; }
  const std::vector<float>& w() const { return w_; }

 private:
  RouterCase c_;
  std::vector<Bf16> x_;
  std::vector<float> w_, bias_;
  std::vector<double> score_;
};

void check_forward(const RouterCase& c, std::uint64_t seed) {
  RouterProblem p(c, seed);
  const RouterOut first = p.run_gpu(c.algo);
  const std::int64_t ties = p.check(first);
  EXPECT_LE(ties, c.L * c.N / 100) << "too many near-ties for random data";
  const RouterOut second = p.run_gpu(c.algo);
  EXPECT_TRUE(bitwise_equal(first.idx, second.idx));
  EXPECT_TRUE(bitwise_equal(first.gate, second.gate));
}

TEST(RouterForwardGpu, FfmaMatchesFloat64OnAwkwardHpShapes) {
  HPSIM_REQUIRE_GPUS(1);
  check_forward({3, 777, 128, 100, 4, true, RouterAlgo::kFfma}, 1);
  check_forward({2, 301, 128, 37, 8, true, RouterAlgo::kFfma}, 2);
  check_forward({1, 65, 64, 5, 1, false, RouterAlgo::kFfma}, 3);
}

TEST(RouterForwardGpu, FfmaMatchesFloat64OnEpShape) {
  HPSIM_REQUIRE_GPUS(1);
  check_forward({1, 513, 1024, 64, 6, true, RouterAlgo::kFfma}, 4);
}

TEST(RouterForwardGpu, FfmaSplitsTheExpertsWhenTheTokensCannotFillTheGpu) {
  HPSIM_REQUIRE_GPUS(1);
  // The split paths are taken: only a split needs a workspace (the splits' top-k lists).
  const auto ffma_workspace = [](std::int64_t L, std::int64_t N, std::int64_t E, std::int64_t k) {
    RouterForwardArgs a;
    a.num_heads = L;
    a.num_tokens = N;
    a.num_experts = E;
    a.top_k = k;
    a.algo = RouterAlgo::kFfma;
    return workspace_bytes(a);
  };
  EXPECT_EQ(ffma_workspace(1, 513, 700, 8), 197120);  // 513 tokens x 6 splits x k 8 x 8 bytes, rounded up to 256
  EXPECT_EQ(ffma_workspace(1, 4000, 700, 2), 192000);  // 4000 x 3 splits x 2 x 8
  EXPECT_EQ(ffma_workspace(4, 8448, 300, 4), 0);       // no split
  // 9 token blocks, 6 expert chunks: 6 splits of one chunk, the last one partial.
  check_forward({1, 513, 256, 700, 8, true, RouterAlgo::kFfma}, 5);
  // 63 token blocks, 6 chunks: 3 splits of two chunks each.
  check_forward({1, 4000, 64, 700, 2, false, RouterAlgo::kFfma}, 6);
  // 528 token blocks, two full waves: no split, three chunks walked by every block.
  check_forward({4, 8448, 64, 300, 4, true, RouterAlgo::kFfma}, 7);
}

// Tokens whose selected expert sets (k slots each) differ between two runs.
std::int64_t differing_selections(const RouterOut& a, const RouterOut& b, std::int64_t k) {
  std::int64_t differing = 0;
  for (std::size_t t = 0; t < a.idx.size() / static_cast<std::size_t>(k); ++t) {
    const auto from = static_cast<std::ptrdiff_t>(t) * k;
    std::vector<std::int32_t> x(a.idx.begin() + from, a.idx.begin() + from + k);
    std::vector<std::int32_t> y(b.idx.begin() + from, b.idx.begin() + from + k);
    std::sort(x.begin(), x.end());
    std::sort(y.begin(), y.end());
    differing += x != y ? 1 : 0;
  }
  return differing;
}

// Both bf16x3 kernels: kBf16x3 runs the wgmma one on an sm_90a device (the mma.sync one elsewhere),
// kBf16x3MmaSync the mma.sync one everywhere.
void check_bf16x3(RouterAlgo algo) {
  check_forward({3, 777, 128, 100, 4, true, algo}, 5);
  check_forward({2, 301, 128, 37, 8, true, algo}, 6);
  check_forward({1, 200, 256, 130, 2, false, algo}, 7);
  check_forward({2, 300, 64, 64, 1, true, algo}, 9);      // one chunk of experts, dim of one atom
  check_forward({1, 513, 192, 1000, 8, true, algo}, 10);  // three atoms of dim, a partial last chunk
  // More units than blocks: each block walks several, and the weight ring runs on across them.
  check_forward({5, 8000, 128, 200, 4, true, algo}, 11);
  if (algo == RouterAlgo::kBf16x3 && router_bf16x3_runs(1024)) {
    // The wgmma kernel above 256: x streamed with the weights; EP's width, and the experts split
    // between blocks when the tokens cannot fill the GPU (6 and 5 splits here, 1 for the first).
    check_forward({1, 513, 1024, 64, 6, true, algo}, 12);
    check_forward({1, 300, 512, 700, 8, true, algo}, 13);
    check_forward({1, 4000, 384, 300, 4, false, algo}, 14);
  }
  // Same data through FFMA and this algorithm: the same experts (the test data has no near-ties here).
  RouterProblem p({4, 2048, 128, 768, 4, true, RouterAlgo::kFfma}, 8);
  const RouterOut ffma = p.run_gpu(RouterAlgo::kFfma);
  const RouterOut tc = p.run_gpu(algo);
  p.check(ffma);
  p.check(tc);
  const std::int64_t differing = differing_selections(ffma, tc, 4);
  EXPECT_LE(differing, 2) << "bf16x3 and FFMA select different experts for " << differing << " of 8192 tokens";
}

TEST(RouterForwardGpu, Bf16x3MatchesFloat64AndTheFfmaSelections) {
  HPSIM_REQUIRE_GPUS(1);
  check_bf16x3(RouterAlgo::kBf16x3);
}

TEST(RouterForwardGpu, Bf16x3OnMmaSyncMatchesFloat64AndTheFfmaSelections) {
  HPSIM_REQUIRE_GPUS(1);
  check_bf16x3(RouterAlgo::kBf16x3MmaSync);
}

TEST(RouterForwardGpu, Bf16x3AtEpWidthMatchesTheFfmaSelections) {
  HPSIM_REQUIRE_GPUS(1);
  RouterForwardArgs a;
  a.num_heads = 1;
  a.num_tokens = 300;
  a.dim = 512;
  a.num_experts = 700;
  a.top_k = 8;
  a.algo = RouterAlgo::kBf16x3;
  // The weight parts (3 x 700 x 512 bf16) and 6 splits' top-8 of 300 tokens (8 bytes each).
  EXPECT_EQ(workspace_bytes(a), 2150400 + 115200);
  a.algo = RouterAlgo::kBf16x3MmaSync;
  EXPECT_EQ(workspace_bytes(a), 2150400);
  a.dim = 1024;
  const std::vector<Bf16> x1(1);  // never read: can_implement checks only that operands are given
  const std::vector<float> w1(1);
  std::vector<std::int32_t> e1(1);
  std::vector<float> g1(1);
  a.x = x1.data();
  a.weight = w1.data();
  a.topk_expert = e1.data();
  a.topk_gate = g1.data();
  const core::Status mma = can_implement(a);  // the mma.sync kernel keeps x resident: dim <= 256
  EXPECT_FALSE(mma.is_ok());
  EXPECT_NE(mma.error().message.find("RouterForwardArgs.dim"), std::string::npos) << mma.error().message;
  a.algo = RouterAlgo::kBf16x3;
  EXPECT_TRUE(can_implement(a).is_ok());
  if (!router_bf16x3_runs(1024)) GTEST_SKIP() << "no sm_90 GPU: the wgmma router does not run here";
  // EP's router (d = 1024, one head) on the same data through FFMA and bf16x3.
  RouterProblem p({1, 4096, 1024, 768, 4, true, RouterAlgo::kFfma}, 15);
  const RouterOut ffma = p.run_gpu(RouterAlgo::kFfma);
  const RouterOut tc = p.run_gpu(RouterAlgo::kBf16x3);
  p.check(ffma);
  p.check(tc);
  const std::int64_t differing = differing_selections(ffma, tc, 4);
  EXPECT_LE(differing, 2) << "bf16x3 and FFMA select different experts for " << differing << " of 4096 tokens";
}

// ---------------------------------------------------------------------------------------------
void check_backward(std::int64_t L, std::int64_t N, std::int64_t dim, std::int64_t E, std::int64_t k, bool skewed,
                    std::uint64_t seed) {
  core::Rng rng(seed);
  auto x = random_bf16(rng, static_cast<std::size_t>(N * L * dim), 1.0);
  auto w = random_float(rng, static_cast<std::size_t>(L * E * dim), 0.1);
  auto topk = random_topk(rng, L, N, k, E);
  if (skewed)  // slot 0 of every token goes to expert 0 (one segment far longer than a work item)
    for (std::int64_t lt = 0; lt < L * N; ++lt) {
      auto* row = &topk[static_cast<std::size_t>(lt * k)];
      for (std::int64_t j = 0; j < k; ++j) row[j] = static_cast<std::int32_t>(j);
    }
  const auto d_score = random_float(rng, topk.size(), 1.0);
  const auto dx_in = random_bf16(rng, x.size(), 0.5);
  GroupingArgs g;
  g.num_heads = L;
  g.num_tokens = N;
  g.top_k = k;
  g.num_experts = E;
  g.pad_to = 4;
  const std::int64_t rows = grouping_rows_bound(g);
  std::vector<std::int32_t> offsets(static_cast<std::size_t>(L * E + 1)), perm(static_cast<std::size_t>(rows)),
      inverse(topk.size());
  g.topk_expert = topk.data();
  g.offsets = offsets.data();
  g.perm = perm.data();
  g.inverse = inverse.data();
  ASSERT_TRUE(ref::run(g).is_ok());

  RouterBackwardArgs a;
  a.num_heads = L;
  a.num_tokens = N;
  a.dim = dim;
  a.num_experts = E;
  a.top_k = k;
  a.group_rows = rows;
  std::vector<Bf16> dx_ref(x.size());
  std::vector<float> dw_ref(w.size());
  a.x = x.data();
  a.weight = w.data();
  a.topk_expert = topk.data();
  a.d_score = d_score.data();
  a.dx_in = dx_in.data();
  a.dx = dx_ref.data();
  a.d_weight = dw_ref.data();
  ASSERT_TRUE(ref::run(a).is_ok());

  DeviceBuffer<Bf16> dx_d(x), dxin_d(dx_in), dx_out(x.size());
  DeviceBuffer<float> w_d(w), ds_d(d_score), dw_out(w.size());
  DeviceBuffer<std::int32_t> topk_d(topk), off_d(offsets), perm_d(perm);
  a.x = dx_d.get();
  a.weight = w_d.get();
  a.topk_expert = topk_d.get();
  a.d_score = ds_d.get();
  a.group_offsets = off_d.get();
  a.group_perm = perm_d.get();
  a.dx_in = dxin_d.get();
  a.dx = dx_out.get();
  a.d_weight = dw_out.get();
  auto ws = workspace(workspace_bytes(a));
  std::vector<Bf16> dx_first;
  std::vector<float> dw_first;
  for (int run = 0; run < 2; ++run) {
    dx_out.poison();
    dw_out.poison();
    const auto status = launch(a, ws.get(), nullptr);
    ASSERT_TRUE(status.is_ok()) << status.error().message;
    const auto dx = dx_out.download();
    const auto dw = dw_out.download();
    EXPECT_LT(rel_l2(to_double(dx), to_double(dx_ref)), 1e-2);
    EXPECT_LT(rel_l2(to_double(dw), to_double(dw_ref)), 1e-5);
    // Experts nobody chose get exact zeros.
    for (std::size_t i = 0; i < dw.size(); ++i)
      if (dw_ref[i] == 0.0f) {
        ASSERT_EQ(dw[i], 0.0f) << i;
      }
    if (run == 0) {
      dx_first = dx;
      dw_first = dw;
    } else {
      EXPECT_TRUE(bitwise_equal(dx, dx_first));
      EXPECT_TRUE(bitwise_equal(dw, dw_first));
    }
  }
}

TEST(RouterBackwardGpu, MatchesFloat64OnHpShapes) {
  HPSIM_REQUIRE_GPUS(1);
  check_backward(2, 500, 128, 50, 4, false, 11);
  check_backward(3, 1000, 128, 300, 3, false, 12);  // some experts empty
}

TEST(RouterBackwardGpu, MatchesFloat64WhenOneExpertTakesEveryToken) {
  HPSIM_REQUIRE_GPUS(1);
  check_backward(2, 1500, 128, 20, 4, true, 13);
}

TEST(RouterBackwardGpu, MatchesFloat64OnEpShape) {
  HPSIM_REQUIRE_GPUS(1);
  check_backward(1, 333, 1024, 32, 6, false, 14);
}

}  // namespace
}  // namespace hpsim::kernels
