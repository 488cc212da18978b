// CPU reference twins of the kernel families: hand-computed cases and finite differences of
// independent float64 forwards written here.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <numeric>
#include <string>
#include <utility>

#include "hpsim/kernels/ref.h"
#include "ref_test_util.h"

namespace hpsim::kernels {
namespace {

using testing::bf;
using testing::bf16_vector;
using testing::random_bf16;
using testing::random_float;
using testing::random_topk;

// GELU, tanh form, as stated in expert_mlp.h.
double gelu_def(double s) {
  return 0.5 * s * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (s + 0.044715 * s * s * s)));
}

// Central difference of f at parameter p (perturbed in place).
double central_difference(double& p, const std::function<double()>& f, double eps) {
  const double saved = p;
  p = saved + eps;
  const double up = f();
  p = saved - eps;
  const double down = f();
  p = saved;
  return (up - down) / (2 * eps);
}

TEST(Bf16, RoundsToNearestEvenAndKeepsNan) {
  EXPECT_EQ(to_float(to_bf16(1.0f + std::ldexp(1.0f, -8))), 1.0f);                            // tie -> even
  EXPECT_EQ(to_float(to_bf16(1.0f + 3 * std::ldexp(1.0f, -8))), 1.0f + std::ldexp(1.0f, -6));  // tie -> even
  EXPECT_EQ(to_float(to_bf16(1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -12))), 1.0f + std::ldexp(1.0f, -7));
  EXPECT_TRUE(std::isnan(to_float(to_bf16(std::nanf("")))));
  EXPECT_EQ(to_float(to_bf16(-2.5f)), -2.5f);
}

TEST(GeluReference, GradientMatchesFiniteDifferences) {
  for (double s : {-3.0, -0.7, 0.0, 0.3, 1.9}) {
    EXPECT_NEAR(ref::gelu(s), gelu_def(s), 1e-15);
    const double fd = (ref::gelu(s + 1e-6) - ref::gelu(s - 1e-6)) / 2e-6;
    EXPECT_NEAR(ref::gelu_grad(s), fd, 1e-8) << "s = " << s;
  }
}

TEST(RouterReference, SelectsTopKByBiasedScoreAndGatesByCleanScore) {
  const auto x = bf16_vector({1.0, 2.0});
  const std::vector<float> w = {1, 0, 0, 1, 1, 1, 0.5f, 0};  // clean scores 1, 2, 3, 0.5
  const std::vector<float> bias = {0, 0, 0, 5};               // biased 1, 2, 3, 5.5
  std::vector<std::int32_t> idx(2), counts(4, -7);
  std::vector<float> gate(2);
  RouterForwardArgs a;
  a.x = x.data();
  a.weight = w.data();
  a.bias = bias.data();
  a.topk_expert = idx.data();
  a.topk_gate = gate.data();
  a.expert_counts = counts.data();
  a.num_heads = 1;
  a.num_tokens = 1;
  a.dim = 2;
  a.num_experts = 4;
  a.top_k = 2;
  ASSERT_TRUE(ref::run(a).is_ok());
  EXPECT_EQ(idx, (std::vector<std::int32_t>{3, 2}));
  const double g3 = std::exp(0.5) / (std::exp(0.5) + std::exp(3.0));
  EXPECT_NEAR(gate[0], g3, 1e-7);
  EXPECT_NEAR(gate[1], 1 - g3, 1e-7);
  EXPECT_EQ(counts, (std::vector<std::int32_t>{0, 0, 1, 1}));
}

TEST(RouterReference, BreaksTiesTowardsTheLowerExpert) {
  const auto x = bf16_vector({1.0, 1.0});
  const std::vector<float> w(2 * 5, 0.25f);
  std::vector<std::int32_t> idx(3);
  std::vector<float> gate(3);
  RouterForwardArgs a;
  a.x = x.data();
  a.weight = w.data();
  a.topk_expert = idx.data();
  a.topk_gate = gate.data();
  a.num_heads = 1;
  a.num_tokens = 1;
  a.dim = 2;
  a.num_experts = 5;
  a.top_k = 3;
  ASSERT_TRUE(ref::run(a).is_ok());
  EXPECT_EQ(idx, (std::vector<std::int32_t>{0, 1, 2}));
  for (float g : gate) EXPECT_NEAR(g, 1.0 / 3.0, 1e-7);
}

