// CPU twin of the router (router.h), float64 arithmetic.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "hpsim/kernels/ref.h"

namespace hpsim::kernels::ref {

core::Status run(const RouterForwardArgs& a) {
  HPSIM_TRY(check_shape(a));
  const std::int64_t L = a.num_heads, N = a.num_tokens, D = a.dim, E = a.num_experts, K = a.top_k;
  if (a.expert_counts != nullptr) std::fill(a.expert_counts, a.expert_counts + L * E, 0);
  std::vector<double> score(static_cast<std::size_t>(E));
  std::vector<std::int64_t> order(static_cast<std::size_t>(E));
  for (std::int64_t l = 0; l < L; ++l) {
    for (std::int64_t t = 0; t < N; ++t) {
      const Bf16* x = a.x + (t * L + l) * D;
      for (std::int64_t e = 0; e < E; ++e) {
        const float* w = a.weight + (l * E + e) * D;
        double s = 0;
        for (std::int64_t i = 0; i < D; ++i) s += static_cast<double>(to_float(x[i])) * static_cast<double>(w[i]);
        score[static_cast<std::size_t>(e)] = s;
      }
      auto biased = [&](std::int64_t e) {
        return score[static_cast<std::size_t>(e)] +
               (a.bias != nullptr ? static_cast<double>(a.bias[l * E + e]) : 0.0);
      };
      for (std::int64_t e = 0; e < E; ++e) order[static_cast<std::size_t>(e)] = e;
      std::partial_sort(order.begin(), order.begin() + K, order.end(), [&](std::int64_t p, std::int64_t q) {
        const double bp = biased(p), bq = biased(q);
        return bp > bq || (bp == bq && p < q);
      });
      double max_score = -INFINITY;
      for (std::int64_t j = 0; j < K; ++j) max_score = std::max(max_score, score[static_cast<std::size_t>(order[static_cast<std::size_t>(j)])]);
      double sum = 0;
      for (std::int64_t j = 0; j < K; ++j) sum += std::exp(score[static_cast<std::size_t>(order[static_cast<std::size_t>(j)])] - max_score);
      for (std::int64_t j = 0; j < K; ++j) {
        const std::int64_t e = order[static_cast<std::size_t>(j)];
        const std::int64_t slot = (l * N + t) * K + j;
        a.topk_expert[slot] = static_cast<std::int32_t>(e);
        a.topk_gate[slot] = static_cast<float>(std::exp(score[static_cast<std::size_t>(e)] - max_score) / sum);
        if (a.expert_counts != nullptr) ++a.expert_counts[l * E + e];
      }
    }
  }
  return core::Status::ok();
}

core::Status run(const RouterBackwardArgs& a) {
  HPSIM_TRY(check_shape(a));
  const std::int64_t L = a.num_heads, N = a.num_tokens, D = a.dim, E = a.num_experts, K = a.top_k;
  std::vector<double> dw(static_cast<std::size_t>(L * E * D), 0.0);
  std::vector<double> dx(static_cast<std::size_t>(D));
  for (std::int64_t l = 0; l < L; ++l) {
    for (std::int64_t t = 0; t < N; ++t) {
      const std::int64_t row = (t * L + l) * D;
      for (std::int64_t i = 0; i < D; ++i)
        dx[static_cast<std::size_t>(i)] = a.dx_in != nullptr ? static_cast<double>(to_float(a.dx_in[row + i])) : 0.0;
      for (std::int64_t j = 0; j < K; ++j) {
        const std::int64_t slot = (l * N + t) * K + j;
        const std::int64_t e = a.topk_expert[slot];
        if (e < 0 || e >= E) return core::Error::field("RouterBackwardArgs.topk_expert", "expert index out of range");
        const double ds = a.d_score[slot];
        const float* w = a.weight + (l * E + e) * D;
        double* g = dw.data() + (l * E + e) * D;
        for (std::int64_t i = 0; i < D; ++i) {
          dx[static_cast<std::size_t>(i)] += ds * static_cast<double>(w[i]);
          g[i] += ds * static_cast<double>(to_float(a.x[row + i]));
        }
      }
      for (std::int64_t i = 0; i < D; ++i) a.dx[row + i] = to_bf16(static_cast<float>(dx[static_cast<std::size_t>(i)]));
    }
  }
  for (std::size_t i = 0; i < dw.size(); ++i) a.d_weight[i] = static_cast<float>(dw[i]);
  return core::Status::ok();
}

}  // namespace hpsim::kernels::ref
