// A whole HP layer and a whole EP layer on one GPU (W = 1, no communication), forward and
// backward through the kernel launchers, against a float64 reference of the same maths written
// here (with the GPU's expert selection, which the router tests check separately). bf16 is
// rounded at every stage boundary on the GPU, so the tolerance is 3e-2 relative L2 per output.
#include "gpu_test_util.h"
#include "hpsim/kernels/combine.h"
#include "hpsim/kernels/dense.h"
#include "hpsim/kernels/ep_permute.h"
#include "hpsim/kernels/expert_mlp.h"
#include "hpsim/kernels/grouped_mlp.h"
#include "hpsim/kernels/grouping.h"
#include "hpsim/kernels/ref.h"
#include "hpsim/kernels/router.h"

namespace hpsim::kernels {
namespace {

using namespace testing;
using Vec = std::vector<double>;

constexpr double kLayerTolerance = 3e-2;

#define HPSIM_LAUNCH_OK(args, ws)                                      \
  do {                                                                 \
    const auto hpsim_status_ = launch((args), (ws), nullptr);          \
    ASSERT_TRUE(hpsim_status_.is_ok()) << hpsim_status_.error().message; \
  } while (0)

// One expert MLP row in float64: y = V^T gelu(K u) (K, V: f x w row-major).
void mlp_row(const double* u, const Vec& K, const Vec& V, std::size_t base, std::int64_t w, std::int64_t f, Vec& s, Vec& y) {
  s.assign(static_cast<std::size_t>(f), 0.0);
  y.assign(static_cast<std::size_t>(w), 0.0);
  for (std::int64_t c = 0; c < f; ++c) {
    for (std::int64_t i = 0; i < w; ++i) s[static_cast<std::size_t>(c)] += K[base + static_cast<std::size_t>(c * w + i)] * u[i];
    const double a = ref::gelu(s[static_cast<std::size_t>(c)]);
    for (std::int64_t i = 0; i < w; ++i) y[static_cast<std::size_t>(i)] += a * V[base + static_cast<std::size_t>(c * w + i)];
  }
}

// Backward of mlp_row for upstream gradient dy: adds into du, dK, dV.
void mlp_row_backward(const double* u, const double* dy, const Vec& K, const Vec& V, std::size_t base, std::int64_t w,
                      std::int64_t f, double* du, Vec& dK, Vec& dV) {
  for (std::int64_t c = 0; c < f; ++c) {
    double s = 0, da = 0;
    for (std::int64_t i = 0; i < w; ++i) {
      s += K[base + static_cast<std::size_t>(c * w + i)] * u[i];
      da += dy[i] * V[base + static_cast<std::size_t>(c * w + i)];
    }
    const double a = ref::gelu(s), ds = da * ref::gelu_grad(s);
    for (std::int64_t i = 0; i < w; ++i) {
      du[i] += ds * K[base + static_cast<std::size_t>(c * w + i)];
      dK[base + static_cast<std::size_t>(c * w + i)] += ds * u[i];
      dV[base + static_cast<std::size_t>(c * w + i)] += a * dy[i];
    }
  }
}

// Row-major C[m][n] = A[m][k] B[n][k]^T in float64.
Vec matmul_nt(const Vec& A, const Vec& B, std::int64_t m, std::int64_t n, std::int64_t k) {
  Vec C(static_cast<std::size_t>(m * n), 0.0);
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < n; ++j) {
      double acc = 0;
      for (std::int64_t q = 0; q < k; ++q) acc += A[static_cast<std::size_t>(i * k + q)] * B[static_cast<std::size_t>(j * k + q)];
      C[static_cast<std::size_t>(i * n + j)] = acc;
    }
  return C;
}

// C[m][n] = A[m][k] B[k][n]
Vec matmul_nn(const Vec& A, const Vec& B, std::int64_t m, std::int64_t n, std::int64_t k) {
  Vec C(static_cast<std::size_t>(m * n), 0.0);
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t q = 0; q < k; ++q) {
      const double a = A[static_cast<std::size_t>(i * k + q)];
      for (std::int64_t j = 0; j < n; ++j) C[static_cast<std::size_t>(i * n + j)] += a * B[static_cast<std::size_t>(q * n + j)];
    }
  return C;
}