TEST(RouterReference, BackwardMatchesFiniteDifferencesOfTheGatedLoss) {
  core::Rng rng(11);
  const std::int64_t L = 2, N = 5, D = 8, E = 6, K = 3;
  auto x = random_bf16(rng, static_cast<std::size_t>(N * L * D), 1.0);
  auto w = random_float(rng, static_cast<std::size_t>(L * E * D), 0.5);
  const auto c = random_float(rng, static_cast<std::size_t>(L * N * K), 1.0);  // loss = sum c * gate
  const auto dx_in = random_bf16(rng, x.size(), 0.1);
  std::vector<std::int32_t> idx(static_cast<std::size_t>(L * N * K));
  std::vector<float> gate(idx.size());
  RouterForwardArgs f;
  f.x = x.data();
  f.weight = w.data();
  f.topk_expert = idx.data();
  f.topk_gate = gate.data();
  f.num_heads = L;
  f.num_tokens = N;
  f.dim = D;
  f.num_experts = E;
  f.top_k = K;
  ASSERT_TRUE(ref::run(f).is_ok());

  // The test's own forward in float64 with the selection held fixed.
  std::vector<double> xd(x.size()), wd(w.begin(), w.end());
  for (std::size_t i = 0; i < x.size(); ++i) xd[i] = bf(x[i]);
  auto loss = [&]() {
    double total = 0;
    for (std::int64_t l = 0; l < L; ++l)
      for (std::int64_t t = 0; t < N; ++t) {
        double s[8], m = -1e300, z = 0;
        for (std::int64_t j = 0; j < K; ++j) {
          const std::int64_t e = idx[static_cast<std::size_t>((l * N + t) * K + j)];
          s[j] = 0;
          for (std::int64_t i = 0; i < D; ++i)
            s[j] += xd[static_cast<std::size_t>((t * L + l) * D + i)] * wd[static_cast<std::size_t>((l * E + e) * D + i)];
          m = std::max(m, s[j]);
        }
        for (std::int64_t j = 0; j < K; ++j) z += std::exp(s[j] - m);
        for (std::int64_t j = 0; j < K; ++j) total += c[static_cast<std::size_t>((l * N + t) * K + j)] * std::exp(s[j] - m) / z;
      }
    return total;
  };
  // d_score from the softmax Jacobian dg_i/ds_j = g_i (delta_ij - g_j).
  std::vector<float> d_score(idx.size());
  for (std::int64_t lt = 0; lt < L * N; ++lt)
    for (std::int64_t j = 0; j < K; ++j) {
      double acc = 0;
      for (std::int64_t i = 0; i < K; ++i) {
        const double gi = gate[static_cast<std::size_t>(lt * K + i)], gj = gate[static_cast<std::size_t>(lt * K + j)];
        acc += c[static_cast<std::size_t>(lt * K + i)] * gi * ((i == j ? 1.0 : 0.0) - gj);
      }
      d_score[static_cast<std::size_t>(lt * K + j)] = static_cast<float>(acc);
    }
  std::vector<Bf16> dx(x.size());
  std::vector<float> dw(w.size(), -1.0f);
  RouterBackwardArgs b;
  b.x = x.data();
  b.weight = w.data();
  b.topk_expert = idx.data();
  b.d_score = d_score.data();
  b.dx_in = dx_in.data();
  b.dx = dx.data();
  b.d_weight = dw.data();
  b.num_heads = L;
  b.num_tokens = N;
  b.dim = D;
  b.num_experts = E;
  b.top_k = K;
  ASSERT_TRUE(ref::run(b).is_ok());
  for (std::size_t i = 0; i < wd.size(); ++i) {
    const double fd = central_difference(wd[i], loss, 1e-5);
    EXPECT_NEAR(dw[i], fd, 1e-5 + 1e-4 * std::abs(fd)) << "d_weight[" << i << "]";
  }
  for (std::size_t i = 0; i < xd.size(); ++i) {
    const double fd = central_difference(xd[i], loss, 1e-5) + bf(dx_in[i]);
    EXPECT_NEAR(bf(dx[i]), fd, 1e-3 + 8e-3 * std::abs(fd)) << "dx[" << i << "]";
  }
}

TEST(GroupingReference, SortsPairsStablyByHeadAndExpertWithPadding) {
  const std::vector<std::int32_t> topk = {2, 0, 0, 2, 0, 1,   // head 0: tokens 0..2, k = 2
                                          1, 2, 1, 0, 2, 1};  // head 1
  std::vector<std::int32_t> offsets(7), perm(16, 99), inverse(12), counts(6);
  GroupingArgs a;
  a.topk_expert = topk.data();
  a.offsets = offsets.data();
  a.perm = perm.data();
  a.inverse = inverse.data();
  a.counts = counts.data();
  a.num_heads = 2;
  a.num_tokens = 3;
  a.top_k = 2;
  a.num_experts = 3;
  a.pad_to = 2;
  ASSERT_EQ(grouping_rows_bound(a), 2 * (6 + 3));
  ASSERT_TRUE(ref::run(a).is_ok());
  EXPECT_EQ(offsets, (std::vector<std::int32_t>{0, 4, 6, 8, 10, 14, 16}));
  EXPECT_EQ(perm, (std::vector<std::int32_t>{1, 2, 4, -1, 5, -1, 0, 3, 3, -1, 0, 2, 5, -1, 1, 4}));
  EXPECT_EQ(inverse, (std::vector<std::int32_t>{6, 0, 1, 7, 2, 4, 10, 14, 11, 8, 15, 12}));
  EXPECT_EQ(counts, (std::vector<std::int32_t>{3, 1, 2, 1, 3, 2}));
}

