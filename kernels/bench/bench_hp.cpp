// hpsim-bench: the HP (Multi-Head LatentMoE) layer's kernels at the paper's shapes. A rank holds
// L = H/W heads of N = W*n sub-tokens; symbols as in DESIGN.md section 2.
#include <memory>
#include <utility>

#include <fmt/format.h>

#include "bench_common.h"
#include "bench_verify.h"
#include "hpsim/kernels/combine.h"
#include "hpsim/kernels/expert_mlp.h"
#include "hpsim/kernels/grouping.h"
#include "hpsim/kernels/router.h"
#include "routing_gen.h"

namespace hpsim::kernels::bench {
namespace {

constexpr std::int64_t kH = 8, kHeadDim = 128, kModelDim = 1024;
constexpr double kSkewZipf = 1.2;  // the skewed routing case: Zipf(1.2) expert popularity

struct Config {
  const char* name;
  std::int64_t E, k, f;
  // The paper's own implementation, whole layer on nvidia-h200-x2, W = 2, n = 16384, measured on 2026-11-28.
  double peer_fwd_ms, peer_fwd_bwd_ms;
};
constexpr Config kConfigs[] = {
    {"2.2B", 384, 4, 256, 9.18, 16.87}, {"4.2B", 768, 4, 256, 9.76, 18.48}, {"4.2B-G", 1536, 8, 128, 16.32, 28.60}};

struct Shape {
  Config cfg;
  std::int64_t W, n;
  bool skewed;
  std::int64_t L() const { return kH / W; }
  std::int64_t N() const { return W * n; }
  std::int64_t pairs() const { return L() * N() * cfg.k; }
  std::string key() const { return fmt::format("{}/W{}/n{}/{}", cfg.name, W, n, skewed ? "skewed" : "uniform"); }
  std::map<std::string, double> counters() const {
    return {{"n", double(n)},       {"W", double(W)},           {"L", double(L())}, {"N", double(N())},
            {"E", double(cfg.E)},   {"k", double(cfg.k)},       {"f", double(cfg.f)}, {"h", double(kHeadDim)},
            {"d", double(kModelDim)}, {"H", double(kH)},        {"skewed", skewed ? 1.0 : 0.0}};
  }
  std::string label(const char* family) const {
    return fmt::format("family={} layer=hp config={} W={} n={} L={} N={} E={} k={} f={} h={} routing={}", family, cfg.name, W, n,
                       L(), N(), cfg.E, cfg.k, cfg.f, kHeadDim, skewed ? "zipf1.2" : "uniform");
  }
};

// Everything one shape's cases need, built once per shape (cases are registered shape by shape).
struct Fixture {
  Shape s;
  std::int64_t rows = 0;
  DeviceBuf<Bf16> x, wk, wv, y_g, out, d_out, dy_g, dx_g, dwk, dwv, dx;
  DeviceBuf<float> rw, bias, gate, d_score, drw, gate_r;
  DeviceBuf<std::int32_t> topk, topk_r, counts, offsets, perm, inverse;
  DeviceBuf<char> ws;