// C[m][n] = A[k][m]^T B[k][n]
Vec matmul_tn(const Vec& A, const Vec& B, std::int64_t m, std::int64_t n, std::int64_t k) {
  Vec C(static_cast<std::size_t>(m * n), 0.0);
  for (std::int64_t q = 0; q < k; ++q)
    for (std::int64_t i = 0; i < m; ++i) {
      const double a = A[static_cast<std::size_t>(q * m + i)];
      for (std::int64_t j = 0; j < n; ++j) C[static_cast<std::size_t>(i * n + j)] += a * B[static_cast<std::size_t>(q * n + j)];
    }
  return C;
}

// The routed part shared by both layers, in float64, for inputs u [N][L][w] and the GPU's
// selection: forward o = sum_j g_j MLP_e_j(u); backward given do: du, dR, dK, dV.
struct RoutedReference {
  std::int64_t L, N, w, E, k, f;
  Vec o, du, dR, dK, dV;
  void run(const Vec& u, const Vec& R, const Vec& K, const Vec& V, const std::vector<std::int32_t>& topk, const Vec& d_o) {
    o.assign(static_cast<std::size_t>(N * L * w), 0.0);
    du.assign(o.size(), 0.0);
    dR.assign(R.size(), 0.0);
    dK.assign(K.size(), 0.0);
    dV.assign(V.size(), 0.0);
    Vec s, y, score(static_cast<std::size_t>(k)), gate(static_cast<std::size_t>(k)), dg(static_cast<std::size_t>(k));
    std::vector<Vec> ys(static_cast<std::size_t>(k));
    for (std::int64_t t = 0; t < N; ++t)
      for (std::int64_t l = 0; l < L; ++l) {
        const double* ut = &u[static_cast<std::size_t>((t * L + l) * w)];
        const double* dot = &d_o[static_cast<std::size_t>((t * L + l) * w)];
        double m = -1e300, z = 0;
        for (std::int64_t j = 0; j < k; ++j) {
          const std::int64_t e = topk[static_cast<std::size_t>((l * N + t) * k + j)];
          double acc = 0;
          for (std::int64_t i = 0; i < w; ++i) acc += ut[i] * R[static_cast<std::size_t>((l * E + e) * w + i)];
          score[static_cast<std::size_t>(j)] = acc;
          m = std::max(m, acc);
        }
        for (std::int64_t j = 0; j < k; ++j) z += std::exp(score[static_cast<std::size_t>(j)] - m);
        double weighted = 0;
        for (std::int64_t j = 0; j < k; ++j) {
          const std::int64_t e = topk[static_cast<std::size_t>((l * N + t) * k + j)];
          gate[static_cast<std::size_t>(j)] = std::exp(score[static_cast<std::size_t>(j)] - m) / z;
          mlp_row(ut, K, V, static_cast<std::size_t>((l * E + e) * f * w), w, f, s, ys[static_cast<std::size_t>(j)]);
          double d = 0;
          for (std::int64_t i = 0; i < w; ++i) {
            o[static_cast<std::size_t>((t * L + l) * w + i)] += gate[static_cast<std::size_t>(j)] * ys[static_cast<std::size_t>(j)][static_cast<std::size_t>(i)];
            d += dot[i] * ys[static_cast<std::size_t>(j)][static_cast<std::size_t>(i)];
          }
          dg[static_cast<std::size_t>(j)] = d;
          weighted += gate[static_cast<std::size_t>(j)] * d;
        }
        double* dut = &du[static_cast<std::size_t>((t * L + l) * w)];
        Vec dy(static_cast<std::size_t>(w));
        for (std::int64_t j = 0; j < k; ++j) {
          const std::int64_t e = topk[static_cast<std::size_t>((l * N + t) * k + j)];
          const double g = gate[static_cast<std::size_t>(j)];
          const double ds = g * (dg[static_cast<std::size_t>(j)] - weighted);
          for (std::int64_t i = 0; i < w; ++i) dy[static_cast<std::size_t>(i)] = g * dot[i];
          mlp_row_backward(ut, dy.data(), K, V, static_cast<std::size_t>((l * E + e) * f * w), w, f, dut, dK, dV);
          for (std::int64_t i = 0; i < w; ++i) {
            dut[i] += ds * R[static_cast<std::size_t>((l * E + e) * w + i)];
            dR[static_cast<std::size_t>((l * E + e) * w + i)] += ds * ut[i];
          }
        }
      }
  }
};