TEST(ExpertMlpReference, ForwardMatchesHandComputedRowsAndZeroesPadding) {
  const auto x = bf16_vector({1.0, -1.0, 0.5, 2.0});  // N = 2 tokens, L = 1, h = 2
  const auto wk = bf16_vector({1.0, 0.5});             // f = 1
  const auto wv = bf16_vector({2.0, -1.0});
  const std::vector<std::int32_t> offsets = {0, 3}, perm = {1, 0, -1};
  std::vector<Bf16> y(6, to_bf16(123.0f));
  ExpertMlpForwardArgs a;
  a.x = x.data();
  a.offsets = offsets.data();
  a.perm = perm.data();
  a.w_k = wk.data();
  a.w_v = wv.data();
  a.y = y.data();
  a.num_heads = 1;
  a.num_tokens = 2;
  a.top_k = 1;
  a.num_experts = 1;
  a.head_dim = 2;
  a.hidden = 1;
  a.rows = 3;
  ASSERT_TRUE(ref::run(a).is_ok());
  const double g1 = gelu_def(0.5 * 1.0 + 2.0 * 0.5);  // token 1: s = 1.5
  const double g0 = gelu_def(1.0 - 0.5);              // token 0: s = 0.5
  EXPECT_NEAR(bf(y[0]), 2 * g1, 1e-2 * 2 * g1);
  EXPECT_NEAR(bf(y[1]), -g1, 1e-2 * g1);
  EXPECT_NEAR(bf(y[2]), 2 * g0, 1e-2 * 2 * g0);
  EXPECT_NEAR(bf(y[3]), -g0, 1e-2 * g0);
  EXPECT_EQ(bf(y[4]), 0.0);
  EXPECT_EQ(bf(y[5]), 0.0);
}

// Random grouped problem shared by the MLP tests.
struct SmallMlp {
  std::int64_t L = 2, N = 4, K = 2, E = 3, h = 4, f = 3;
  std::vector<Bf16> x, wk, wv, dy;
  std::vector<std::int32_t> topk, offsets, perm, inverse;
  std::int64_t rows = 0;
  explicit SmallMlp(std::uint64_t seed) {
    core::Rng rng(seed);
    x = random_bf16(rng, static_cast<std::size_t>(N * L * h), 1.0);
    wk = random_bf16(rng, static_cast<std::size_t>(L * E * f * h), 0.7);
    wv = random_bf16(rng, static_cast<std::size_t>(L * E * f * h), 0.7);
    topk = random_topk(rng, L, N, K, E);
    GroupingArgs g;
    g.num_heads = L;
    g.num_tokens = N;
    g.top_k = K;
    g.num_experts = E;
    rows = grouping_rows_bound(g);
    offsets.resize(static_cast<std::size_t>(L * E + 1));
    perm.resize(static_cast<std::size_t>(rows));
    inverse.resize(static_cast<std::size_t>(L * N * K));
    g.topk_expert = topk.data();
    g.offsets = offsets.data();
    g.perm = perm.data();
    g.inverse = inverse.data();
    HPSIM_ASSERT(ref::run(g).is_ok(), "grouping");
    dy = random_bf16(rng, static_cast<std::size_t>(rows * h), 1.0);
  }
};

TEST(ExpertMlpReference, BackwardMatchesFiniteDifferences) {
  SmallMlp p(5);
  std::vector<double> xd(p.x.size()), wkd(p.wk.size()), wvd(p.wv.size());
  for (std::size_t i = 0; i < xd.size(); ++i) xd[i] = bf(p.x[i]);
  for (std::size_t i = 0; i < wkd.size(); ++i) wkd[i] = bf(p.wk[i]);
  for (std::size_t i = 0; i < wvd.size(); ++i) wvd[i] = bf(p.wv[i]);
  // loss = sum over grouped rows of <dy_row, y_row>, y from this test's own forward.
  auto loss = [&]() {
    double total = 0;
    for (std::int64_t seg = 0; seg < p.L * p.E; ++seg) {
      const std::int64_t l = seg / p.E;
      for (std::int32_t r = p.offsets[static_cast<std::size_t>(seg)]; r < p.offsets[static_cast<std::size_t>(seg + 1)]; ++r) {
        const std::int64_t t = p.perm[static_cast<std::size_t>(r)] / p.K;
        for (std::int64_t c = 0; c < p.f; ++c) {
          double s = 0;
          for (std::int64_t i = 0; i < p.h; ++i)
            s += xd[static_cast<std::size_t>((t * p.L + l) * p.h + i)] * wkd[static_cast<std::size_t>((seg * p.f + c) * p.h + i)];
          for (std::int64_t i = 0; i < p.h; ++i)
            total += gelu_def(s) * wvd[static_cast<std::size_t>((seg * p.h + i) * p.f + c)] * bf(p.dy[static_cast<std::size_t>(r * p.h + i)]);
        }
      }
    }
    return total;
  };
  std::vector<Bf16> dxg(p.dy.size()), dwk(p.wk.size()), dwv(p.wv.size());
  ExpertMlpBackwardArgs a;
  a.x = p.x.data();
  a.offsets = p.offsets.data();
  a.perm = p.perm.data();
  a.w_k = p.wk.data();
  a.w_v = p.wv.data();
  a.dy = p.dy.data();
  a.dx_grouped = dxg.data();
  a.d_w_k = dwk.data();
  a.d_w_v = dwv.data();
  a.num_heads = p.L;
  a.num_tokens = p.N;
  a.top_k = p.K;
  a.num_experts = p.E;
  a.head_dim = p.h;
  a.hidden = p.f;
  a.rows = p.rows;
  ASSERT_TRUE(ref::run(a).is_ok());
  for (std::size_t i = 0; i < wkd.size(); ++i) {
    const double fd = central_difference(wkd[i], loss, 1e-5);
    EXPECT_NEAR(bf(dwk[i]), fd, 1e-3 + 8e-3 * std::abs(fd)) << "d_w_k[" << i << "]";
    const double fdv = central_difference(wvd[i], loss, 1e-5);
    EXPECT_NEAR(bf(dwv[i]), fdv, 1e-3 + 8e-3 * std::abs(fdv)) << "d_w_v[" << i << "]";
  }
  // dx of a token = sum of its k grouped rows' gradients.
  for (std::int64_t l = 0; l < p.L; ++l)
    for (std::int64_t t = 0; t < p.N; ++t)
      for (std::int64_t i = 0; i < p.h; ++i) {
        double sum = 0;
        for (std::int64_t j = 0; j < p.K; ++j)
          sum += bf(dxg[static_cast<std::size_t>(p.inverse[static_cast<std::size_t>((l * p.N + t) * p.K + j)] * p.h + i)]);
        const double fd = central_difference(xd[static_cast<std::size_t>((t * p.L + l) * p.h + i)], loss, 1e-5);
        EXPECT_NEAR(sum, fd, 2e-3 + 1.6e-2 * std::abs(fd)) << "dx head " << l << " token " << t << " [" << i << "]";
      }
}