  explicit Fixture(const Shape& shape) : s(shape) {
    const std::int64_t L = s.L(), N = s.N(), E = s.cfg.E, k = s.cfg.k, f = s.cfg.f, h = kHeadDim, P = s.pairs();
    rows = grouping_rows_bound(L, N, k, E, 1);
    x = DeviceBuf<Bf16>(static_cast<std::size_t>(N * L * h));
    wk = DeviceBuf<Bf16>(static_cast<std::size_t>(L * E * f * h));
    wv = DeviceBuf<Bf16>(wk.size());
    dwk = DeviceBuf<Bf16>(wk.size());
    dwv = DeviceBuf<Bf16>(wk.size());
    y_g = DeviceBuf<Bf16>(static_cast<std::size_t>(rows * h));
    dy_g = DeviceBuf<Bf16>(y_g.size());
    dx_g = DeviceBuf<Bf16>(y_g.size());
    out = DeviceBuf<Bf16>(x.size());
    d_out = DeviceBuf<Bf16>(x.size());
    dx = DeviceBuf<Bf16>(x.size());
    rw = DeviceBuf<float>(static_cast<std::size_t>(L * E * h));
    drw = DeviceBuf<float>(rw.size());
    bias = DeviceBuf<float>(static_cast<std::size_t>(L * E));
    d_score = DeviceBuf<float>(static_cast<std::size_t>(P));
    gate_r = DeviceBuf<float>(static_cast<std::size_t>(P));
    topk_r = DeviceBuf<std::int32_t>(static_cast<std::size_t>(P));
    counts = DeviceBuf<std::int32_t>(static_cast<std::size_t>(L * E));
    offsets = DeviceBuf<std::int32_t>(static_cast<std::size_t>(L * E + 1));
    perm = DeviceBuf<std::int32_t>(static_cast<std::size_t>(rows));
    inverse = DeviceBuf<std::int32_t>(static_cast<std::size_t>(P));
    fill_normal(x.get(), static_cast<std::int64_t>(x.size()), 1.0f, 1);
    fill_normal(wk.get(), static_cast<std::int64_t>(wk.size()), 0.088f, 2);
    fill_normal(wv.get(), static_cast<std::int64_t>(wv.size()), 0.0625f, 3);
    fill_normal(d_out.get(), static_cast<std::int64_t>(d_out.size()), 1.0f, 4);
    fill_normal(dy_g.get(), static_cast<std::int64_t>(dy_g.size()), 1.0f, 5);
    fill_normal(rw.get(), static_cast<std::int64_t>(rw.size()), 0.088f, 6);
    fill_normal(bias.get(), static_cast<std::int64_t>(bias.size()), 0.05f, 7);
    fill_normal(d_score.get(), static_cast<std::int64_t>(d_score.size()), 0.1f, 8);
    topk = DeviceBuf<std::int32_t>(make_routing(L, N, k, E, s.skewed ? kSkewZipf : 0.0, 9));
    gate = DeviceBuf<float>(make_gates(L, N, k, 10));
    ws = DeviceBuf<char>(static_cast<std::size_t>(max_workspace()));
    HPSIM_ASSERT(launch(grouping(), ws.get(), nullptr).is_ok(), "grouping of the fixture");
    HPSIM_CUDA_CHECK(cudaDeviceSynchronize());
    segments = segment_counters(offsets.download());
  }
  std::map<std::string, double> segments;  // of the fixture's routing (the layer cases route anew)