Vec as_double(const std::vector<Bf16>& v) { return to_double(v); }

// Per expert block of [rows][cols] -> [cols][rows] (V_e^T <-> V_e).
Vec transpose_blocks(const Vec& v, std::int64_t blocks, std::int64_t rows, std::int64_t cols) {
  Vec out(v.size());
  for (std::int64_t b = 0; b < blocks; ++b)
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t c = 0; c < cols; ++c)
        out[static_cast<std::size_t>((b * cols + c) * rows + r)] = v[static_cast<std::size_t>((b * rows + r) * cols + c)];
  return out;
}

TEST(HpLayerGpu, ForwardAndBackwardMatchFloat64) {
  HPSIM_REQUIRE_GPUS(1);
  const std::int64_t n = 200, d = 256, H = 8, h = 128, L = H, N = n, E = 16, k = 3, f = 128;
  core::Rng rng(21);
  const auto x = random_bf16(rng, static_cast<std::size_t>(n * d), 1.0);
  const auto w_in = random_bf16(rng, static_cast<std::size_t>(H * h * d), 1.0 / 16);
  const auto rw = random_float(rng, static_cast<std::size_t>(L * E * h), 0.1);
  const auto bias = random_float(rng, static_cast<std::size_t>(L * E), 0.05);
  const auto wk = random_bf16(rng, static_cast<std::size_t>(L * E * f * h), 1.0 / std::sqrt(128.0));
  const auto wv = random_bf16(rng, wk.size(), 1.0 / std::sqrt(128.0));
  const auto w_out = random_bf16(rng, static_cast<std::size_t>(d * H * h), 1.0 / 32);
  const auto dz = random_bf16(rng, static_cast<std::size_t>(n * d), 1.0);

  auto ctx = create_dense_context();
  ASSERT_TRUE(ctx.has_value()) << ctx.error().message;
  const std::int64_t rows = grouping_rows_bound(L, N, k, E, 1);
  DeviceBuffer<Bf16> x_d(x), win_d(w_in), wk_d(wk), wv_d(wv), wout_d(w_out), dz_d(dz), u_d(static_cast<std::size_t>(n * H * h)),
      yg_d(static_cast<std::size_t>(rows * h)), o_d(u_d.size()), z_d(x.size()), do_d(u_d.size()), dyg_d(yg_d.size()),
      dxg_d(yg_d.size()), dumlp_d(u_d.size()), du_d(u_d.size()), dx_d(x.size()), dwin_d(w_in.size()), dwout_d(w_out.size()),
      dwk_d(wk.size()), dwv_d(wk.size());
  DeviceBuffer<float> rw_d(rw), bias_d(bias), gate_d(static_cast<std::size_t>(L * N * k)), ds_d(gate_d.size()), drw_d(rw.size());
  DeviceBuffer<std::int32_t> topk_d(gate_d.size()), off_d(static_cast<std::size_t>(L * E + 1)), perm_d(static_cast<std::size_t>(rows)),
      inv_d(gate_d.size());
  for (auto* b : {&z_d, &dx_d, &dwin_d, &dwout_d, &dwk_d, &dwv_d}) b->poison();
  drw_d.poison();
  auto ws = workspace(64ll << 20);

  DenseForwardArgs in_f{ctx->get(), x_d.get(), win_d.get(), u_d.get(), n, d, H * h};
  HPSIM_LAUNCH_OK(in_f, ws.get());
  RouterForwardArgs rf;
  rf.x = u_d.get();
  rf.weight = rw_d.get();
  rf.bias = bias_d.get();
  rf.topk_expert = topk_d.get();
  rf.topk_gate = gate_d.get();
  rf.num_heads = L;
  rf.num_tokens = N;
  rf.dim = h;
  rf.num_experts = E;
  rf.top_k = k;
  HPSIM_LAUNCH_OK(rf, ws.get());
  GroupingArgs g;
  g.topk_expert = topk_d.get();
  g.offsets = off_d.get();
  g.perm = perm_d.get();
  g.inverse = inv_d.get();
  g.num_heads = L;
  g.num_tokens = N;
  g.top_k = k;
  g.num_experts = E;
  HPSIM_LAUNCH_OK(g, ws.get());
  ExpertMlpForwardArgs mf;
  mf.x = u_d.get();
  mf.offsets = off_d.get();
  mf.perm = perm_d.get();
  mf.w_k = wk_d.get();
  mf.w_v = wv_d.get();
  mf.y = yg_d.get();
  mf.num_heads = L;
  mf.num_tokens = N;
  mf.top_k = k;
  mf.num_experts = E;
  mf.head_dim = h;
  mf.hidden = f;
  mf.rows = rows;
  HPSIM_LAUNCH_OK(mf, ws.get());
  CombineForwardArgs cf{yg_d.get(), inv_d.get(), gate_d.get(), o_d.get(), L, N, k, h};
  HPSIM_LAUNCH_OK(cf, ws.get());
  DenseForwardArgs out_f{ctx->get(), o_d.get(), wout_d.get(), z_d.get(), n, H * h, d};
  HPSIM_LAUNCH_OK(out_f, ws.get());
  // Backward.
  DenseBackwardArgs out_b{ctx->get(), o_d.get(), wout_d.get(), dz_d.get(), do_d.get(), dwout_d.get(), n, H * h, d};
  HPSIM_LAUNCH_OK(out_b, ws.get());
  CombineBackwardArgs cb{do_d.get(), yg_d.get(), inv_d.get(), gate_d.get(), dyg_d.get(), nullptr, ds_d.get(), L, N, k, h};
  HPSIM_LAUNCH_OK(cb, ws.get());
  ExpertMlpBackwardArgs mb;
  mb.x = u_d.get();
  mb.offsets = off_d.get();
  mb.perm = perm_d.get();
  mb.w_k = wk_d.get();
  mb.w_v = wv_d.get();
  mb.dy = dyg_d.get();
  mb.dx_grouped = dxg_d.get();
  mb.d_w_k = dwk_d.get();
  mb.d_w_v = dwv_d.get();
  mb.num_heads = L;
  mb.num_tokens = N;
  mb.top_k = k;
  mb.num_experts = E;
  mb.head_dim = h;
  mb.hidden = f;
  mb.rows = rows;
  HPSIM_LAUNCH_OK(mb, ws.get());
  CombineForwardArgs ungroup{dxg_d.get(), inv_d.get(), nullptr, dumlp_d.get(), L, N, k, h};
  HPSIM_LAUNCH_OK(ungroup, ws.get());
  RouterBackwardArgs rb;
  rb.x = u_d.get();
  rb.weight = rw_d.get();
  rb.topk_expert = topk_d.get();
  rb.d_score = ds_d.get();
  rb.group_offsets = off_d.get();
  rb.group_perm = perm_d.get();
  rb.dx_in = dumlp_d.get();
  rb.dx = du_d.get();
  rb.d_weight = drw_d.get();
  rb.num_heads = L;
  rb.num_tokens = N;
  rb.dim = h;
  rb.num_experts = E;
  rb.top_k = k;
  rb.group_rows = rows;
  HPSIM_LAUNCH_OK(rb, ws.get());
  DenseBackwardArgs in_b{ctx->get(), x_d.get(), win_d.get(), du_d.get(), dx_d.get(), dwin_d.get(), n, d, H * h};
  HPSIM_LAUNCH_OK(in_b, ws.get());
  const auto topk = topk_d.download();

  // float64 reference with the GPU's selection.
  const Vec xd = as_double(x), wind = as_double(w_in), woutd = as_double(w_out), dzd = as_double(dz);
  const Vec u = matmul_nt(xd, wind, n, H * h, d);
  RoutedReference routed{L, N, h, E, k, f, {}, {}, {}, {}, {}};
  const Vec d_o = matmul_nn(dzd, woutd, n, H * h, d);
  routed.run(u, to_double(rw), as_double(wk), transpose_blocks(as_double(wv), L * E, h, f), topk, d_o);
  const Vec z = matmul_nt(routed.o, woutd, n, d, H * h);
  const Vec dw_out = matmul_tn(dzd, routed.o, d, H * h, n);
  const Vec dx = matmul_nn(routed.du, wind, n, d, H * h);
  const Vec dw_in = matmul_tn(routed.du, xd, H * h, d, n);

  EXPECT_LT(rel_l2(to_double(z_d.download()), z), kLayerTolerance) << "z";
  EXPECT_LT(rel_l2(to_double(dwout_d.download()), dw_out), kLayerTolerance) << "dW_out";
  EXPECT_LT(rel_l2(to_double(dwk_d.download()), routed.dK), kLayerTolerance) << "dK";
  EXPECT_LT(rel_l2(to_double(dwv_d.download()), transpose_blocks(routed.dV, L * E, f, h)), kLayerTolerance) << "dV";
  EXPECT_LT(rel_l2(to_double(drw_d.download()), routed.dR), kLayerTolerance) << "dR";
  EXPECT_LT(rel_l2(to_double(dx_d.download()), dx), kLayerTolerance) << "dx";
  EXPECT_LT(rel_l2(to_double(dwin_d.download()), dw_in), kLayerTolerance) << "dW_in";
}