TEST(CombineReference, ForwardIsTheGateWeightedSumOfTheGroupedRows) {
  const auto y = bf16_vector({1, 2, 3, -1});
  const std::vector<std::int32_t> inverse = {1, 0};
  const std::vector<float> gate = {0.25f, 0.75f};
  std::vector<Bf16> out(2);
  CombineForwardArgs a;
  a.y = y.data();
  a.inverse = inverse.data();
  a.gate = gate.data();
  a.out = out.data();
  a.num_heads = 1;
  a.num_tokens = 1;
  a.top_k = 2;
  a.width = 2;
  ASSERT_TRUE(ref::run(a).is_ok());
  EXPECT_EQ(bf(out[0]), 1.5);
  EXPECT_EQ(bf(out[1]), 1.25);
  a.gate = nullptr;
  ASSERT_TRUE(ref::run(a).is_ok());
  EXPECT_EQ(bf(out[0]), 4.0);
  EXPECT_EQ(bf(out[1]), 1.0);
}

TEST(CombineReference, BackwardMatchesFiniteDifferencesThroughTheSoftmax) {
  core::Rng rng(3);
  const std::int64_t L = 2, N = 3, K = 3, W = 4, rows = L * N * K;
  auto y = random_bf16(rng, static_cast<std::size_t>(rows * W), 1.0);
  std::vector<double> yd(y.size());
  for (std::size_t i = 0; i < y.size(); ++i) yd[i] = bf(y[i]);
  std::vector<std::int32_t> inverse(static_cast<std::size_t>(rows));
  std::iota(inverse.begin(), inverse.end(), 0);
  std::reverse(inverse.begin(), inverse.end());
  std::vector<double> s(static_cast<std::size_t>(rows));
  for (auto& v : s) v = rng.normal();
  const auto c = random_bf16(rng, static_cast<std::size_t>(N * L * W), 1.0);  // loss = <c, out>
  auto gates = [&](std::int64_t lt, std::int64_t j) {
    double m = -1e300, z = 0;
    for (std::int64_t i = 0; i < K; ++i) m = std::max(m, s[static_cast<std::size_t>(lt * K + i)]);
    for (std::int64_t i = 0; i < K; ++i) z += std::exp(s[static_cast<std::size_t>(lt * K + i)] - m);
    return std::exp(s[static_cast<std::size_t>(lt * K + j)] - m) / z;
  };
  auto loss = [&]() {
    double total = 0;
    for (std::int64_t l = 0; l < L; ++l)
      for (std::int64_t t = 0; t < N; ++t)
        for (std::int64_t j = 0; j < K; ++j) {
          const double g = gates(l * N + t, j);
          const std::int64_t r = inverse[static_cast<std::size_t>((l * N + t) * K + j)];
          for (std::int64_t i = 0; i < W; ++i)
            total += g * yd[static_cast<std::size_t>(r * W + i)] * bf(c[static_cast<std::size_t>((t * L + l) * W + i)]);
        }
    return total;
  };
  std::vector<float> gate(static_cast<std::size_t>(rows));
  for (std::int64_t lt = 0; lt < L * N; ++lt)
    for (std::int64_t j = 0; j < K; ++j) gate[static_cast<std::size_t>(lt * K + j)] = static_cast<float>(gates(lt, j));
  std::vector<Bf16> dy(y.size());
  std::vector<float> dgate(gate.size()), dscore(gate.size());
  CombineBackwardArgs a;
  a.d_out = c.data();
  a.y = y.data();
  a.inverse = inverse.data();
  a.gate = gate.data();
  a.d_y = dy.data();
  a.d_gate = dgate.data();
  a.d_score = dscore.data();
  a.num_heads = L;
  a.num_tokens = N;
  a.top_k = K;
  a.width = W;
  ASSERT_TRUE(ref::run(a).is_ok());
  for (std::size_t i = 0; i < s.size(); ++i) {
    const double fd = central_difference(s[i], loss, 1e-6);
    EXPECT_NEAR(dscore[i], fd, 1e-5 + 1e-4 * std::abs(fd)) << "d_score[" << i << "]";
  }
  for (std::size_t i = 0; i < yd.size(); ++i) {
    const double fd = central_difference(yd[i], loss, 1e-6);
    EXPECT_NEAR(bf(dy[i]), fd, 1e-4 + 8e-3 * std::abs(fd)) << "d_y[" << i << "]";
  }
  // d_gate: derivative of the loss in the gate with the other gates held.
  for (std::int64_t l = 0; l < L; ++l)
    for (std::int64_t t = 0; t < N; ++t)
      for (std::int64_t j = 0; j < K; ++j) {
        const std::int64_t r = inverse[static_cast<std::size_t>((l * N + t) * K + j)];
        double dot = 0;
        for (std::int64_t i = 0; i < W; ++i) dot += yd[static_cast<std::size_t>(r * W + i)] * bf(c[static_cast<std::size_t>((t * L + l) * W + i)]);
        EXPECT_NEAR(dgate[static_cast<std::size_t>((l * N + t) * K + j)], dot, 1e-5 + 1e-6 * std::abs(dot));
      }
}

