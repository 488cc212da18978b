// hpsim-bench: the EP baseline layer's kernels (router d -> E, permute, grouped MLP d -> f -> d,
// unpermute), cuBLAS's grouped GEMM on the same shapes, and the dense projections of the HP layer.
// A rank holds E/W experts and, with balanced routing, receives R = n*k rows. Symbols as in
// DESIGN.md section 2.
#include <memory>
#include <utility>

#include <cublas_v2.h>
#include <fmt/format.h>

#include "bench_common.h"
#include "bench_verify.h"
#include "hpsim/kernels/combine.h"
#include "hpsim/kernels/dense.h"
#include "hpsim/kernels/ep_permute.h"
#include "hpsim/kernels/grouped_mlp.h"
#include "hpsim/kernels/grouping.h"
#include "hpsim/kernels/router.h"
#include "routing_gen.h"

namespace hpsim::kernels::bench {
namespace {

constexpr std::int64_t kD = 1024;
constexpr double kSkewZipf = 1.2;

struct Config {
  const char* name;
  std::int64_t E, k, f;
};
constexpr Config kConfigs[] = {{"2.2B", 384, 4, 256}, {"4.2B", 768, 4, 256}, {"4.2B-G", 1536, 8, 128}};

struct Shape {
  Config cfg;
  std::int64_t W, n;
  bool skewed;  // local rows spread over the local experts with Zipf(1.2) popularity
  std::int64_t local_experts() const { return cfg.E / W; }
  std::int64_t rows() const { return n * cfg.k; }
  std::string key() const { return fmt::format("{}/W{}/n{}/{}", cfg.name, W, n, skewed ? "skewed" : "uniform"); }
  std::map<std::string, double> counters() const {
    return {{"n", double(n)}, {"W", double(W)}, {"E", double(cfg.E)}, {"E_local", double(local_experts())}, {"k", double(cfg.k)},
            {"f", double(cfg.f)}, {"d", double(kD)}, {"rows", double(rows())}, {"skewed", skewed ? 1.0 : 0.0}};
  }
  std::string label(const char* family) const {
    return fmt::format("family={} layer=ep config={} W={} n={} E={} E_local={} k={} f={} d={} rows={} routing={}", family, cfg.name, W,
                       n, cfg.E, local_experts(), cfg.k, cfg.f, kD, rows(), skewed ? "zipf1.2" : "uniform");
  }
};

struct Fixture {
  Shape s;
  std::vector<std::int32_t> local_offsets_host;
  std::map<std::string, double> segments;  // the local experts' rows (segment_counters)
  DeviceBuf<Bf16> x, send, xg, w1, w2, pre, act, yg, dy, dx, dw1, dw2, yback, out, d_out, d_yback, dx_tok;
  DeviceBuf<float> rw, gate, gate_r, d_score, drw;
  DeviceBuf<std::int32_t> topk, topk_r, offsets, perm, inverse, ecount, rcount, local_offsets;
  DeviceBuf<char> ws;
  // cuBLAS grouped GEMM: device pointer arrays for both GEMMs.
  DeviceBuf<const void*> a1, b1, a2, b2;
  DeviceBuf<void*> c1, c2;
  std::vector<int> m1, n1, k1, lda1, ldb1, ldc1, m2, n2, k2, lda2, ldb2, ldc2, group_size;
  std::vector<float> alpha, beta;
  std::vector<cublasOperation_t> op_t, op_n;
  cublasHandle_t handle = nullptr;