TEST(EpLayerGpu, ForwardAndBackwardMatchFloat64) {
  HPSIM_REQUIRE_GPUS(1);
  const std::int64_t n = 300, d = 256, E = 16, k = 4, f = 128, W = 1;
  core::Rng rng(22);
  const auto x = random_bf16(rng, static_cast<std::size_t>(n * d), 1.0);
  const auto rw = random_float(rng, static_cast<std::size_t>(E * d), 0.06);
  const auto w1 = random_bf16(rng, static_cast<std::size_t>(E * f * d), 1.0 / 16);
  const auto w2 = random_bf16(rng, w1.size(), 1.0 / std::sqrt(128.0));
  const auto dz = random_bf16(rng, static_cast<std::size_t>(n * d), 1.0);
  const std::int64_t rows = n * k;

  DeviceBuffer<Bf16> x_d(x), w1_d(w1), w2_d(w2), dz_d(dz), send_d(static_cast<std::size_t>(rows * d)),
      pre_d(static_cast<std::size_t>(rows * f)), act_d(pre_d.size()), yg_d(send_d.size()), z_d(x.size()), dyg_d(send_d.size()),
      dsend_d(send_d.size()), dxmlp_d(x.size()), dx_d(x.size()), dw1_d(w1.size()), dw2_d(w1.size());
  DeviceBuffer<float> rw_d(rw), gate_d(static_cast<std::size_t>(rows)), ds_d(gate_d.size()), drw_d(rw.size());
  DeviceBuffer<std::int32_t> topk_d(gate_d.size()), off_d(static_cast<std::size_t>(E + 1)), perm_d(static_cast<std::size_t>(rows)),
      inv_d(gate_d.size()), ecount_d(static_cast<std::size_t>(E)), rcount_d(1);
  for (auto* b : {&z_d, &dx_d, &dw1_d, &dw2_d}) b->poison();
  drw_d.poison();
  auto ws = workspace(64ll << 20);

  RouterForwardArgs rf;
  rf.x = x_d.get();
  rf.weight = rw_d.get();
  rf.topk_expert = topk_d.get();
  rf.topk_gate = gate_d.get();
  rf.num_heads = 1;
  rf.num_tokens = n;
  rf.dim = d;
  rf.num_experts = E;
  rf.top_k = k;
  HPSIM_LAUNCH_OK(rf, ws.get());
  PermuteArgs pa{x_d.get(), topk_d.get(), send_d.get(), off_d.get(), perm_d.get(), inv_d.get(), ecount_d.get(), rcount_d.get(),
                 n, d, k, E, W};
  HPSIM_LAUNCH_OK(pa, ws.get());
  GroupedMlpForwardArgs mf{send_d.get(), off_d.get(), w1_d.get(), w2_d.get(), pre_d.get(), act_d.get(), yg_d.get(), E, rows, d, f};
  HPSIM_LAUNCH_OK(mf, ws.get());
  CombineForwardArgs cf{yg_d.get(), inv_d.get(), gate_d.get(), z_d.get(), 1, n, k, d};
  HPSIM_LAUNCH_OK(cf, ws.get());
  CombineBackwardArgs cb{dz_d.get(), yg_d.get(), inv_d.get(), gate_d.get(), dyg_d.get(), nullptr, ds_d.get(), 1, n, k, d};
  HPSIM_LAUNCH_OK(cb, ws.get());
  GroupedMlpBackwardArgs mb{send_d.get(), off_d.get(), w1_d.get(), w2_d.get(), pre_d.get(), act_d.get(), dyg_d.get(),
                            dsend_d.get(), dw1_d.get(), dw2_d.get(), E, rows, d, f};
  HPSIM_LAUNCH_OK(mb, ws.get());
  CombineForwardArgs ungroup{dsend_d.get(), inv_d.get(), nullptr, dxmlp_d.get(), 1, n, k, d};
  HPSIM_LAUNCH_OK(ungroup, ws.get());
  RouterBackwardArgs rb;
  rb.x = x_d.get();
  rb.weight = rw_d.get();
  rb.topk_expert = topk_d.get();
  rb.d_score = ds_d.get();
  rb.group_offsets = off_d.get();
  rb.group_perm = perm_d.get();
  rb.dx_in = dxmlp_d.get();
  rb.dx = dx_d.get();
  rb.d_weight = drw_d.get();
  rb.num_heads = 1;
  rb.num_tokens = n;
  rb.dim = d;
  rb.num_experts = E;
  rb.top_k = k;
  rb.group_rows = rows;
  HPSIM_LAUNCH_OK(rb, ws.get());
  const auto topk = topk_d.download();
  EXPECT_EQ(rcount_d.download(), std::vector<std::int32_t>{static_cast<std::int32_t>(rows)});

  RoutedReference routed{1, n, d, E, k, f, {}, {}, {}, {}, {}};
  routed.run(as_double(x), to_double(rw), as_double(w1), as_double(w2), topk, as_double(dz));
  EXPECT_LT(rel_l2(to_double(z_d.download()), routed.o), kLayerTolerance) << "z";
  EXPECT_LT(rel_l2(to_double(dx_d.download()), routed.du), kLayerTolerance) << "dx";
  EXPECT_LT(rel_l2(to_double(drw_d.download()), routed.dR), kLayerTolerance) << "dR";
  EXPECT_LT(rel_l2(to_double(dw1_d.download()), routed.dK), kLayerTolerance) << "dW1";
  EXPECT_LT(rel_l2(to_double(dw2_d.download()), routed.dV), kLayerTolerance) << "dW2";
}

}  // namespace
}  // namespace hpsim::kernels