TEST(PermuteReference, GroupsCopiesByRankThenExpertAndCountsTheSplits) {
  const auto x = bf16_vector({10, 11, 20, 21, 30, 31});  // n = 3, d = 2
  const std::vector<std::int32_t> topk = {3, 0, 1, 2, 0, 1};
  std::vector<Bf16> send(12);
  std::vector<std::int32_t> offsets(5), perm(6), inverse(6), expert_counts(4), rank_counts(2);
  PermuteArgs a;
  a.x = x.data();
  a.topk_expert = topk.data();
  a.send = send.data();
  a.offsets = offsets.data();
  a.perm = perm.data();
  a.inverse = inverse.data();
  a.expert_counts = expert_counts.data();
  a.rank_counts = rank_counts.data();
  a.num_tokens = 3;
  a.dim = 2;
  a.top_k = 2;
  a.num_experts = 4;
  a.num_ranks = 2;
  ASSERT_TRUE(ref::run(a).is_ok());
  const std::vector<double> expect = {10, 11, 30, 31, 20, 21, 30, 31, 20, 21, 10, 11};
  for (std::size_t i = 0; i < expect.size(); ++i) EXPECT_EQ(bf(send[i]), expect[i]) << i;
  EXPECT_EQ(offsets, (std::vector<std::int32_t>{0, 2, 4, 5, 6}));
  EXPECT_EQ(expert_counts, (std::vector<std::int32_t>{2, 2, 1, 1}));
  EXPECT_EQ(rank_counts, (std::vector<std::int32_t>{4, 2}));
}

TEST(RegroupReference, OrdersReceivedRowsByExpertThenRank) {
  // W = 2 ranks, E_l = 3 local experts. Arrival order: rank 0's rows for experts 0, 1, 2, then
  // rank 1's: counts {1, 0, 2 | 2, 1, 0} -> received rows 0 | - | 1 2 | 3 4 | 5 | -.
  const std::vector<std::int32_t> counts = {1, 0, 2, 2, 1, 0};
  std::vector<std::int32_t> offsets(4), perm(6), inverse(6);
  RegroupArgs a;
  a.counts = counts.data();
  a.offsets = offsets.data();
  a.perm = perm.data();
  a.inverse = inverse.data();
  a.num_ranks = 2;
  a.local_experts = 3;
  a.rows = 6;
  ASSERT_TRUE(ref::run(a).is_ok());
  EXPECT_EQ(offsets, (std::vector<std::int32_t>{0, 3, 4, 6}));
  EXPECT_EQ(perm, (std::vector<std::int32_t>{0, 3, 4, 5, 1, 2}));
  EXPECT_EQ(inverse, (std::vector<std::int32_t>{0, 4, 5, 1, 2, 3}));
  a.rows = 7;
  const auto status = ref::run(a);
  ASSERT_FALSE(status.is_ok());
  EXPECT_NE(status.error().message.find("sum of counts, 6"), std::string::npos) << status.error().message;
}