  explicit Fixture(const Shape& shape) : s(shape) {
    const std::int64_t n = s.n, E = s.cfg.E, k = s.cfg.k, f = s.cfg.f, El = s.local_experts(), R = s.rows();
    x = DeviceBuf<Bf16>(static_cast<std::size_t>(n * kD));
    send = DeviceBuf<Bf16>(static_cast<std::size_t>(R * kD));
    xg = DeviceBuf<Bf16>(send.size());
    yg = DeviceBuf<Bf16>(send.size());
    dy = DeviceBuf<Bf16>(send.size());
    dx = DeviceBuf<Bf16>(send.size());
    yback = DeviceBuf<Bf16>(send.size());
    d_yback = DeviceBuf<Bf16>(send.size());
    out = DeviceBuf<Bf16>(x.size());
    d_out = DeviceBuf<Bf16>(x.size());
    dx_tok = DeviceBuf<Bf16>(x.size());
    w1 = DeviceBuf<Bf16>(static_cast<std::size_t>(El * f * kD));
    w2 = DeviceBuf<Bf16>(w1.size());
    dw1 = DeviceBuf<Bf16>(w1.size());
    dw2 = DeviceBuf<Bf16>(w1.size());
    pre = DeviceBuf<Bf16>(static_cast<std::size_t>(R * f));
    act = DeviceBuf<Bf16>(pre.size());
    rw = DeviceBuf<float>(static_cast<std::size_t>(E * kD));
    drw = DeviceBuf<float>(rw.size());
    gate_r = DeviceBuf<float>(static_cast<std::size_t>(R));
    d_score = DeviceBuf<float>(static_cast<std::size_t>(R));
    topk_r = DeviceBuf<std::int32_t>(static_cast<std::size_t>(R));
    offsets = DeviceBuf<std::int32_t>(static_cast<std::size_t>(E + 1));
    perm = DeviceBuf<std::int32_t>(static_cast<std::size_t>(R));
    inverse = DeviceBuf<std::int32_t>(static_cast<std::size_t>(R));
    ecount = DeviceBuf<std::int32_t>(static_cast<std::size_t>(E));
    rcount = DeviceBuf<std::int32_t>(static_cast<std::size_t>(s.W));
    fill_normal(x.get(), static_cast<std::int64_t>(x.size()), 1.0f, 21);
    fill_normal(xg.get(), static_cast<std::int64_t>(xg.size()), 1.0f, 22);
    fill_normal(dy.get(), static_cast<std::int64_t>(dy.size()), 1.0f, 23);
    fill_normal(yback.get(), static_cast<std::int64_t>(yback.size()), 1.0f, 24);
    fill_normal(d_out.get(), static_cast<std::int64_t>(d_out.size()), 1.0f, 25);
    fill_normal(w1.get(), static_cast<std::int64_t>(w1.size()), 0.03f, 26);
    fill_normal(w2.get(), static_cast<std::int64_t>(w2.size()), 0.06f, 27);
    fill_normal(rw.get(), static_cast<std::int64_t>(rw.size()), 0.03f, 28);
    fill_normal(d_score.get(), static_cast<std::int64_t>(d_score.size()), 0.1f, 29);
    topk = DeviceBuf<std::int32_t>(make_routing(1, n, k, E, 0.0, 30));
    gate = DeviceBuf<float>(make_gates(1, n, k, 31));
    // Local rows over the local experts.
    const auto local = make_routing(1, R, 1, El, s.skewed ? kSkewZipf : 0.0, 32);
    local_offsets_host.assign(static_cast<std::size_t>(El + 1), 0);
    for (auto e : local) ++local_offsets_host[static_cast<std::size_t>(e + 1)];
    for (std::int64_t e = 0; e < El; ++e) local_offsets_host[static_cast<std::size_t>(e + 1)] += local_offsets_host[static_cast<std::size_t>(e)];
    local_offsets = DeviceBuf<std::int32_t>(local_offsets_host);
    segments = segment_counters(local_offsets_host);
    ws = DeviceBuf<char>(static_cast<std::size_t>(max_workspace()));
    HPSIM_ASSERT(launch(permute(), ws.get(), nullptr).is_ok(), "permute of the fixture");
    HPSIM_ASSERT(launch(mlp_fwd(), ws.get(), nullptr).is_ok(), "grouped MLP of the fixture");
    HPSIM_CUDA_CHECK(cudaDeviceSynchronize());
    setup_cublas();
  }
  ~Fixture() {
    if (handle != nullptr) cublasDestroy(handle);
  }
  Fixture(const Fixture&) = delete;
  Fixture& operator=(const Fixture&) = delete;

