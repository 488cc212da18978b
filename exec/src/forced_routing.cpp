#include "hpsim/exec/forced_routing.h"

#include <algorithm>
#include <cmath>

#include "hpsim/core/rng.h"

namespace hpsim::exec {

std::vector<double> expert_weights(const core::WorkloadSpec& workload, std::int64_t num_experts,
                                   std::int64_t num_ranks) {
  HPSIM_ASSERT(num_experts > 0 && num_ranks > 0, "expert_weights: E={} W={}", num_experts, num_ranks);
  std::vector<double> w(static_cast<std::size_t>(num_experts), 1.0);
  if (workload.routing != core::Routing::kZipf) return w;
  // Popularity rank i (0 = hottest) -> expert id. Contiguous: id = i, so rank 0 owns the hottest
  // E/W experts. Strided: popularity i lands on rank i mod W, spreading the hot experts.
  const std::int64_t per_rank = num_experts / num_ranks;
  for (std::int64_t i = 0; i < num_experts; ++i) {
    std::int64_t id = i;
    if (workload.ownership == core::Ownership::kStrided && per_rank * num_ranks == num_experts) {
      id = (i % num_ranks) * per_rank + i / num_ranks;
    }
    w[static_cast<std::size_t>(id)] = 1.0 / std::pow(static_cast<double>(i + 1), workload.zipf_skew);
  }
  return w;
}

ForcedRouting draw_routing(const std::vector<double>& weights, std::int64_t rows, std::int64_t top_k,
                           std::uint64_t seed, std::uint64_t stream) {
  const auto num_experts = static_cast<std::int64_t>(weights.size());
  HPSIM_ASSERT(top_k > 0 && top_k <= num_experts, "draw_routing: k={} E={}", top_k, num_experts);
  std::int64_t nonzero = std::count_if(weights.begin(), weights.end(), [](double x) { return x > 0; });
  HPSIM_ASSERT(nonzero >= top_k, "draw_routing: only {} experts have weight > 0, k={}", nonzero, top_k);
  ForcedRouting out;
  out.num_rows = rows;
  out.top_k = top_k;
  out.num_experts = num_experts;
  out.experts.resize(static_cast<std::size_t>(rows * top_k));
  out.gates.resize(static_cast<std::size_t>(rows * top_k));
  core::Rng rng(seed ^ (0x9E3779B97F4A7C15ULL * (stream + 1)));
  const core::AliasTable table(weights);
  std::vector<float> logits(static_cast<std::size_t>(top_k));
  for (std::int64_t r = 0; r < rows; ++r) {
    std::int32_t* row = &out.experts[static_cast<std::size_t>(r * top_k)];
    // Successive sampling: redraw on a repeat. Cheap while k << E; when the weights are very
    // concentrated, fall back to an explicit draw over the experts not yet taken.
    for (std::int64_t j = 0; j < top_k; ++j) {
      std::int32_t e = -1;
      for (int attempt = 0; attempt < 64 && e < 0; ++attempt) {
        const auto cand = static_cast<std::int32_t>(table.draw(rng));
        if (std::find(row, row + j, cand) == row + j) e = cand;
      }
      if (e < 0) {
        double total = 0;
        for (std::int64_t x = 0; x < num_experts; ++x) {
          if (std::find(row, row + j, static_cast<std::int32_t>(x)) == row + j) total += weights[static_cast<std::size_t>(x)];
        }
        double u = rng.uniform() * total;
        for (std::int64_t x = 0; x < num_experts; ++x) {
          if (std::find(row, row + j, static_cast<std::int32_t>(x)) != row + j) continue;
          u -= weights[static_cast<std::size_t>(x)];
          e = static_cast<std::int32_t>(x);
          if (u <= 0 && weights[static_cast<std::size_t>(x)] > 0) break;
        }
      }
      row[j] = e;
    }
    float max_logit = -1e30f;
    for (std::int64_t j = 0; j < top_k; ++j) {
      logits[static_cast<std::size_t>(j)] = static_cast<float>(rng.normal());
      max_logit = std::max(max_logit, logits[static_cast<std::size_t>(j)]);
    }
    float sum = 0;
    for (std::int64_t j = 0; j < top_k; ++j) {
      logits[static_cast<std::size_t>(j)] = std::exp(logits[static_cast<std::size_t>(j)] - max_logit);
      sum += logits[static_cast<std::size_t>(j)];
    }
    for (std::int64_t j = 0; j < top_k; ++j) {
      out.gates[static_cast<std::size_t>(r * top_k + j)] = logits[static_cast<std::size_t>(j)] / sum;
    }
  }
  return out;
}

}  // namespace hpsim::exec