TEST(RegroupReference, IsTheStableGroupingOfTheReceivedRowsExperts) {
  // The grouping twin on the materialised list of each received row's local expert gives the
  // same offsets and permutation.
  core::Rng rng(31);
  for (const auto& [W, El] : std::vector<std::pair<std::int64_t, std::int64_t>>{{1, 7}, {3, 5}, {4, 1}, {8, 13}}) {
    std::vector<std::int32_t> counts(static_cast<std::size_t>(W * El)), row_expert;
    for (std::int64_t i = 0; i < W * El; ++i) {
      const auto c = rng.below(4) == 0 ? 0 : static_cast<std::int32_t>(rng.below(9));  // about a quarter empty
      counts[static_cast<std::size_t>(i)] = c;
      row_expert.insert(row_expert.end(), static_cast<std::size_t>(c), static_cast<std::int32_t>(i % El));
    }
    const auto rows = static_cast<std::int64_t>(row_expert.size());
    std::vector<std::int32_t> offsets(static_cast<std::size_t>(El + 1)), perm(row_expert.size()), inverse(row_expert.size());
    std::vector<std::int32_t> g_offsets(offsets.size()), g_perm(perm.size()), g_inverse(perm.size());
    RegroupArgs a{counts.data(), offsets.data(), perm.data(), inverse.data(), W, El, rows};
    ASSERT_TRUE(ref::run(a).is_ok());
    GroupingArgs g;
    g.topk_expert = row_expert.data();
    g.offsets = g_offsets.data();
    g.perm = g_perm.data();
    g.inverse = g_inverse.data();
    g.num_heads = 1;
    g.num_tokens = rows;
    g.top_k = 1;
    g.num_experts = El;
    g.pad_to = 1;
    ASSERT_TRUE(ref::run(g).is_ok());
    EXPECT_EQ(offsets, g_offsets) << "W = " << W << ", E_l = " << El;
    EXPECT_EQ(perm, g_perm) << "W = " << W << ", E_l = " << El;
    EXPECT_EQ(inverse, g_inverse) << "W = " << W << ", E_l = " << El;
  }
}

TEST(GroupedMlpReference, AgreesWithTheFusedHpMlpReference) {
  // One head of HP and one rank of EP compute the same function on the same grouped rows.
  SmallMlp p(9);
  p.L = 1;
  const std::int64_t E = p.E;
  core::Rng rng(4);
  p.x = random_bf16(rng, static_cast<std::size_t>(p.N * p.h), 1.0);
  p.wk.resize(static_cast<std::size_t>(E * p.f * p.h));
  p.wv.resize(p.wk.size());
  p.topk = random_topk(rng, 1, p.N, p.K, E);
  GroupingArgs g;
  g.topk_expert = p.topk.data();
  g.offsets = p.offsets.data();
  g.perm = p.perm.data();
  g.inverse = p.inverse.data();
  g.num_heads = 1;
  g.num_tokens = p.N;
  g.top_k = p.K;
  g.num_experts = E;
  ASSERT_TRUE(ref::run(g).is_ok());
  const std::int64_t rows = p.N * p.K;
  std::vector<Bf16> xg(static_cast<std::size_t>(rows * p.h));
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t i = 0; i < p.h; ++i)
      xg[static_cast<std::size_t>(r * p.h + i)] = p.x[static_cast<std::size_t>((p.perm[static_cast<std::size_t>(r)] / p.K) * p.h + i)];

  // EP keeps W2_e as [f][d]; HP keeps V_e^T as [h][f].
  std::vector<Bf16> w2(p.wv.size());
  for (std::int64_t e = 0; e < E; ++e)
    for (std::int64_t c = 0; c < p.f; ++c)
      for (std::int64_t i = 0; i < p.h; ++i)
        w2[static_cast<std::size_t>((e * p.f + c) * p.h + i)] = p.wv[static_cast<std::size_t>((e * p.h + i) * p.f + c)];
  std::vector<Bf16> y_hp(static_cast<std::size_t>(rows * p.h)), y_ep(y_hp.size()), pre(static_cast<std::size_t>(rows * p.f)),
      act(pre.size());
  ExpertMlpForwardArgs hp;
  hp.x = p.x.data();
  hp.offsets = p.offsets.data();
  hp.perm = p.perm.data();
  hp.w_k = p.wk.data();
  hp.w_v = p.wv.data();
  hp.y = y_hp.data();
  hp.num_heads = 1;
  hp.num_tokens = p.N;
  hp.top_k = p.K;
  hp.num_experts = E;
  hp.head_dim = p.h;
  hp.hidden = p.f;
  hp.rows = rows;
  ASSERT_TRUE(ref::run(hp).is_ok());
  GroupedMlpForwardArgs ep;
  ep.x = xg.data();
  ep.offsets = p.offsets.data();
  ep.w1 = p.wk.data();
  ep.w2 = w2.data();
  ep.pre_act = pre.data();
  ep.act = act.data();
  ep.y = y_ep.data();
  ep.num_experts = E;
  ep.rows = rows;
  ep.dim = p.h;
  ep.hidden = p.f;
  ASSERT_TRUE(ref::run(ep).is_ok());
  for (std::size_t i = 0; i < y_hp.size(); ++i) EXPECT_NEAR(bf(y_ep[i]), bf(y_hp[i]), 2e-2 * (1 + std::abs(bf(y_hp[i])))) << i;

  // Backward: same weight gradients and per-row input gradients.
  std::vector<Bf16> dx_hp(y_hp.size()), dx_ep(y_hp.size()), dwk(p.wk.size()), dwv(p.wk.size()), dw1(p.wk.size()), dw2(p.wk.size());
  ExpertMlpBackwardArgs hb;
  hb.x = p.x.data();
  hb.offsets = p.offsets.data();
  hb.perm = p.perm.data();
  hb.w_k = p.wk.data();
  hb.w_v = p.wv.data();
  hb.dy = p.dy.data();
  hb.dx_grouped = dx_hp.data();
  hb.d_w_k = dwk.data();
  hb.d_w_v = dwv.data();
  hb.num_heads = 1;
  hb.num_tokens = p.N;
  hb.top_k = p.K;
  hb.num_experts = E;
  hb.head_dim = p.h;
  hb.hidden = p.f;
  hb.rows = rows;
  ASSERT_TRUE(ref::run(hb).is_ok());
  GroupedMlpBackwardArgs eb;
  eb.x = xg.data();
  eb.offsets = p.offsets.data();
  eb.w1 = p.wk.data();
  eb.w2 = w2.data();
  eb.pre_act = pre.data();
  eb.act = act.data();
  eb.dy = p.dy.data();
  eb.dx = dx_ep.data();
  eb.d_w1 = dw1.data();
  eb.d_w2 = dw2.data();
  eb.num_experts = E;
  eb.rows = rows;
  eb.dim = p.h;
  eb.hidden = p.f;
  ASSERT_TRUE(ref::run(eb).is_ok());
  for (std::size_t i = 0; i < dx_hp.size(); ++i) EXPECT_NEAR(bf(dx_ep[i]), bf(dx_hp[i]), 3e-2 * (1 + std::abs(bf(dx_hp[i])))) << i;
  for (std::size_t i = 0; i < dwk.size(); ++i) EXPECT_NEAR(bf(dw1[i]), bf(dwk[i]), 3e-2 * (1 + std::abs(bf(dwk[i])))) << i;
  for (std::int64_t e = 0; e < E; ++e)
    for (std::int64_t c = 0; c < p.f; ++c)
      for (std::int64_t i = 0; i < p.h; ++i) {
        const double hp_grad = bf(dwv[static_cast<std::size_t>((e * p.h + i) * p.f + c)]);
        EXPECT_NEAR(bf(dw2[static_cast<std::size_t>((e * p.f + c) * p.h + i)]), hp_grad, 3e-2 * (1 + std::abs(hp_grad)));
      }
}

