// CPU twins of the combine (combine.h) and the dense projections (dense.h), float64.
#include <algorithm>
#include <cstddef>
#include <vector>

#include "hpsim/kernels/ref.h"

namespace hpsim::kernels::ref {
namespace {
double at(const Bf16* p, std::int64_t i) { return static_cast<double>(to_float(p[i])); }
}  // namespace

core::Status run(const CombineForwardArgs& a) {
  HPSIM_TRY(check_shape(a));
  const std::int64_t L = a.num_heads, N = a.num_tokens, K = a.top_k, W = a.width;
  std::vector<double> acc(static_cast<std::size_t>(W));
  for (std::int64_t t = 0; t < N; ++t) {
    for (std::int64_t l = 0; l < L; ++l) {
      std::fill(acc.begin(), acc.end(), 0.0);
      for (std::int64_t j = 0; j < K; ++j) {
        const std::int64_t slot = (l * N + t) * K + j;
        const double g = a.gate != nullptr ? static_cast<double>(a.gate[slot]) : 1.0;
        const std::int64_t row = a.inverse[slot];
        for (std::int64_t i = 0; i < W; ++i) acc[static_cast<std::size_t>(i)] += g * at(a.y, row * W + i);
      }
      for (std::int64_t i = 0; i < W; ++i) a.out[(t * L + l) * W + i] = to_bf16(static_cast<float>(acc[static_cast<std::size_t>(i)]));
    }
  }
  return core::Status::ok();
}

core::Status run(const CombineBackwardArgs& a) {
  HPSIM_TRY(check_shape(a));
  const std::int64_t L = a.num_heads, N = a.num_tokens, K = a.top_k, W = a.width;
  std::vector<double> dg(static_cast<std::size_t>(K));
  for (std::int64_t t = 0; t < N; ++t) {
    for (std::int64_t l = 0; l < L; ++l) {
      const Bf16* dout = a.d_out + (t * L + l) * W;
      double weighted = 0;
      for (std::int64_t j = 0; j < K; ++j) {
        const std::int64_t slot = (l * N + t) * K + j;
        const double g = a.gate[slot];
        const std::int64_t row = a.inverse[slot];
        double dot = 0;
        for (std::int64_t i = 0; i < W; ++i) {
          dot += at(dout, i) * at(a.y, row * W + i);
          a.d_y[row * W + i] = to_bf16(static_cast<float>(g * at(dout, i)));
        }
        dg[static_cast<std::size_t>(j)] = dot;
        weighted += g * dot;
      }
      for (std::int64_t j = 0; j < K; ++j) {
        const std::int64_t slot = (l * N + t) * K + j;
        if (a.d_gate != nullptr) a.d_gate[slot] = static_cast<float>(dg[static_cast<std::size_t>(j)]);
        if (a.d_score != nullptr)
          a.d_score[slot] = static_cast<float>(static_cast<double>(a.gate[slot]) * (dg[static_cast<std::size_t>(j)] - weighted));
      }
    }
  }
  return core::Status::ok();
}

core::Status run(const DenseForwardArgs& a) {
  HPSIM_TRY(check_shape(a));
  for (std::int64_t r = 0; r < a.rows; ++r) {
    for (std::int64_t o = 0; o < a.out_features; ++o) {
      double acc = 0;
      for (std::int64_t i = 0; i < a.in_features; ++i) acc += at(a.x, r * a.in_features + i) * at(a.w, o * a.in_features + i);
      a.y[r * a.out_features + o] = to_bf16(static_cast<float>(acc));
    }
  }
  return core::Status::ok();
}

core::Status run(const DenseBackwardArgs& a) {
  HPSIM_TRY(check_shape(a));
  const std::int64_t R = a.rows, I = a.in_features, O = a.out_features;
  if (a.dx != nullptr) {
    for (std::int64_t r = 0; r < R; ++r) {
      for (std::int64_t i = 0; i < I; ++i) {
        double acc = 0;
        for (std::int64_t o = 0; o < O; ++o) acc += at(a.dy, r * O + o) * at(a.w, o * I + i);
        a.dx[r * I + i] = to_bf16(static_cast<float>(acc));
      }
    }
  }
  if (a.dw != nullptr) {
    std::vector<double> acc(static_cast<std::size_t>(O * I), 0.0);
    for (std::int64_t r = 0; r < R; ++r)
      for (std::int64_t o = 0; o < O; ++o) {
        const double g = at(a.dy, r * O + o);
        for (std::int64_t i = 0; i < I; ++i) acc[static_cast<std::size_t>(o * I + i)] += g * at(a.x, r * I + i);
      }
    for (std::int64_t i = 0; i < O * I; ++i) a.dw[i] = to_bf16(static_cast<float>(acc[static_cast<std::size_t>(i)]));
  }
  return core::Status::ok();
}

}  // namespace hpsim::kernels::ref