  // The layer's router (bf16x3 where it runs at d, else fp32), or the one named.
  RouterForwardArgs router_fwd(RouterAlgo algo = layer_router_algo(kD)) const {
    RouterForwardArgs a;
    a.algo = algo;
    a.x = x.get();
    a.weight = rw.get();
    a.topk_expert = topk_r.get();
    a.topk_gate = gate_r.get();
    a.num_heads = 1;
    a.num_tokens = s.n;
    a.dim = kD;
    a.num_experts = s.cfg.E;
    a.top_k = s.cfg.k;
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
    a.dx_in = dx_tok.get();
    a.dx = dx_tok.get();
    a.d_weight = drw.get();
    a.num_heads = 1;
    a.num_tokens = s.n;
    a.dim = kD;
    a.num_experts = s.cfg.E;
    a.top_k = s.cfg.k;
    a.group_rows = s.rows();
    return a;
  }
  PermuteArgs permute() const {
    return PermuteArgs{x.get(), topk.get(), send.get(), offsets.get(), perm.get(), inverse.get(), ecount.get(), rcount.get(),
                       s.n, kD, s.cfg.k, s.cfg.E, s.W};
  }
  GroupedMlpForwardArgs mlp_fwd() const {
    return GroupedMlpForwardArgs{xg.get(), local_offsets.get(), w1.get(), w2.get(), pre.get(), act.get(), yg.get(),
                                 s.local_experts(), s.rows(), kD, s.cfg.f};
  }
  GroupedMlpBackwardArgs mlp_bwd() const {
    return GroupedMlpBackwardArgs{xg.get(), local_offsets.get(), w1.get(), w2.get(), pre.get(), act.get(), dy.get(), dx.get(),
                                  dw1.get(), dw2.get(), s.local_experts(), s.rows(), kD, s.cfg.f};
  }
  CombineForwardArgs unpermute_fwd() const {
    return CombineForwardArgs{yback.get(), inverse.get(), gate.get(), out.get(), 1, s.n, s.cfg.k, kD};
  }
  CombineBackwardArgs unpermute_bwd() const {
    return CombineBackwardArgs{d_out.get(), yback.get(), inverse.get(), gate.get(), d_yback.get(), nullptr, d_score.get(),
                               1, s.n, s.cfg.k, kD};
  }
  std::int64_t max_workspace() const {
    std::int64_t m = 0;
    for (std::int64_t b :
         {workspace_bytes(router_fwd()), workspace_bytes(router_fwd(RouterAlgo::kFfma)), workspace_bytes(router_bwd()),
          workspace_bytes(permute()), workspace_bytes(mlp_fwd()), workspace_bytes(mlp_bwd())})
      m = std::max(m, b);
    return m;
  }

  void setup_cublas() {
    if (cublasCreate(&handle) != CUBLAS_STATUS_SUCCESS) handle = nullptr;
    const int f = static_cast<int>(s.cfg.f), d = static_cast<int>(kD);
    std::vector<const void*> ha1, hb1, ha2, hb2;
    std::vector<void*> hc1, hc2;
    for (std::int64_t e = 0; e < s.local_experts(); ++e) {
      const int r0 = local_offsets_host[static_cast<std::size_t>(e)], rows = local_offsets_host[static_cast<std::size_t>(e + 1)] - r0;
      if (rows == 0) continue;
      // pre^T (f x rows) = W1_e (d x f col-major, transposed) * X_e^T (d x rows)
      m1.push_back(f), n1.push_back(rows), k1.push_back(d), lda1.push_back(d), ldb1.push_back(d), ldc1.push_back(f);
      ha1.push_back(w1.get() + e * f * d), hb1.push_back(xg.get() + static_cast<std::int64_t>(r0) * d), hc1.push_back(act.get() + static_cast<std::int64_t>(r0) * f);
      // Y^T (d x rows) = W2_e (d x f col-major) * act^T (f x rows)
      m2.push_back(d), n2.push_back(rows), k2.push_back(f), lda2.push_back(d), ldb2.push_back(f), ldc2.push_back(d);
      ha2.push_back(w2.get() + e * f * d), hb2.push_back(act.get() + static_cast<std::int64_t>(r0) * f), hc2.push_back(yg.get() + static_cast<std::int64_t>(r0) * d);
      group_size.push_back(1), alpha.push_back(1.0f), beta.push_back(0.0f), op_t.push_back(CUBLAS_OP_T), op_n.push_back(CUBLAS_OP_N);
    }
    a1 = DeviceBuf<const void*>(ha1);
    b1 = DeviceBuf<const void*>(hb1);
    c1 = DeviceBuf<void*>(hc1);
    a2 = DeviceBuf<const void*>(ha2);
    b2 = DeviceBuf<const void*>(hb2);
    c2 = DeviceBuf<void*>(hc2);
  }