TEST(DenseReference, MatchesHandComputedProducts) {
  const auto x = bf16_vector({1, 2, 3, 4});              // rows = 2, in = 2
  const auto w = bf16_vector({1, 0, 0.5, 1, 2, -1});     // out = 3
  const auto dy = bf16_vector({1, 0, -1, 0.5, 2, 1});
  std::vector<Bf16> y(6), dx(4), dw(6);
  DenseForwardArgs f;
  f.x = x.data();
  f.w = w.data();
  f.y = y.data();
  f.rows = 2;
  f.in_features = 2;
  f.out_features = 3;
  ASSERT_TRUE(ref::run(f).is_ok());
  const std::vector<double> y_expect = {1, 2.5, 0, 3, 5.5, 2};
  for (std::size_t i = 0; i < 6; ++i) EXPECT_EQ(bf(y[i]), y_expect[i]) << i;
  DenseBackwardArgs b;
  b.x = x.data();
  b.w = w.data();
  b.dy = dy.data();
  b.dx = dx.data();
  b.dw = dw.data();
  b.rows = 2;
  b.in_features = 2;
  b.out_features = 3;
  ASSERT_TRUE(ref::run(b).is_ok());
  // dx = dy w: row 0 = 1*(1,0) + 0*(0.5,1) - 1*(2,-1) = (-1, 1); row 1 = 0.5*(1,0) + 2*(0.5,1) + 1*(2,-1) = (3.5, 1)
  const std::vector<double> dx_expect = {-1, 1, 3.5, 1};
  for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(bf(dx[i]), dx_expect[i]) << i;
  // dw = dy^T x: out 0 = 1*(1,2) + 0.5*(3,4) = (2.5, 4); out 1 = 0 + 2*(3,4) = (6, 8); out 2 = -1*(1,2) + 1*(3,4) = (2, 2)
  const std::vector<double> dw_expect = {2.5, 4, 6, 8, 2, 2};
  for (std::size_t i = 0; i < 6; ++i) EXPECT_EQ(bf(dw[i]), dw_expect[i]) << i;
}

// The 4.2B layer's expert MLP backward on `heads` heads of `rows` grouped rows.
ExpertMlpBackwardArgs paper_mlp_backward(std::int64_t heads, std::int64_t rows) {
  ExpertMlpBackwardArgs a;
  a.num_heads = heads;
  a.num_experts = 768;
  a.head_dim = 128;
  a.hidden = 256;
  a.rows = rows;
  return a;
}

