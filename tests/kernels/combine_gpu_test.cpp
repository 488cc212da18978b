// Combine on the GPU against the float64 twin: bf16 outputs within 1e-2 relative L2, fp32 gate
// gradients within 1e-5 and score gradients within 1e-4 (relative L2); two runs bitwise equal.
#include <numeric>

#include "gpu_test_util.h"
#include "hpsim/kernels/combine.h"
#include "hpsim/kernels/ref.h"

namespace hpsim::kernels {
namespace {

using namespace testing;

void check_combine(std::int64_t L, std::int64_t N, std::int64_t k, std::int64_t width, bool gated, std::uint64_t seed) {
  core::Rng rng(seed);
  const std::int64_t rows = L * N * k + 17;  // a few rows nobody reads
  const auto y = random_bf16(rng, static_cast<std::size_t>(rows * width), 1.0);
  std::vector<std::int32_t> inverse(static_cast<std::size_t>(L * N * k));
  std::iota(inverse.begin(), inverse.end(), 9);
  for (std::size_t i = inverse.size() - 1; i > 0; --i) std::swap(inverse[i], inverse[rng.below(i + 1)]);
  std::vector<float> gate(inverse.size());
  for (std::int64_t lt = 0; lt < L * N; ++lt) {
    double z = 0;
    for (std::int64_t j = 0; j < k; ++j) z += (gate[static_cast<std::size_t>(lt * k + j)] = static_cast<float>(rng.uniform() + 0.1));
    for (std::int64_t j = 0; j < k; ++j) gate[static_cast<std::size_t>(lt * k + j)] = static_cast<float>(gate[static_cast<std::size_t>(lt * k + j)] / z);
  }
  const auto d_out = random_bf16(rng, static_cast<std::size_t>(N * L * width), 1.0);

  CombineForwardArgs f;
  f.num_heads = L;
  f.num_tokens = N;
  f.top_k = k;
  f.width = width;
  std::vector<Bf16> out_ref(static_cast<std::size_t>(N * L * width));
  f.y = y.data();
  f.inverse = inverse.data();
  f.gate = gated ? gate.data() : nullptr;
  f.out = out_ref.data();
  ASSERT_TRUE(ref::run(f).is_ok());
  CombineBackwardArgs b;
  b.num_heads = L;
  b.num_tokens = N;
  b.top_k = k;
  b.width = width;
  std::vector<Bf16> dy_ref(y.size());
  std::vector<float> dg_ref(gate.size()), ds_ref(gate.size());
  b.d_out = d_out.data();
  b.y = y.data();
  b.inverse = inverse.data();
  b.gate = gate.data();
  b.d_y = dy_ref.data();
  b.d_gate = dg_ref.data();
  b.d_score = ds_ref.data();
  ASSERT_TRUE(ref::run(b).is_ok());

  DeviceBuffer<Bf16> y_d(y), out_d(out_ref.size()), dout_d(d_out), dy_d(y.size());
  DeviceBuffer<std::int32_t> inv_d(inverse);
  DeviceBuffer<float> gate_d(gate), dg_d(gate.size()), ds_d(gate.size());
  f.y = y_d.get();
  f.inverse = inv_d.get();
  f.gate = gated ? gate_d.get() : nullptr;
  f.out = out_d.get();
  b.d_out = dout_d.get();
  b.y = y_d.get();
  b.inverse = inv_d.get();
  b.gate = gate_d.get();
  b.d_y = dy_d.get();
  b.d_gate = dg_d.get();
  b.d_score = ds_d.get();
  std::vector<Bf16> first_out, first_dy;
  std::vector<float> first_ds;
  for (int run = 0; run < 2; ++run) {
    out_d.poison();
    dy_d.poison();
    dg_d.poison();
    ds_d.poison();
    auto s1 = launch(f, nullptr, nullptr);
    ASSERT_TRUE(s1.is_ok()) << s1.error().message;
    auto s2 = launch(b, nullptr, nullptr);
    ASSERT_TRUE(s2.is_ok()) << s2.error().message;
    const auto out = out_d.download(), dy = dy_d.download();
    const auto dg = dg_d.download(), ds = ds_d.download();
    EXPECT_LT(rel_l2(to_double(out), to_double(out_ref)), 1e-2);
    // Only the listed rows of d_y are written; compare those.
    std::vector<double> got_rows, ref_rows;
    for (std::int32_t r : inverse)
      for (std::int64_t i = 0; i < width; ++i) {
        got_rows.push_back(static_cast<double>(to_float(dy[static_cast<std::size_t>(r * width + i)])));
        ref_rows.push_back(static_cast<double>(to_float(dy_ref[static_cast<std::size_t>(r * width + i)])));
      }
    EXPECT_LT(rel_l2(got_rows, ref_rows), 1e-2);
    EXPECT_LT(rel_l2(to_double(dg), to_double(dg_ref)), 1e-5);
    EXPECT_LT(rel_l2(to_double(ds), to_double(ds_ref)), 1e-4);
    if (run == 0) {
      first_out = out;
      first_dy = dy;
      first_ds = ds;
    } else {
      EXPECT_TRUE(bitwise_equal(out, first_out));
      EXPECT_TRUE(bitwise_equal(dy, first_dy));
      EXPECT_TRUE(bitwise_equal(ds, first_ds));
    }
  }
}

TEST(CombineGpu, MatchesFloat64ForHpHeads) {
  HPSIM_REQUIRE_GPUS(1);
  check_combine(3, 1001, 5, 128, true, 1);
  check_combine(4, 257, 8, 128, false, 2);  // no gates: the sum of the k copies
  check_combine(2, 99, 1, 64, true, 3);
}

TEST(CombineGpu, MatchesFloat64ForEpUnpermute) {
  HPSIM_REQUIRE_GPUS(1);
  check_combine(1, 333, 8, 1024, true, 4);
  check_combine(1, 100, 4, 264, true, 5);
}

}  // namespace
}  // namespace hpsim::kernels