  // The same forward through cuBLAS's grouped GEMM (counts known on the host) and a GELU pass.
  core::Status cublas_forward(cudaStream_t st) {
    if (handle == nullptr) return core::Error{core::ErrorCode::kCuda, "cublasCreate failed"};
    const int groups = static_cast<int>(group_size.size());
    if (groups == 0) return core::Status::ok();
    cublasSetStream(handle, st);
    cublasStatus_t r = cublasGemmGroupedBatchedEx(handle, op_t.data(), op_n.data(), m1.data(), n1.data(), k1.data(), alpha.data(),
                                                  a1.get(), CUDA_R_16BF, lda1.data(), b1.get(), CUDA_R_16BF, ldb1.data(), beta.data(),
                                                  c1.get(), CUDA_R_16BF, ldc1.data(), groups, group_size.data(), CUBLAS_COMPUTE_32F);
    if (r != CUBLAS_STATUS_SUCCESS)
      return core::Error{core::ErrorCode::kCuda, fmt::format("cublasGemmGroupedBatchedEx (up): {}", cublasGetStatusString(r))};
    gelu_inplace(act.get(), s.rows() * s.cfg.f, st);
    r = cublasGemmGroupedBatchedEx(handle, op_n.data(), op_n.data(), m2.data(), n2.data(), k2.data(), alpha.data(), a2.get(),
                                   CUDA_R_16BF, lda2.data(), b2.get(), CUDA_R_16BF, ldb2.data(), beta.data(), c2.get(), CUDA_R_16BF,
                                   ldc2.data(), groups, group_size.data(), CUBLAS_COMPUTE_32F);
    if (r != CUBLAS_STATUS_SUCCESS)
      return core::Error{core::ErrorCode::kCuda, fmt::format("cublasGemmGroupedBatchedEx (down): {}", cublasGetStatusString(r))};
    return core::Status::ok();
  }
};

Fixture& fixture(const Shape& s) { return cached_fixture<Fixture>(s); }

const std::string& verified(const char* family, const Shape& s) {
  const std::string key = fmt::format("ep/{}/E{}/k{}/f{}/W{}", family, s.cfg.E, s.cfg.k, s.cfg.f, s.W);
  std::string& result = verification(key);
  if (!options().verify || !result.empty()) return result;
  const std::string fam = family;
  const std::int64_t n = 384, E = s.cfg.E, k = s.cfg.k, f = s.cfg.f;
  std::string r;
  if (fam == "ep_router_fwd")
    r = verify_router_fwd(1, n, kD, E, k, layer_router_algo(kD));
  else if (fam == "ep_router_fwd_ffma")
    r = verify_router_fwd(1, n, kD, E, k, RouterAlgo::kFfma);
  else if (fam == "ep_router_bwd") r = verify_router_bwd(1, n, kD, E, k);
  else if (fam == "ep_permute") r = verify_permute(n, kD, k, E, s.W);
  else if (fam == "ep_grouped_mlp_fwd" || fam == "ep_grouped_mlp_fwd_cublas") r = verify_grouped_mlp(8, 700, kD, f, false);
  else if (fam == "ep_grouped_mlp_bwd") r = verify_grouped_mlp(8, 700, kD, f, true);
  else if (fam == "ep_unpermute_fwd" || fam == "ep_unpermute_bwd") r = verify_combine(1, n, k, kD);
  result = r.empty() ? "passed" : r;
  return result;
}

using LaunchFn = std::function<core::Status(Fixture&, cudaStream_t)>;

void add_case(const Shape& s, const char* family, Work (*work)(const Shape&), LaunchFn fn) {
  register_verified_case<Shape, Fixture>("ep", s, family, work, std::move(fn), verified, fixture);
}

double N(const Shape& s) { return static_cast<double>(s.n); }
double R(const Shape& s) { return static_cast<double>(s.rows()); }
double Eg(const Shape& s) { return static_cast<double>(s.cfg.E); }
double El(const Shape& s) { return static_cast<double>(s.local_experts()); }
constexpr double kDd = kD;

Work router_fwd_work(const Shape& s) { return Work{2.0 * N(s) * kDd * Eg(s), N(s) * kDd * 2 + Eg(s) * kDd * 4 + R(s) * 8, 0, Ceiling::kFp32Gemm}; }
Work router_bwd_work(const Shape& s) {
  return Work{4.0 * R(s) * kDd, 3 * N(s) * kDd * 2 + 2 * Eg(s) * kDd * 4 + R(s) * 16, 0, Ceiling::kFp32Gemm};
}
Work permute_work(const Shape& s) { return Work{0, N(s) * kDd * 2 + R(s) * kDd * 2 + R(s) * 12, 0, Ceiling::kCopy}; }
Work mlp_fwd_work(const Shape& s) {
  const double f = static_cast<double>(s.cfg.f);
  return Work{4.0 * R(s) * kDd * f, 2 * R(s) * kDd * 2 + 2 * El(s) * f * kDd * 2 + 2 * R(s) * f * 2, 0, Ceiling::kBf16Gemm};
}
Work mlp_bwd_work(const Shape& s) {
  const double f = static_cast<double>(s.cfg.f);
  return Work{8.0 * R(s) * kDd * f, 3 * R(s) * kDd * 2 + 2 * R(s) * f * 2 + 4 * El(s) * f * kDd * 2, 0, Ceiling::kBf16Gemm};
}
Work unpermute_fwd_work(const Shape& s) { return Work{2.0 * R(s) * kDd, R(s) * kDd * 2 + N(s) * kDd * 2 + R(s) * 8, 0, Ceiling::kCopy}; }
Work unpermute_bwd_work(const Shape& s) {
  return Work{4.0 * R(s) * kDd, N(s) * kDd * 2 + 2 * R(s) * kDd * 2 + R(s) * 12, 0, Ceiling::kCopy};
}

void register_shape(const Shape& s) {
  add_case(s, "ep_router_fwd", router_fwd_work, [](Fixture& fx, cudaStream_t st) { return launch(fx.router_fwd(), fx.ws.get(), st); });
  add_case(s, "ep_router_fwd_ffma", router_fwd_work,
           [](Fixture& fx, cudaStream_t st) { return launch(fx.router_fwd(RouterAlgo::kFfma), fx.ws.get(), st); });
  add_case(s, "ep_router_bwd", router_bwd_work, [](Fixture& fx, cudaStream_t st) { return launch(fx.router_bwd(), fx.ws.get(), st); });
  add_case(s, "ep_permute", permute_work, [](Fixture& fx, cudaStream_t st) { return launch(fx.permute(), fx.ws.get(), st); });
  add_case(s, "ep_grouped_mlp_fwd", mlp_fwd_work, [](Fixture& fx, cudaStream_t st) { return launch(fx.mlp_fwd(), fx.ws.get(), st); });
  add_case(s, "ep_grouped_mlp_fwd_cublas", mlp_fwd_work, [](Fixture& fx, cudaStream_t st) { return fx.cublas_forward(st); });
  add_case(s, "ep_grouped_mlp_bwd", mlp_bwd_work, [](Fixture& fx, cudaStream_t st) { return launch(fx.mlp_bwd(), fx.ws.get(), st); });
  add_case(s, "ep_unpermute_fwd", unpermute_fwd_work, [](Fixture& fx, cudaStream_t st) { return launch(fx.unpermute_fwd(), nullptr, st); });
  add_case(s, "ep_unpermute_bwd", unpermute_bwd_work, [](Fixture& fx, cudaStream_t st) { return launch(fx.unpermute_bwd(), nullptr, st); });
}

}  // namespace

void register_ep_cases() {
  for (const Config& c : kConfigs) register_shape({c, 2, 16384, false});
  register_shape({kConfigs[1], 2, 16384, true});
  if (options().quick) return;
  for (const Config& c : kConfigs)
    for (std::int64_t W : {1, 8}) register_shape({c, W, 16384, false});
  for (std::int64_t n : {8192, 32768, 65536}) register_shape({kConfigs[1], 2, n, false});
}

// W_in (d -> H*h) and W_out (H*h -> d) of the HP layer for n tokens of one rank.
void register_dense_cases() {
  for (std::int64_t n : {16384, 65536}) {
    if (options().quick && n != 16384) continue;
    for (const bool w_in : {true, false}) {
      for (const bool backward : {false, true}) {
        const std::int64_t in = w_in ? kD : 8 * 128, out_f = w_in ? 8 * 128 : kD;
        const char* family = w_in ? (backward ? "hp_w_in_bwd" : "hp_w_in_fwd") : (backward ? "hp_w_out_bwd" : "hp_w_out_fwd");
        const std::string name = fmt::format("dense/n{}/{}", n, family);
        benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& state) {
          std::string& v = verification(fmt::format("dense/{}", family));
          if (options().verify && v.empty()) v = verify_dense(333, in, out_f).empty() ? "passed" : verify_dense(333, in, out_f);
          if (options().verify && v != "passed") {
            state.SkipWithError(("verification against the CPU twin failed: " + v).c_str());
            for (auto _ : state) {
            }
            return;
          }
          auto ctx = create_dense_context();
          if (!ctx) {
            state.SkipWithError(ctx.error().message.c_str());
            for (auto _ : state) {
            }
            return;
          }
          DeviceBuf<Bf16> x(static_cast<std::size_t>(n * in)), w(static_cast<std::size_t>(out_f * in)), y(static_cast<std::size_t>(n * out_f)),
              dx(x.size()), dw(w.size());
          DeviceBuf<char> ws(static_cast<std::size_t>(workspace_bytes(DenseForwardArgs{})));
          fill_normal(x.get(), static_cast<std::int64_t>(x.size()), 1.0f, 41);
          fill_normal(w.get(), static_cast<std::int64_t>(w.size()), 0.03f, 42);
          fill_normal(y.get(), static_cast<std::int64_t>(y.size()), 1.0f, 43);
          const double flops = 2.0 * static_cast<double>(n) * static_cast<double>(in) * static_cast<double>(out_f) * (backward ? 2 : 1);
          const double bytes = 2.0 * (static_cast<double>(n * in) + static_cast<double>(out_f * in) + static_cast<double>(n * out_f)) *
                               (backward ? 1.5 : 1.0);
          Work work{flops, bytes, 0, Ceiling::kBf16Gemm};
          const std::map<std::string, double> shape{{"n", double(n)}, {"in", double(in)}, {"out", double(out_f)}};
          time_case(state, [&](cudaStream_t st) -> core::Status {
            if (!backward) return launch(DenseForwardArgs{ctx->get(), x.get(), w.get(), y.get(), n, in, out_f}, ws.get(), st);
            return launch(DenseBackwardArgs{ctx->get(), x.get(), w.get(), y.get(), dx.get(), dw.get(), n, in, out_f}, ws.get(), st);
          }, work, shape, fmt::format("family={} layer=hp n={} in={} out={}", family, n, in, out_f));
        })->UseManualTime()->Iterations(options().iterations)->Unit(benchmark::kMicrosecond);
      }
    }
  }
}

}  // namespace hpsim::kernels::bench