TEST(KernelShapes, RejectBadArgumentsNamingTheFieldAndTheRule) {
  std::int32_t idx = 0;
  float gate = 0, w = 0;
  Bf16 x;
  RouterForwardArgs r;
  r.x = &x;
  r.weight = &w;
  r.topk_expert = &idx;
  r.topk_gate = &gate;
  r.num_heads = 1;
  r.num_tokens = 1;
  r.dim = 0;
  r.num_experts = 16;
  r.top_k = 2;
  auto status = check_shape(r);
  ASSERT_FALSE(status.is_ok());
  EXPECT_EQ(status.error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_NE(status.error().message.find("RouterForwardArgs.dim"), std::string::npos) << status.error().message;
  r.dim = 128;
  r.top_k = 9;
  ASSERT_TRUE(check_shape(r).is_ok());
  status = can_implement(r);
  ASSERT_FALSE(status.is_ok());
  EXPECT_EQ(status.error().code, core::ErrorCode::kUnsupported);
  EXPECT_NE(status.error().message.find("top_k"), std::string::npos) << status.error().message;
  r.top_k = 17;
  EXPECT_FALSE(check_shape(r).is_ok());

  ExpertMlpForwardArgs m;
  std::int32_t off = 0;
  alignas(16) Bf16 rows16[16];  // the fused kernels take 16-byte aligned tensors
  m.x = m.w_k = m.w_v = rows16;
  m.y = rows16;
  m.offsets = m.perm = &off;
  m.num_heads = 1;
  m.num_tokens = 4;
  m.top_k = 1;
  m.num_experts = 2;
  m.head_dim = 64;
  m.hidden = 256;
  m.rows = 4;
  ASSERT_TRUE(check_shape(m).is_ok());
  status = can_implement(m);
  ASSERT_FALSE(status.is_ok());
  EXPECT_NE(status.error().message.find("ExpertMlpForwardArgs.head_dim"), std::string::npos) << status.error().message;
  m.head_dim = 128;
  m.hidden = 96;
  status = can_implement(m);
  ASSERT_FALSE(status.is_ok());
  EXPECT_NE(status.error().message.find("hidden"), std::string::npos);
  m.hidden = 128;
  EXPECT_TRUE(can_implement(m).is_ok());
  m.y = rows16 + 1;  // a valid shape, but 2 bytes past a 16-byte boundary
  ASSERT_TRUE(check_shape(m).is_ok());
  status = can_implement(m);
  ASSERT_FALSE(status.is_ok());
  EXPECT_EQ(status.error().code, core::ErrorCode::kUnsupported);
  EXPECT_NE(status.error().message.find("ExpertMlpForwardArgs.y"), std::string::npos) << status.error().message;
  EXPECT_NE(status.error().message.find("16-byte aligned"), std::string::npos) << status.error().message;
  m.y = rows16 + 8;  // 16 bytes on
  EXPECT_TRUE(can_implement(m).is_ok());

  ExpertMlpBackwardArgs mb = paper_mlp_backward(1, 4);
  mb.num_tokens = 4;
  mb.top_k = 1;
  mb.x = mb.w_k = mb.w_v = mb.dy = rows16;
  mb.offsets = mb.perm = &off;
  mb.dx_grouped = mb.d_w_k = mb.d_w_v = rows16;
  ASSERT_TRUE(can_implement(mb).is_ok());
  mb.d_w_v = rows16 + 4;
  status = can_implement(mb);
  ASSERT_FALSE(status.is_ok());
  EXPECT_NE(status.error().message.find("ExpertMlpBackwardArgs.d_w_v"), std::string::npos) << status.error().message;

  GroupingArgs g;
  g.topk_expert = g.offsets = g.perm = g.inverse = &off;
  g.num_heads = 1;
  g.num_tokens = 3;
  g.top_k = 1;
  g.num_experts = 4;
  g.pad_to = 0;
  status = check_shape(g);
  ASSERT_FALSE(status.is_ok());
  EXPECT_NE(status.error().message.find("GroupingArgs.pad_to"), std::string::npos);

  PermuteArgs p;
  p.num_tokens = 2;
  p.dim = 8;
  p.top_k = 1;
  p.num_experts = 6;
  p.num_ranks = 4;
  status = check_shape(p);
  ASSERT_FALSE(status.is_ok());
  EXPECT_NE(status.error().message.find("PermuteArgs.num_experts"), std::string::npos) << status.error().message;
}

TEST(KernelShapes, WorkspaceGrowsWithTheRowBound) {
  ExpertMlpBackwardArgs a = paper_mlp_backward(4, 1000);
  const auto small = workspace_bytes(a);
  a.rows = 1000000;
  EXPECT_GT(workspace_bytes(a), small);
  EXPECT_EQ(workspace_bytes(a) % 256, 0);
}

// The HP weight-gradient items shrink with the rows (at most half of one SM's share of the
// units, so a hot segment cannot keep a few SMs busy alone) without their partial-sum slots
// growing past what the paper's shapes need at 2048-row items.
TEST(KernelShapes, WeightGradientItemsShrinkWithTheRowsWhileTheirSlotsStayBounded) {
  const double slot_bytes = 2.0 * 256 * 128 * 4;  // dK and dV of one segment in fp32
  // A W = 4 rank's 2 heads at 16,384 tokens, k = 1.
  const auto at_131k = static_cast<double>(workspace_bytes(paper_mlp_backward(2, 131072)));
  // 2048-row items would need 2 * 64 + 1 slots; the 1024-row items of this size need 2 * 128 + 1.
  EXPECT_GT(at_131k, (2 * 128 + 1) * slot_bytes);
  EXPECT_LT(at_131k, (2 * 128 + 1) * slot_bytes + 8e6);
  // W = 2, 4 heads at 16,384 tokens, k = 4: half a share is 3972 rows, so 2048.
  const auto at_524k = static_cast<double>(workspace_bytes(paper_mlp_backward(4, 524288)));
  EXPECT_GT(at_524k, (2 * 256 + 1) * slot_bytes);
  EXPECT_LT(at_524k, (2 * 256 + 1) * slot_bytes + 16e6);
}

}  // namespace
}  // namespace hpsim::kernels
