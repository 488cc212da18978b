#include "bench_verify.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include <fmt/format.h>

#include "bench_common.h"
#include "hpsim/core/rng.h"
#include "hpsim/kernels/combine.h"
#include "hpsim/kernels/dense.h"
#include "hpsim/kernels/ep_permute.h"
#include "hpsim/kernels/expert_mlp.h"
#include "hpsim/kernels/grouped_mlp.h"
#include "hpsim/kernels/grouping.h"
#include "hpsim/kernels/ref.h"
#include "routing_gen.h"

namespace hpsim::kernels::bench {
namespace {

std::vector<Bf16> rand_bf16(core::Rng& rng, std::int64_t n, double scale) {
  std::vector<Bf16> v(static_cast<std::size_t>(n));
  for (auto& x : v) x = to_bf16(static_cast<float>(rng.normal() * scale));
  return v;
}
std::vector<float> rand_f32(core::Rng& rng, std::int64_t n, double scale) {
  std::vector<float> v(static_cast<std::size_t>(n));
  for (auto& x : v) x = static_cast<float>(rng.normal() * scale);
  return v;
}
double val(Bf16 v) { return static_cast<double>(to_float(v)); }
double val(float v) { return static_cast<double>(v); }

template <typename A, typename B>
double rel_l2(const std::vector<A>& got, const std::vector<B>& ref, std::int64_t count = -1) {
  const std::size_t n = count < 0 ? ref.size() : static_cast<std::size_t>(count);
  double num = 0, den = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double g = val(got[i]), r = val(ref[i]);
    if (!std::isfinite(g)) return INFINITY;
    num += (g - r) * (g - r);
    den += r * r;
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}


#define VERIFY_OK(expr)                                           \
  do {                                                            \
    const core::Status verify_status_ = (expr);                   \
    if (!verify_status_.is_ok()) return verify_status_.error().message; \
  } while (0)

#define VERIFY_LT(value, limit, what)                                                                  \
  do {                                                                                                 \
    const double verify_value_ = (value);                                                              \
    if (!(verify_value_ < (limit))) return fmt::format("{}: relative L2 error {:.3g} >= {:.3g}", what, verify_value_, static_cast<double>(limit)); \
  } while (0)

DeviceBuf<char> ws_for(std::int64_t bytes) { return DeviceBuf<char>(static_cast<std::size_t>(bytes > 0 ? bytes : 1)); }

struct Grouped {
  std::vector<std::int32_t> offsets, perm, inverse;
  std::int64_t rows = 0;
};
Grouped group_on_host(const std::vector<std::int32_t>& topk, std::int64_t L, std::int64_t N, std::int64_t k, std::int64_t E) {
  Grouped g;
  GroupingArgs a;
  a.num_heads = L;
  a.num_tokens = N;
  a.top_k = k;
  a.num_experts = E;
  g.rows = grouping_rows_bound(a);
  g.offsets.resize(static_cast<std::size_t>(L * E + 1));
  g.perm.resize(static_cast<std::size_t>(g.rows));
  g.inverse.resize(topk.size());
  a.topk_expert = topk.data();
  a.offsets = g.offsets.data();
  a.perm = g.perm.data();
  a.inverse = g.inverse.data();
  HPSIM_ASSERT(ref::run(a).is_ok(), "grouping twin");
  return g;
}

}  // namespace

std::string verify_router_fwd(std::int64_t L, std::int64_t N, std::int64_t dim, std::int64_t E, std::int64_t k, RouterAlgo algo) {
  core::Rng rng(101);
  const auto x = rand_bf16(rng, N * L * dim, 1.0);
  const auto w = rand_f32(rng, L * E * dim, 1.0 / std::sqrt(static_cast<double>(dim)));
  const auto bias = rand_f32(rng, L * E, 0.3);
  std::vector<std::int32_t> idx(static_cast<std::size_t>(L * N * k));
  std::vector<float> gate(idx.size());
  RouterForwardArgs a;
  a.x = x.data();
  a.weight = w.data();
  a.bias = bias.data();
  a.topk_expert = idx.data();
  a.topk_gate = gate.data();
  a.num_heads = L;
  a.num_tokens = N;
  a.dim = dim;
  a.num_experts = E;
  a.top_k = k;
  a.algo = algo;
  VERIFY_OK(ref::run(a));
  DeviceBuf<Bf16> xd(x);
  DeviceBuf<float> wd(w), bd(bias), gd(gate.size());
  DeviceBuf<std::int32_t> id(idx.size());
  HPSIM_CUDA_CHECK(cudaMemset(gd.get(), 0xff, gate.size() * 4));
  a.x = xd.get();
  a.weight = wd.get();
  a.bias = bd.get();
  a.topk_expert = id.get();
  a.topk_gate = gd.get();
  auto ws = ws_for(workspace_bytes(a));
  VERIFY_OK(launch(a, ws.get(), nullptr));
  const auto gi = id.download();
  const auto gg = gd.download();
  std::int64_t mismatched = 0;
  for (std::int64_t lt = 0; lt < L * N; ++lt) {
    std::vector<std::int32_t> p(gi.begin() + lt * k, gi.begin() + (lt + 1) * k), q(idx.begin() + lt * k, idx.begin() + (lt + 1) * k);
    std::sort(p.begin(), p.end());
    std::sort(q.begin(), q.end());
    mismatched += p != q ? 1 : 0;
  }
  if (mismatched > std::max<std::int64_t>(1, L * N / 1000))
    return fmt::format("selections differ from the float64 twin for {} of {} tokens", mismatched, L * N);
  VERIFY_LT(rel_l2(gg, gate), 1e-4, "gates");
  return "";
}

std::string verify_router_bwd(std::int64_t L, std::int64_t N, std::int64_t dim, std::int64_t E, std::int64_t k) {
  core::Rng rng(102);
  const auto x = rand_bf16(rng, N * L * dim, 1.0);
  const auto w = rand_f32(rng, L * E * dim, 0.1);
  const auto topk = make_routing(L, N, k, E, 0.0, 5);
  const auto ds = rand_f32(rng, L * N * k, 1.0);
  const Grouped g = group_on_host(topk, L, N, k, E);
  std::vector<Bf16> dx(x.size());
  std::vector<float> dw(w.size());
  RouterBackwardArgs a;
  a.x = x.data();
  a.weight = w.data();
  a.topk_expert = topk.data();
  a.d_score = ds.data();
  a.dx = dx.data();
  a.d_weight = dw.data();
  a.num_heads = L;
  a.num_tokens = N;
  a.dim = dim;
  a.num_experts = E;
  a.top_k = k;
  a.group_rows = g.rows;
  VERIFY_OK(ref::run(a));
  DeviceBuf<Bf16> xd(x), dxd(x.size());
  DeviceBuf<float> wd(w), dsd(ds), dwd(w.size());
  DeviceBuf<std::int32_t> td(topk), od(g.offsets), pd(g.perm);
  a.x = xd.get();
  a.weight = wd.get();
  a.topk_expert = td.get();
  a.d_score = dsd.get();
  a.group_offsets = od.get();
  a.group_perm = pd.get();
  a.dx = dxd.get();
  a.d_weight = dwd.get();
  auto ws = ws_for(workspace_bytes(a));
  VERIFY_OK(launch(a, ws.get(), nullptr));
  VERIFY_LT(rel_l2(dxd.download(), dx), 1e-2, "router dx");
  VERIFY_LT(rel_l2(dwd.download(), dw), 1e-5, "router d_weight");
  return "";
}

std::string verify_grouping(std::int64_t L, std::int64_t N, std::int64_t k, std::int64_t E, double zipf_s) {
  const auto topk = make_routing(L, N, k, E, zipf_s, 7);
  const Grouped g = group_on_host(topk, L, N, k, E);
  DeviceBuf<std::int32_t> td(topk), od(g.offsets.size()), pd(g.perm.size()), id(g.inverse.size());
  GroupingArgs a;
  a.topk_expert = td.get();
  a.offsets = od.get();
  a.perm = pd.get();
  a.inverse = id.get();
  a.num_heads = L;
  a.num_tokens = N;
  a.top_k = k;
  a.num_experts = E;
  auto ws = ws_for(workspace_bytes(a));
  VERIFY_OK(launch(a, ws.get(), nullptr));
  if (od.download() != g.offsets || pd.download() != g.perm || id.download() != g.inverse)
    return "grouping differs from the twin's stable counting sort";
  return "";
}

std::string verify_mlp(std::int64_t L, std::int64_t N, std::int64_t k, std::int64_t E, std::int64_t f, double zipf_s, bool backward,
                       ExpertMlpAlgo algo) {
  const std::int64_t h = 128;
  core::Rng rng(103);
  const auto x = rand_bf16(rng, N * L * h, 1.0);
  const auto wk = rand_bf16(rng, L * E * f * h, 1.0 / std::sqrt(128.0));
  const auto wv = rand_bf16(rng, L * E * f * h, 1.0 / std::sqrt(static_cast<double>(f)));
  const auto topk = make_routing(L, N, k, E, zipf_s, 9);
  const Grouped g = group_on_host(topk, L, N, k, E);
  const auto dy = rand_bf16(rng, g.rows * h, 1.0);
  DeviceBuf<Bf16> xd(x), wkd(wk), wvd(wv), dyd(dy), out1(static_cast<std::size_t>(g.rows * h)), out2(wk.size()), out3(wk.size());
  DeviceBuf<std::int32_t> od(g.offsets), pd(g.perm);
  if (!backward) {
    std::vector<Bf16> y(static_cast<std::size_t>(g.rows * h));
    ExpertMlpForwardArgs a;
    a.x = x.data();
    a.offsets = g.offsets.data();
    a.perm = g.perm.data();
    a.w_k = wk.data();
    a.w_v = wv.data();
    a.y = y.data();
    a.num_heads = L;
    a.num_tokens = N;
    a.top_k = k;
    a.num_experts = E;
    a.head_dim = h;
    a.hidden = f;
    a.rows = g.rows;
    VERIFY_OK(ref::run(a));
    a.x = xd.get();
    a.offsets = od.get();
    a.perm = pd.get();
    a.w_k = wkd.get();
    a.w_v = wvd.get();
    a.y = out1.get();
    a.algo = algo;
    auto ws = ws_for(workspace_bytes(a));
    VERIFY_OK(launch(a, ws.get(), nullptr));
    VERIFY_LT(rel_l2(out1.download(), y), 1e-2, "expert MLP y");
    return "";
  }
  std::vector<Bf16> dx(static_cast<std::size_t>(g.rows * h)), dwk(wk.size()), dwv(wk.size());
  ExpertMlpBackwardArgs a;
  a.x = x.data();
  a.offsets = g.offsets.data();
  a.perm = g.perm.data();
  a.w_k = wk.data();
  a.w_v = wv.data();
  a.dy = dy.data();
  a.dx_grouped = dx.data();
  a.d_w_k = dwk.data();
  a.d_w_v = dwv.data();
  a.num_heads = L;
  a.num_tokens = N;
  a.top_k = k;
  a.num_experts = E;
  a.head_dim = h;
  a.hidden = f;
  a.rows = g.rows;
  VERIFY_OK(ref::run(a));
  a.x = xd.get();
  a.offsets = od.get();
  a.perm = pd.get();
  a.w_k = wkd.get();
  a.w_v = wvd.get();
  a.dy = dyd.get();
  a.dx_grouped = out1.get();
  a.d_w_k = out2.get();
  a.d_w_v = out3.get();
  a.algo = algo;
  auto ws = ws_for(workspace_bytes(a));
  VERIFY_OK(launch(a, ws.get(), nullptr));
  VERIFY_LT(rel_l2(out1.download(), dx), 1e-2, "expert MLP dx");
  VERIFY_LT(rel_l2(out2.download(), dwk), 1e-2, "expert MLP dK");
  VERIFY_LT(rel_l2(out3.download(), dwv), 1e-2, "expert MLP dV");
  return "";
}

std::string verify_combine(std::int64_t L, std::int64_t N, std::int64_t k, std::int64_t width) {
  core::Rng rng(104);
  const std::int64_t rows = L * N * k;
  const auto y = rand_bf16(rng, rows * width, 1.0);
  std::vector<std::int32_t> inverse(static_cast<std::size_t>(rows));
  std::iota(inverse.begin(), inverse.end(), 0);
  for (std::size_t i = inverse.size() - 1; i > 0; --i) std::swap(inverse[i], inverse[rng.below(i + 1)]);
  const auto gate = make_gates(L, N, k, 3);
  const auto dout = rand_bf16(rng, N * L * width, 1.0);
  std::vector<Bf16> out(static_cast<std::size_t>(N * L * width)), dy(y.size());
  std::vector<float> ds(gate.size());
  CombineForwardArgs f{y.data(), inverse.data(), gate.data(), out.data(), L, N, k, width};
  CombineBackwardArgs b{dout.data(), y.data(), inverse.data(), gate.data(), dy.data(), nullptr, ds.data(), L, N, k, width};
  VERIFY_OK(ref::run(f));
  VERIFY_OK(ref::run(b));
  DeviceBuf<Bf16> yd(y), outd(out.size()), doutd(dout), dyd(dy.size());
  DeviceBuf<std::int32_t> invd(inverse);
  DeviceBuf<float> gd(gate), dsd(ds.size());
  f = CombineForwardArgs{yd.get(), invd.get(), gd.get(), outd.get(), L, N, k, width};
  b = CombineBackwardArgs{doutd.get(), yd.get(), invd.get(), gd.get(), dyd.get(), nullptr, dsd.get(), L, N, k, width};
  VERIFY_OK(launch(f, nullptr, nullptr));
  VERIFY_OK(launch(b, nullptr, nullptr));
  VERIFY_LT(rel_l2(outd.download(), out), 1e-2, "combine out");
  VERIFY_LT(rel_l2(dyd.download(), dy), 1e-2, "combine d_y");
  VERIFY_LT(rel_l2(dsd.download(), ds), 1e-4, "combine d_score");
  return "";
}

std::string verify_permute(std::int64_t n, std::int64_t d, std::int64_t k, std::int64_t E, std::int64_t W) {
  core::Rng rng(105);
  const auto x = rand_bf16(rng, n * d, 1.0);
  const auto topk = make_routing(1, n, k, E, 0.0, 11);
  std::vector<Bf16> send(static_cast<std::size_t>(n * k * d));
  std::vector<std::int32_t> off(static_cast<std::size_t>(E + 1)), perm(static_cast<std::size_t>(n * k)), inv(perm.size()),
      ec(static_cast<std::size_t>(E)), rc(static_cast<std::size_t>(W));
  PermuteArgs a{x.data(), topk.data(), send.data(), off.data(), perm.data(), inv.data(), ec.data(), rc.data(), n, d, k, E, W};
  VERIFY_OK(ref::run(a));
  DeviceBuf<Bf16> xd(x), sd(send.size());
  DeviceBuf<std::int32_t> td(topk), od(off.size()), pd(perm.size()), id(inv.size()), ecd(ec.size()), rcd(rc.size());
  a = PermuteArgs{xd.get(), td.get(), sd.get(), od.get(), pd.get(), id.get(), ecd.get(), rcd.get(), n, d, k, E, W};
  auto ws = ws_for(workspace_bytes(a));
  VERIFY_OK(launch(a, ws.get(), nullptr));
  const auto got = sd.download();
  if (std::memcmp(got.data(), send.data(), send.size() * 2) != 0 || od.download() != off || rcd.download() != rc)
    return "permute differs from the twin";
  return "";
}

std::string verify_grouped_mlp(std::int64_t E, std::int64_t rows, std::int64_t d, std::int64_t f, bool backward) {
  core::Rng rng(106);
  const auto routing = make_routing(1, rows, 1, E, 0.0, 13);
  std::vector<std::int32_t> off(static_cast<std::size_t>(E + 1), 0);
  for (auto e : routing) ++off[static_cast<std::size_t>(e + 1)];
  for (std::int64_t e = 0; e < E; ++e) off[static_cast<std::size_t>(e + 1)] += off[static_cast<std::size_t>(e)];
  const auto x = rand_bf16(rng, rows * d, 1.0);
  const auto w1 = rand_bf16(rng, E * f * d, 1.0 / std::sqrt(static_cast<double>(d)));
  const auto w2 = rand_bf16(rng, E * f * d, 1.0 / std::sqrt(static_cast<double>(f)));
  const auto dy = rand_bf16(rng, rows * d, 1.0);
  std::vector<Bf16> pre(static_cast<std::size_t>(rows * f)), act(pre.size()), y(x.size());
  GroupedMlpForwardArgs fa{x.data(), off.data(), w1.data(), w2.data(), pre.data(), act.data(), y.data(), E, rows, d, f};
  VERIFY_OK(ref::run(fa));
  DeviceBuf<Bf16> xd(x), w1d(w1), w2d(w2), dyd(dy), pred(pre), actd(act), o1(x.size()), o2(pre.size()), o3(pre.size()),
      o4(w1.size()), o5(w1.size());
  DeviceBuf<std::int32_t> od(off);
  if (!backward) {
    fa = GroupedMlpForwardArgs{xd.get(), od.get(), w1d.get(), w2d.get(), o2.get(), o3.get(), o1.get(), E, rows, d, f};
    auto ws = ws_for(workspace_bytes(fa));
    VERIFY_OK(launch(fa, ws.get(), nullptr));
    VERIFY_LT(rel_l2(o1.download(), y), 1e-2, "grouped MLP y");
    VERIFY_LT(rel_l2(o3.download(), act), 1e-2, "grouped MLP act");
    return "";
  }
  std::vector<Bf16> dx(x.size()), dw1(w1.size()), dw2(w1.size());
  GroupedMlpBackwardArgs ba{x.data(), off.data(), w1.data(), w2.data(), pre.data(), act.data(), dy.data(), dx.data(), dw1.data(),
                            dw2.data(), E, rows, d, f};
  VERIFY_OK(ref::run(ba));
  ba = GroupedMlpBackwardArgs{xd.get(), od.get(), w1d.get(), w2d.get(), pred.get(), actd.get(), dyd.get(), o1.get(), o4.get(),
                              o5.get(), E, rows, d, f};
  auto ws = ws_for(workspace_bytes(ba));
  VERIFY_OK(launch(ba, ws.get(), nullptr));
  VERIFY_LT(rel_l2(o1.download(), dx), 1e-2, "grouped MLP dx");
  VERIFY_LT(rel_l2(o4.download(), dw1), 1e-2, "grouped MLP dW1");
  VERIFY_LT(rel_l2(o5.download(), dw2), 1e-2, "grouped MLP dW2");
  return "";
}

std::string verify_dense(std::int64_t rows, std::int64_t in, std::int64_t out) {
  core::Rng rng(107);
  const auto x = rand_bf16(rng, rows * in, 1.0);
  const auto w = rand_bf16(rng, out * in, 1.0 / std::sqrt(static_cast<double>(in)));
  const auto dy = rand_bf16(rng, rows * out, 1.0);
  std::vector<Bf16> y(static_cast<std::size_t>(rows * out)), dx(x.size()), dw(w.size());
  DenseForwardArgs f{nullptr, x.data(), w.data(), y.data(), rows, in, out};
  DenseBackwardArgs b{nullptr, x.data(), w.data(), dy.data(), dx.data(), dw.data(), rows, in, out};
  VERIFY_OK(ref::run(f));
  VERIFY_OK(ref::run(b));
  auto ctx = create_dense_context();
  if (!ctx) return ctx.error().message;
  DeviceBuf<Bf16> xd(x), wd(w), dyd(dy), yd(y.size()), dxd(x.size()), dwd(w.size());
  f = DenseForwardArgs{ctx->get(), xd.get(), wd.get(), yd.get(), rows, in, out};
  b = DenseBackwardArgs{ctx->get(), xd.get(), wd.get(), dyd.get(), dxd.get(), dwd.get(), rows, in, out};
  auto ws = ws_for(workspace_bytes(f));
  VERIFY_OK(launch(f, ws.get(), nullptr));
  VERIFY_OK(launch(b, ws.get(), nullptr));
  VERIFY_LT(rel_l2(yd.download(), y), 1e-2, "dense y");
  VERIFY_LT(rel_l2(dxd.download(), dx), 1e-2, "dense dx");
  VERIFY_LT(rel_l2(dwd.download(), dw), 1e-2, "dense dw");
  return "";
}

}  // namespace hpsim::kernels::bench
