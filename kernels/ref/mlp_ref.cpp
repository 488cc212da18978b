// CPU twins of the HP expert MLP (expert_mlp.h) and the EP grouped MLP (grouped_mlp.h), float64.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "hpsim/kernels/ref.h"

namespace hpsim::kernels::ref {
namespace {

constexpr double kSqrt2OverPi = 0.7978845608028654;
constexpr double kGeluCubic = 0.044715;

using Vec = std::vector<double>;

double at(const Bf16* p, std::int64_t i) { return static_cast<double>(to_float(p[i])); }

// One row of the MLP: s = K x, a = gelu(s), y = V a with K [f][h] and V^T stored [h][f].
void mlp_row_forward(const Vec& x, const Bf16* wk, const Bf16* vt, std::int64_t h, std::int64_t f, Vec& s, Vec& y) {
  s.assign(static_cast<std::size_t>(f), 0.0);
  y.assign(static_cast<std::size_t>(h), 0.0);
  for (std::int64_t c = 0; c < f; ++c) {
    double acc = 0;
    for (std::int64_t i = 0; i < h; ++i) acc += x[static_cast<std::size_t>(i)] * at(wk, c * h + i);
    s[static_cast<std::size_t>(c)] = acc;
    const double act = gelu(acc);
    for (std::int64_t i = 0; i < h; ++i) y[static_cast<std::size_t>(i)] += act * at(vt, i * f + c);
  }
}

}  // namespace

double gelu(double s) { return 0.5 * s * (1.0 + std::tanh(kSqrt2OverPi * (s + kGeluCubic * s * s * s))); }

double gelu_grad(double s) {
  const double u = kSqrt2OverPi * (s + kGeluCubic * s * s * s);
  const double t = std::tanh(u);
  return 0.5 * (1.0 + t) + 0.5 * s * (1.0 - t * t) * kSqrt2OverPi * (1.0 + 3.0 * kGeluCubic * s * s);
}

core::Status run(const ExpertMlpForwardArgs& a) {
  HPSIM_TRY(check_shape(a));
  const std::int64_t L = a.num_heads, E = a.num_experts, h = a.head_dim, f = a.hidden, K = a.top_k;
  Vec x(static_cast<std::size_t>(h)), s, y;
  for (std::int64_t seg = 0; seg < L * E; ++seg) {
    const std::int64_t l = seg / E;
    const Bf16* wk = a.w_k + seg * f * h;
    const Bf16* wv = a.w_v + seg * f * h;
    for (std::int64_t r = a.offsets[seg]; r < a.offsets[seg + 1]; ++r) {
      Bf16* out = a.y + r * h;
      if (a.perm[r] < 0) {
        std::fill(out, out + h, Bf16{});
        continue;
      }
      const std::int64_t t = a.perm[r] / K;
      for (std::int64_t i = 0; i < h; ++i) x[static_cast<std::size_t>(i)] = at(a.x, (t * L + l) * h + i);
      mlp_row_forward(x, wk, wv, h, f, s, y);
      for (std::int64_t i = 0; i < h; ++i) out[i] = to_bf16(static_cast<float>(y[static_cast<std::size_t>(i)]));
    }
  }
  return core::Status::ok();
}

core::Status run(const ExpertMlpBackwardArgs& a) {
  HPSIM_TRY(check_shape(a));
  const std::int64_t L = a.num_heads, E = a.num_experts, h = a.head_dim, f = a.hidden, K = a.top_k;
  Vec x(static_cast<std::size_t>(h)), dy(static_cast<std::size_t>(h)), s, y, ds(static_cast<std::size_t>(f)),
      dx(static_cast<std::size_t>(h));
  Vec dwk(static_cast<std::size_t>(f * h)), dwv(static_cast<std::size_t>(f * h));
  for (std::int64_t seg = 0; seg < L * E; ++seg) {
    const std::int64_t l = seg / E;
    const Bf16* wk = a.w_k + seg * f * h;
    const Bf16* wv = a.w_v + seg * f * h;
    std::fill(dwk.begin(), dwk.end(), 0.0);
    std::fill(dwv.begin(), dwv.end(), 0.0);
    for (std::int64_t r = a.offsets[seg]; r < a.offsets[seg + 1]; ++r) {
      Bf16* dx_out = a.dx_grouped + r * h;
      if (a.perm[r] < 0) {
        std::fill(dx_out, dx_out + h, Bf16{});
        continue;
      }
      const std::int64_t t = a.perm[r] / K;
      for (std::int64_t i = 0; i < h; ++i) {
        x[static_cast<std::size_t>(i)] = at(a.x, (t * L + l) * h + i);
        dy[static_cast<std::size_t>(i)] = at(a.dy, r * h + i);
      }
      mlp_row_forward(x, wk, wv, h, f, s, y);
      std::fill(dx.begin(), dx.end(), 0.0);
      for (std::int64_t c = 0; c < f; ++c) {
        const double sc = s[static_cast<std::size_t>(c)];
        const double act = gelu(sc);
        double da = 0;
        for (std::int64_t i = 0; i < h; ++i) {
          da += dy[static_cast<std::size_t>(i)] * at(wv, i * f + c);
          dwv[static_cast<std::size_t>(i * f + c)] += act * dy[static_cast<std::size_t>(i)];
        }
        const double dsc = da * gelu_grad(sc);
        for (std::int64_t i = 0; i < h; ++i) {
          dx[static_cast<std::size_t>(i)] += dsc * at(wk, c * h + i);
          dwk[static_cast<std::size_t>(c * h + i)] += dsc * x[static_cast<std::size_t>(i)];
        }
      }
      for (std::int64_t i = 0; i < h; ++i) dx_out[i] = to_bf16(static_cast<float>(dx[static_cast<std::size_t>(i)]));
    }
    for (std::int64_t i = 0; i < f * h; ++i) {
      a.d_w_k[seg * f * h + i] = to_bf16(static_cast<float>(dwk[static_cast<std::size_t>(i)]));
      a.d_w_v[seg * f * h + i] = to_bf16(static_cast<float>(dwv[static_cast<std::size_t>(i)]));
    }
  }
  return core::Status::ok();
}

core::Status run(const GroupedMlpForwardArgs& a) {
  HPSIM_TRY(check_shape(a));
  const std::int64_t d = a.dim, f = a.hidden;
  Vec y(static_cast<std::size_t>(d));
  for (std::int64_t e = 0; e < a.num_experts; ++e) {
    const Bf16* w1 = a.w1 + e * f * d;
    const Bf16* w2 = a.w2 + e * f * d;
    for (std::int64_t r = a.offsets[e]; r < a.offsets[e + 1]; ++r) {
      std::fill(y.begin(), y.end(), 0.0);
      for (std::int64_t c = 0; c < f; ++c) {
        double s = 0;
        for (std::int64_t i = 0; i < d; ++i) s += at(a.x, r * d + i) * at(w1, c * d + i);
        const float pre = static_cast<float>(s);
        a.pre_act[r * f + c] = to_bf16(pre);
        const Bf16 act = to_bf16(static_cast<float>(gelu(static_cast<double>(pre))));
        a.act[r * f + c] = act;
        const double act_d = static_cast<double>(to_float(act));
        for (std::int64_t i = 0; i < d; ++i) y[static_cast<std::size_t>(i)] += act_d * at(w2, c * d + i);
      }
      for (std::int64_t i = 0; i < d; ++i) a.y[r * d + i] = to_bf16(static_cast<float>(y[static_cast<std::size_t>(i)]));
    }
  }
  return core::Status::ok();
}

core::Status run(const GroupedMlpBackwardArgs& a) {
  HPSIM_TRY(check_shape(a));
  const std::int64_t d = a.dim, f = a.hidden;
  Vec dx(static_cast<std::size_t>(d)), dw1(static_cast<std::size_t>(f * d)), dw2(static_cast<std::size_t>(f * d));
  for (std::int64_t e = 0; e < a.num_experts; ++e) {
    const Bf16* w1 = a.w1 + e * f * d;
    const Bf16* w2 = a.w2 + e * f * d;
    std::fill(dw1.begin(), dw1.end(), 0.0);
    std::fill(dw2.begin(), dw2.end(), 0.0);
    for (std::int64_t r = a.offsets[e]; r < a.offsets[e + 1]; ++r) {
      std::fill(dx.begin(), dx.end(), 0.0);
      for (std::int64_t c = 0; c < f; ++c) {
        double dact = 0;
        for (std::int64_t i = 0; i < d; ++i) dact += at(a.dy, r * d + i) * at(w2, c * d + i);
        const double dpre = dact * gelu_grad(at(a.pre_act, r * f + c));
        const double act = at(a.act, r * f + c);
        for (std::int64_t i = 0; i < d; ++i) {
          dx[static_cast<std::size_t>(i)] += dpre * at(w1, c * d + i);
          dw1[static_cast<std::size_t>(c * d + i)] += dpre * at(a.x, r * d + i);
          dw2[static_cast<std::size_t>(c * d + i)] += act * at(a.dy, r * d + i);
        }
      }
      for (std::int64_t i = 0; i < d; ++i) a.dx[r * d + i] = to_bf16(static_cast<float>(dx[static_cast<std::size_t>(i)]));
    }
    for (std::int64_t i = 0; i < f * d; ++i) {
      a.d_w1[e * f * d + i] = to_bf16(static_cast<float>(dw1[static_cast<std::size_t>(i)]));
      a.d_w2[e * f * d + i] = to_bf16(static_cast<float>(dw2[static_cast<std::size_t>(i)]));
    }
  }
  return core::Status::ok();
}

}  // namespace hpsim::kernels::ref