  RouterForwardArgs router_fwd(RouterAlgo algo) const {
    RouterForwardArgs a;
    a.x = x.get();
    a.weight = rw.get();
    a.bias = bias.get();
    a.topk_expert = topk_r.get();
    a.topk_gate = gate_r.get();
    a.expert_counts = counts.get();
    a.num_heads = s.L();
    a.num_tokens = s.N();
    a.dim = kHeadDim;
    a.num_experts = s.cfg.E;
    a.top_k = s.cfg.k;
    a.algo = algo;
    return a;
  }
  RouterBackwardArgs router_bwd() const {
    RouterBackwardArgs a;
    a.x = x.get();
    a.weight = rw.get();
    a.topk_expert = topk.get();
    a.d_score = d_score.get();
    a.group_offsets = offsets.get();
    a.group_perm = perm.get();
    a.dx_in = dx.get();
    a.dx = dx.get();
    a.d_weight = drw.get();
    a.num_heads = s.L();
    a.num_tokens = s.N();
    a.dim = kHeadDim;
    a.num_experts = s.cfg.E;
    a.top_k = s.cfg.k;
    a.group_rows = rows;
    return a;
  }
  GroupingArgs grouping() const {
    GroupingArgs a;
    a.topk_expert = topk.get();
    a.offsets = offsets.get();
    a.perm = perm.get();
    a.inverse = inverse.get();
    a.num_heads = s.L();
    a.num_tokens = s.N();
    a.top_k = s.cfg.k;
    a.num_experts = s.cfg.E;
    return a;
  }
  ExpertMlpForwardArgs mlp_fwd() const {
    ExpertMlpForwardArgs a;
    a.x = x.get();
    a.offsets = offsets.get();
    a.perm = perm.get();
    a.w_k = wk.get();
    a.w_v = wv.get();
    a.y = y_g.get();
    a.num_heads = s.L();
    a.num_tokens = s.N();
    a.top_k = s.cfg.k;
    a.num_experts = s.cfg.E;
    a.head_dim = kHeadDim;
    a.hidden = s.cfg.f;
    a.rows = rows;
    return a;
  }
  ExpertMlpBackwardArgs mlp_bwd() const {
    ExpertMlpBackwardArgs a;
    a.x = x.get();
    a.offsets = offsets.get();
    a.perm = perm.get();
    a.w_k = wk.get();
    a.w_v = wv.get();
    a.dy = dy_g.get();
    a.dx_grouped = dx_g.get();
    a.d_w_k = dwk.get();
    a.d_w_v = dwv.get();
    a.num_heads = s.L();
    a.num_tokens = s.N();
    a.top_k = s.cfg.k;
    a.num_experts = s.cfg.E;
    a.head_dim = kHeadDim;
    a.hidden = s.cfg.f;
    a.rows = rows;
    return a;
  }
  CombineForwardArgs combine_fwd() const {
    return CombineForwardArgs{y_g.get(), inverse.get(), gate.get(), out.get(), s.L(), s.N(), s.cfg.k, kHeadDim};
  }
  CombineBackwardArgs combine_bwd() const {
    return CombineBackwardArgs{d_out.get(), y_g.get(), inverse.get(), gate.get(), dy_g.get(), nullptr, d_score.get(),
                               s.L(), s.N(), s.cfg.k, kHeadDim};
  }
  std::int64_t max_workspace() const {
    std::int64_t m = 0;
    for (std::int64_t b : {workspace_bytes(router_fwd(RouterAlgo::kBf16x3)), workspace_bytes(router_fwd(RouterAlgo::kFfma)),
                           workspace_bytes(router_bwd()), workspace_bytes(grouping()),
                           workspace_bytes(mlp_fwd()), workspace_bytes(mlp_bwd())})
      m = std::max(m, b);
    return m;
  }
};

Fixture& fixture(const Shape& s) { return cached_fixture<Fixture>(s); }

// Verified once per (family, E, k, f, routing) at L = 2 heads of 512 sub-tokens.
const std::string& verified(const char* family, const Shape& s) {
  const std::string key = fmt::format("hp/{}/E{}/k{}/f{}/{}", family, s.cfg.E, s.cfg.k, s.cfg.f, s.skewed ? "skewed" : "uniform");
  std::string& result = verification(key);
  if (!options().verify || result == "passed") return result;
  if (!result.empty()) return result;
  const std::int64_t L = 2, N = 512, E = s.cfg.E, k = s.cfg.k, f = s.cfg.f;
  const double zipf = s.skewed ? kSkewZipf : 0.0;
  const std::string fam = family;
  std::string r;
  if (fam == "hp_router_fwd_ffma") r = verify_router_fwd(L, N, kHeadDim, E, k, RouterAlgo::kFfma);
  else if (fam == "hp_router_fwd_bf16x3") r = verify_router_fwd(L, N, kHeadDim, E, k, RouterAlgo::kBf16x3);
  else if (fam == "hp_router_fwd_bf16x3_mmasync")
    r = verify_router_fwd(L, N, kHeadDim, E, k, RouterAlgo::kBf16x3MmaSync);
  else if (fam == "hp_router_bwd") r = verify_router_bwd(L, N, kHeadDim, E, k);
  else if (fam == "hp_grouping") r = verify_grouping(L, N, k, E, zipf);
  else if (fam == "hp_expert_mlp_fwd") r = verify_mlp(L, N, k, E, f, zipf, false, ExpertMlpAlgo::kAuto);
  else if (fam == "hp_expert_mlp_fwd_mmasync") r = verify_mlp(L, N, k, E, f, zipf, false, ExpertMlpAlgo::kMmaSync);
  else if (fam == "hp_expert_mlp_bwd") r = verify_mlp(L, N, k, E, f, zipf, true, ExpertMlpAlgo::kAuto);
  else if (fam == "hp_expert_mlp_bwd_mmasync") r = verify_mlp(L, N, k, E, f, zipf, true, ExpertMlpAlgo::kMmaSync);
  else if (fam == "hp_combine_fwd" || fam == "hp_combine_bwd") r = verify_combine(L, N, k, kHeadDim);
  result = r.empty() ? "passed" : r;
  return result;
}

using LaunchFn = std::function<core::Status(Fixture&, cudaStream_t)>;

void add_case(const Shape& s, const char* family, Work (*work)(const Shape&), LaunchFn fn) {
  register_verified_case<Shape, Fixture>("hp", s, family, work, std::move(fn), verified, fixture);
}

// FLOP and byte counts (fewest bytes: every input read once, every output written once).
double P(const Shape& s) { return static_cast<double>(s.pairs()); }
double LN(const Shape& s) { return static_cast<double>(s.L() * s.N()); }
double LE(const Shape& s) { return static_cast<double>(s.L() * s.cfg.E); }
constexpr double kHd = kHeadDim;

Work router_fwd_work(const Shape& s) {
  return Work{2.0 * LN(s) * kHd * static_cast<double>(s.cfg.E), LN(s) * kHd * 2 + LE(s) * kHd * 4 + LE(s) * 8 + P(s) * 8, 0, Ceiling::kFp32Gemm};
}
Work router_bwd_work(const Shape& s) {
  return Work{4.0 * P(s) * kHd, 3 * LN(s) * kHd * 2 + LE(s) * kHd * 8 + P(s) * 16, 0, Ceiling::kFp32Gemm};
}
Work grouping_work(const Shape& s) { return Work{0, P(s) * 12 + LE(s) * 4, 0, Ceiling::kCopy}; }
Work mlp_fwd_work(const Shape& s) {
  const double f = static_cast<double>(s.cfg.f);
  return Work{4.0 * P(s) * kHd * f, LN(s) * kHd * 2 + 2 * LE(s) * f * kHd * 2 + P(s) * kHd * 2 + P(s) * 4, 0, Ceiling::kBf16Gemm};
}
// Useful FLOPs 8 P h f; executed: the fused wgmma pass recomputes S once (10 P h f), the two
// mma.sync kernels recompute S and dA in each (14 P h f).
Work mlp_bwd_work_executing(const Shape& s, double executed_per_phf) {
  const double f = static_cast<double>(s.cfg.f);
  return Work{8.0 * P(s) * kHd * f, LN(s) * kHd * 2 + 2 * P(s) * kHd * 2 + 4 * LE(s) * f * kHd * 2 + P(s) * 4,
              executed_per_phf * P(s) * kHd * f, Ceiling::kBf16Gemm};
}
Work mlp_bwd_work(const Shape& s) { return mlp_bwd_work_executing(s, 10.0); }
Work mlp_bwd_mmasync_work(const Shape& s) { return mlp_bwd_work_executing(s, 14.0); }
Work combine_fwd_work(const Shape& s) { return Work{2.0 * P(s) * kHd, P(s) * kHd * 2 + LN(s) * kHd * 2 + P(s) * 8, 0, Ceiling::kCopy}; }
Work combine_bwd_work(const Shape& s) {
  return Work{4.0 * P(s) * kHd, LN(s) * kHd * 2 + 2 * P(s) * kHd * 2 + P(s) * 12, 0, Ceiling::kCopy};
}
Work layer_fwd_work(const Shape& s) {
  const Work a = router_fwd_work(s), b = grouping_work(s), c = mlp_fwd_work(s), d = combine_fwd_work(s);
  Work w{a.flops + c.flops + d.flops, a.bytes + b.bytes + c.bytes + d.bytes, 0, Ceiling::kBf16Gemm};
  if (s.W == 2 && s.n == 16384 && !s.skewed) w.peer_ms = s.cfg.peer_fwd_ms;
  return w;
}
Work layer_fwd_bwd_work(const Shape& s) {
  Work f = layer_fwd_work(s);
  const Work a = combine_bwd_work(s), b = mlp_bwd_work(s), c = combine_fwd_work(s), d = router_bwd_work(s);
  Work w{f.flops + a.flops + b.flops + c.flops + d.flops, f.bytes + a.bytes + b.bytes + c.bytes + d.bytes, 0, Ceiling::kBf16Gemm};
  if (s.W == 2 && s.n == 16384 && !s.skewed) w.peer_ms = s.cfg.peer_fwd_bwd_ms;
  return w;
}

// One rank's HP layer compute from the router to the combine (no projections, no communication).
core::Status layer_forward(Fixture& fx, cudaStream_t st) {
  auto r = fx.router_fwd(RouterAlgo::kBf16x3);
  r.topk_expert = fx.topk.get();
  r.topk_gate = fx.gate.get();
  HPSIM_TRY(launch(r, fx.ws.get(), st));
  HPSIM_TRY(launch(fx.grouping(), fx.ws.get(), st));
  HPSIM_TRY(launch(fx.mlp_fwd(), fx.ws.get(), st));
  return launch(fx.combine_fwd(), nullptr, st);
}
core::Status layer_backward(Fixture& fx, cudaStream_t st) {
  HPSIM_TRY(launch(fx.combine_bwd(), nullptr, st));
  HPSIM_TRY(launch(fx.mlp_bwd(), fx.ws.get(), st));
  const CombineForwardArgs ungroup{fx.dx_g.get(), fx.inverse.get(), nullptr, fx.dx.get(), fx.s.L(), fx.s.N(), fx.s.cfg.k, kHeadDim};
  HPSIM_TRY(launch(ungroup, nullptr, st));
  return launch(fx.router_bwd(), fx.ws.get(), st);
}

void register_shape(const Shape& s, bool with_layer) {
  add_case(s, "hp_router_fwd_ffma", router_fwd_work, [](Fixture& fx, cudaStream_t st) { return launch(fx.router_fwd(RouterAlgo::kFfma), fx.ws.get(), st); });
  add_case(s, "hp_router_fwd_bf16x3", router_fwd_work, [](Fixture& fx, cudaStream_t st) { return launch(fx.router_fwd(RouterAlgo::kBf16x3), fx.ws.get(), st); });
  add_case(s, "hp_router_fwd_bf16x3_mmasync", router_fwd_work, [](Fixture& fx, cudaStream_t st) {
    return launch(fx.router_fwd(RouterAlgo::kBf16x3MmaSync), fx.ws.get(), st);
  });
  add_case(s, "hp_router_bwd", router_bwd_work, [](Fixture& fx, cudaStream_t st) { return launch(fx.router_bwd(), fx.ws.get(), st); });
  add_case(s, "hp_grouping", grouping_work, [](Fixture& fx, cudaStream_t st) { return launch(fx.grouping(), fx.ws.get(), st); });
  add_case(s, "hp_expert_mlp_fwd", mlp_fwd_work, [](Fixture& fx, cudaStream_t st) { return launch(fx.mlp_fwd(), fx.ws.get(), st); });
  add_case(s, "hp_expert_mlp_fwd_mmasync", mlp_fwd_work, [](Fixture& fx, cudaStream_t st) {
    auto a = fx.mlp_fwd();
    a.algo = ExpertMlpAlgo::kMmaSync;
    return launch(a, fx.ws.get(), st);
  });
  add_case(s, "hp_expert_mlp_bwd", mlp_bwd_work, [](Fixture& fx, cudaStream_t st) { return launch(fx.mlp_bwd(), fx.ws.get(), st); });
  add_case(s, "hp_expert_mlp_bwd_mmasync", mlp_bwd_mmasync_work, [](Fixture& fx, cudaStream_t st) {
    auto a = fx.mlp_bwd();
    a.algo = ExpertMlpAlgo::kMmaSync;
    return launch(a, fx.ws.get(), st);
  });
  add_case(s, "hp_combine_fwd", combine_fwd_work, [](Fixture& fx, cudaStream_t st) { return launch(fx.combine_fwd(), nullptr, st); });
  add_case(s, "hp_combine_bwd", combine_bwd_work, [](Fixture& fx, cudaStream_t st) { return launch(fx.combine_bwd(), nullptr, st); });
  if (with_layer) {
    // Last for the shape: these overwrite the fixture's routing with the router's own.
    add_case(s, "hp_layer_fwd", layer_fwd_work, layer_forward);
    add_case(s, "hp_layer_fwd_bwd", layer_fwd_bwd_work, [](Fixture& fx, cudaStream_t st) -> core::Status {
      HPSIM_TRY(layer_forward(fx, st));
      return layer_backward(fx, st);
    });
  }
}

}  // namespace

void register_hp_cases() {
  for (const Config& c : kConfigs) register_shape({c, 2, 16384, false}, true);
  register_shape({kConfigs[1], 2, 16384, true}, true);
  if (options().quick) return;
  for (const Config& c : kConfigs)
    for (std::int64_t W : {1, 4, 8}) register_shape({c, W, 16384, false}, false);
  for (std::int64_t n : {8192, 32768, 65536}) register_shape({kConfigs[1], 2, n, false}, true);
}

}  // namespace hpsim::kernels::bench
