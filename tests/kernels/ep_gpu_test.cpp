// EP regroup (exactly the twin), the EP grouped MLP and the cuBLAS dense projections on the GPU
// against the float64 twins: bf16
// outputs within 1e-2 relative L2 (pre-activations within 5e-3), empty experts get exact zero
// weight gradients, two runs bitwise equal, outputs poisoned before each run.
#include <tuple>

#include "gpu_test_util.h"
#include "hpsim/kernels/dense.h"
#include "hpsim/kernels/ep_permute.h"
#include "hpsim/kernels/grouped_mlp.h"
#include "hpsim/kernels/ref.h"

namespace hpsim::kernels {
namespace {

using namespace testing;

void check_grouped_mlp(const std::vector<std::int32_t>& counts, std::int64_t d, std::int64_t f, std::uint64_t seed) {
  core::Rng rng(seed);
  const std::int64_t E = static_cast<std::int64_t>(counts.size());
  std::vector<std::int32_t> offsets(1, 0);
  for (auto c : counts) offsets.push_back(offsets.back() + c);
  const std::int64_t total = offsets.back(), rows = total + 50;  // capacity past the used rows
  const auto x = random_bf16(rng, static_cast<std::size_t>(rows * d), 1.0);
  const auto w1 = random_bf16(rng, static_cast<std::size_t>(E * f * d), 1.0 / std::sqrt(static_cast<double>(d)));
  const auto w2 = random_bf16(rng, w1.size(), 1.0 / std::sqrt(static_cast<double>(f)));
  const auto dy = random_bf16(rng, static_cast<std::size_t>(rows * d), 1.0);

  GroupedMlpForwardArgs fa;
  fa.num_experts = E;
  fa.rows = rows;
  fa.dim = d;
  fa.hidden = f;
  std::vector<Bf16> pre_ref(static_cast<std::size_t>(rows * f)), act_ref(pre_ref.size()), y_ref(x.size());
  fa.x = x.data();
  fa.offsets = offsets.data();
  fa.w1 = w1.data();
  fa.w2 = w2.data();
  fa.pre_act = pre_ref.data();
  fa.act = act_ref.data();
  fa.y = y_ref.data();
  ASSERT_TRUE(ref::run(fa).is_ok());
  GroupedMlpBackwardArgs ba;
  ba.num_experts = E;
  ba.rows = rows;
  ba.dim = d;
  ba.hidden = f;
  std::vector<Bf16> dx_ref(x.size()), dw1_ref(w1.size()), dw2_ref(w1.size());
  ba.x = x.data();
  ba.offsets = offsets.data();
  ba.w1 = w1.data();
  ba.w2 = w2.data();
  ba.pre_act = pre_ref.data();
  ba.act = act_ref.data();
  ba.dy = dy.data();
  ba.dx = dx_ref.data();
  ba.d_w1 = dw1_ref.data();
  ba.d_w2 = dw2_ref.data();
  ASSERT_TRUE(ref::run(ba).is_ok());

  DeviceBuffer<Bf16> x_d(x), w1_d(w1), w2_d(w2), dy_d(dy), pre_d(pre_ref.size()), act_d(pre_ref.size()), y_d(x.size()),
      pre_in(pre_ref), act_in(act_ref), dx_d(x.size()), dw1_d(w1.size()), dw2_d(w1.size());
  DeviceBuffer<std::int32_t> off_d(offsets);
  fa.x = x_d.get();
  fa.offsets = off_d.get();
  fa.w1 = w1_d.get();
  fa.w2 = w2_d.get();
  fa.pre_act = pre_d.get();
  fa.act = act_d.get();
  fa.y = y_d.get();
  ba.x = x_d.get();
  ba.offsets = off_d.get();
  ba.w1 = w1_d.get();
  ba.w2 = w2_d.get();
  ba.pre_act = pre_in.get();  // the twin's forward, so the backward is checked on its own
  ba.act = act_in.get();
  ba.dy = dy_d.get();
  ba.dx = dx_d.get();
  ba.d_w1 = dw1_d.get();
  ba.d_w2 = dw2_d.get();
  auto fws = workspace(workspace_bytes(fa));
  auto bws = workspace(workspace_bytes(ba));
  const std::int64_t used = total * d, used_f = total * f;
  std::vector<Bf16> first_y, first_dw1;
  for (int run = 0; run < 2; ++run) {
    for (auto* b : {&pre_d, &act_d, &y_d, &dx_d, &dw1_d, &dw2_d}) b->poison();
    auto s1 = launch(fa, fws.get(), nullptr);
    ASSERT_TRUE(s1.is_ok()) << s1.error().message;
    auto s2 = launch(ba, bws.get(), nullptr);
    ASSERT_TRUE(s2.is_ok()) << s2.error().message;
    const auto pre = pre_d.download(), act = act_d.download(), y = y_d.download();
    const auto dx = dx_d.download(), dw1 = dw1_d.download(), dw2 = dw2_d.download();
    EXPECT_LT(rel_l2(to_double(pre), to_double(pre_ref), used_f), 5e-3);
    EXPECT_LT(rel_l2(to_double(act), to_double(act_ref), used_f), 1e-2);
    EXPECT_LT(rel_l2(to_double(y), to_double(y_ref), used), 1e-2);
    EXPECT_LT(rel_l2(to_double(dx), to_double(dx_ref), used), 1e-2);
    EXPECT_LT(rel_l2(to_double(dw1), to_double(dw1_ref)), 1e-2);
    EXPECT_LT(rel_l2(to_double(dw2), to_double(dw2_ref)), 1e-2);
    for (std::int64_t e = 0; e < E; ++e) {
      if (counts[static_cast<std::size_t>(e)] != 0) continue;
      for (std::int64_t i = 0; i < f * d; ++i) {
        ASSERT_EQ(to_float(dw1[static_cast<std::size_t>(e * f * d + i)]), 0.0f);
      }
    }
    if (run == 0) {
      first_y = y;
      first_dw1 = dw1;
    } else {
      EXPECT_TRUE(bitwise_equal(y, first_y));
      EXPECT_TRUE(bitwise_equal(dw1, first_dw1));
    }
  }
}

// Regroup is integer bookkeeping: the GPU must equal the twin exactly.
void check_regroup(std::int64_t W, std::int64_t El, const std::vector<std::int32_t>& counts) {
  std::int64_t rows = 0;
  for (auto c : counts) rows += c;
  std::vector<std::int32_t> offsets(static_cast<std::size_t>(El + 1)), perm(static_cast<std::size_t>(rows)), inverse(perm.size());
  RegroupArgs a{counts.data(), offsets.data(), perm.data(), inverse.data(), W, El, rows};
  ASSERT_TRUE(ref::run(a).is_ok());
  DeviceBuffer<std::int32_t> counts_d(counts), offsets_d(offsets.size()), perm_d(perm.size()), inverse_d(perm.size());
  a.counts = counts_d.get();
  a.offsets = offsets_d.get();
  a.perm = perm_d.get();
  a.inverse = inverse_d.get();
  for (int run = 0; run < 2; ++run) {
    for (auto* b : {&offsets_d, &perm_d, &inverse_d}) b->poison();
    const auto status = launch(a, nullptr, nullptr);
    ASSERT_TRUE(status.is_ok()) << status.error().message;
    EXPECT_EQ(offsets_d.download(), offsets) << "W = " << W << ", E_l = " << El << ", rows = " << rows;
    EXPECT_EQ(perm_d.download(), perm) << "W = " << W << ", E_l = " << El << ", rows = " << rows;
    EXPECT_EQ(inverse_d.download(), inverse) << "W = " << W << ", E_l = " << El << ", rows = " << rows;
  }
}

TEST(RegroupGpu, EqualsTheTwinWithEmptyAndHotExperts) {
  HPSIM_REQUIRE_GPUS(1);
  core::Rng rng(77);
  // Random counts (a quarter of the blocks empty), several blocks of rows and one row short of a
  // block boundary; then one (rank, expert) block holding everything, and every rank sending
  // nothing but the last.
  for (const auto& [W, El, scale] : std::vector<std::tuple<std::int64_t, std::int64_t, int>>{
           {1, 768, 200}, {2, 384, 171}, {3, 7, 3000}, {8, 96, 85}, {4, 1024, 1}}) {
    std::vector<std::int32_t> counts(static_cast<std::size_t>(W * El));
    for (auto& c : counts) c = rng.below(4) == 0 ? 0 : static_cast<std::int32_t>(rng.below(static_cast<std::uint64_t>(2 * scale) + 1));
    check_regroup(W, El, counts);
  }
  std::vector<std::int32_t> hot(static_cast<std::size_t>(2 * 384), 0);
  hot[400] = 4096 * 3 - 1;
  check_regroup(2, 384, hot);
  std::vector<std::int32_t> last(static_cast<std::size_t>(4 * 5), 0);
  for (int e = 0; e < 5; ++e) last[static_cast<std::size_t>(15 + e)] = 1000 + e;
  check_regroup(4, 5, last);
  check_regroup(2, 3, std::vector<std::int32_t>(6, 0));  // nothing received
}

TEST(GroupedMlpGpu, MatchesFloat64WithEmptyAndLongExperts) {
  HPSIM_REQUIRE_GPUS(1);
  check_grouped_mlp({37, 0, 300, 1, 129, 0, 64}, 256, 128, 1);
  check_grouped_mlp({500, 3}, 1024, 256, 2);
  check_grouped_mlp({0, 0, 0}, 128, 128, 3);
  // Experts of more than one weight-gradient item (kGemmWgradRows = 1024 rows): weight gradients
  // summed over several items' partial sums.
  check_grouped_mlp({5000, 17, 0, 2100}, 256, 128, 4);
}

TEST(DenseGpu, MatchesFloat64ForwardAndBackward) {
  HPSIM_REQUIRE_GPUS(1);
  auto ctx = create_dense_context();
  ASSERT_TRUE(ctx.has_value()) << ctx.error().message;
  core::Rng rng(5);
  const std::int64_t R = 333, I = 256, O = 384;
  const auto x = random_bf16(rng, static_cast<std::size_t>(R * I), 1.0);
  const auto w = random_bf16(rng, static_cast<std::size_t>(O * I), 0.1);
  const auto dy = random_bf16(rng, static_cast<std::size_t>(R * O), 1.0);
  std::vector<Bf16> y_ref(static_cast<std::size_t>(R * O)), dx_ref(x.size()), dw_ref(w.size());
  DenseForwardArgs f;
  f.x = x.data();
  f.w = w.data();
  f.y = y_ref.data();
  f.rows = R;
  f.in_features = I;
  f.out_features = O;
  ASSERT_TRUE(ref::run(f).is_ok());
  DenseBackwardArgs b;
  b.x = x.data();
  b.w = w.data();
  b.dy = dy.data();
  b.dx = dx_ref.data();
  b.dw = dw_ref.data();
  b.rows = R;
  b.in_features = I;
  b.out_features = O;
  ASSERT_TRUE(ref::run(b).is_ok());
  DeviceBuffer<Bf16> x_d(x), w_d(w), dy_d(dy), y_d(y_ref.size()), dx_d(x.size()), dw_d(w.size());
  y_d.poison();
  dx_d.poison();
  dw_d.poison();
  f.context = ctx->get();
  f.x = x_d.get();
  f.w = w_d.get();
  f.y = y_d.get();
  b.context = ctx->get();
  b.x = x_d.get();
  b.w = w_d.get();
  b.dy = dy_d.get();
  b.dx = dx_d.get();
  b.dw = dw_d.get();
  auto ws = workspace(workspace_bytes(f));
  auto s1 = launch(f, ws.get(), nullptr);
  ASSERT_TRUE(s1.is_ok()) << s1.error().message;
  auto s2 = launch(b, ws.get(), nullptr);
  ASSERT_TRUE(s2.is_ok()) << s2.error().message;
  EXPECT_LT(rel_l2(to_double(y_d.download()), to_double(y_ref)), 1e-2);
  EXPECT_LT(rel_l2(to_double(dx_d.download()), to_double(dx_ref)), 1e-2);
  EXPECT_LT(rel_l2(to_double(dw_d.download()), to_double(dw_ref)), 1e-2);
}

}  // namespace
}  // namespace hpsim::kernels
