// CPU twins of the grouping (grouping.h), the EP permute and the EP regroup (ep_permute.h).
#include <algorithm>
#include <cstddef>
#include <vector>

#include "hpsim/kernels/ref.h"

namespace hpsim::kernels::ref {

core::Status run(const GroupingArgs& a) {
  HPSIM_TRY(check_shape(a));
  const std::int64_t L = a.num_heads, N = a.num_tokens, K = a.top_k, E = a.num_experts;
  std::vector<std::int64_t> count(static_cast<std::size_t>(L * E), 0);
  for (std::int64_t l = 0; l < L; ++l) {
    for (std::int64_t p = 0; p < N * K; ++p) {
      const std::int32_t e = a.topk_expert[l * N * K + p];
      if (e < 0 || e >= E) return core::Error::field("GroupingArgs.topk_expert", "expert index out of range");
      ++count[static_cast<std::size_t>(l * E + e)];
    }
  }
  std::int64_t row = 0;
  std::vector<std::int64_t> next(static_cast<std::size_t>(L * E));
  for (std::int64_t s = 0; s < L * E; ++s) {
    a.offsets[s] = static_cast<std::int32_t>(row);
    next[static_cast<std::size_t>(s)] = row;
    const std::int64_t c = count[static_cast<std::size_t>(s)];
    const std::int64_t padded = (c + a.pad_to - 1) / a.pad_to * a.pad_to;
    for (std::int64_t r = row + c; r < row + padded; ++r) a.perm[r] = -1;
    if (a.counts != nullptr) a.counts[s] = static_cast<std::int32_t>(c);
    row += padded;
  }
  a.offsets[L * E] = static_cast<std::int32_t>(row);
  for (std::int64_t l = 0; l < L; ++l) {
    for (std::int64_t p = 0; p < N * K; ++p) {
      const std::int64_t s = l * E + a.topk_expert[l * N * K + p];
      const std::int64_t r = next[static_cast<std::size_t>(s)]++;
      a.perm[r] = static_cast<std::int32_t>(p);
      a.inverse[l * N * K + p] = static_cast<std::int32_t>(r);
    }
  }
  return core::Status::ok();
}

core::Status run(const PermuteArgs& a) {
  HPSIM_TRY(check_shape(a));
  GroupingArgs g;
  g.topk_expert = a.topk_expert;
  g.offsets = a.offsets;
  g.perm = a.perm;
  g.inverse = a.inverse;
  g.counts = a.expert_counts;
  g.num_heads = 1;
  g.num_tokens = a.num_tokens;
  g.top_k = a.top_k;
  g.num_experts = a.num_experts;
  g.pad_to = 1;
  HPSIM_TRY(run(g));
  const std::int64_t rows = a.num_tokens * a.top_k;
  for (std::int64_t r = 0; r < rows; ++r) {
    const Bf16* src = a.x + (a.perm[r] / a.top_k) * a.dim;
    std::copy(src, src + a.dim, a.send + r * a.dim);
  }
  const std::int64_t per_rank = a.num_experts / a.num_ranks;
  for (std::int64_t w = 0; w < a.num_ranks; ++w) {
    std::int64_t sum = 0;
    for (std::int64_t e = w * per_rank; e < (w + 1) * per_rank; ++e) sum += a.expert_counts[e];
    a.rank_counts[w] = static_cast<std::int32_t>(sum);
  }
  return core::Status::ok();
}

core::Status run(const RegroupArgs& a) {
  HPSIM_TRY(check_shape(a));
  const std::int64_t W = a.num_ranks, El = a.local_experts;
  std::int64_t total = 0;
  for (std::int64_t i = 0; i < W * El; ++i) {
    if (a.counts[i] < 0) return core::Error::field("RegroupArgs.counts", "counts must be >= 0");
    total += a.counts[i];
  }
  if (total != a.rows) {
    return core::Error::field("RegroupArgs.rows", fmt::format("must equal the sum of counts, {} (got {})", total, a.rows));
  }
  // Received rows arrive in (rank, expert) blocks; grouped rows are expert-major, then rank, then
  // arrival order.
  std::vector<std::int64_t> first(static_cast<std::size_t>(W * El), 0);  // first received row of block (p, e)
  for (std::int64_t i = 1; i < W * El; ++i) first[static_cast<std::size_t>(i)] = first[static_cast<std::size_t>(i - 1)] + a.counts[i - 1];
  std::int64_t g = 0;
  for (std::int64_t e = 0; e < El; ++e) {
    a.offsets[e] = static_cast<std::int32_t>(g);
    for (std::int64_t p = 0; p < W; ++p) {
      std::int64_t r = first[static_cast<std::size_t>(p * El + e)];
      for (std::int32_t i = 0; i < a.counts[p * El + e]; ++i, ++g, ++r) {
        a.perm[g] = static_cast<std::int32_t>(r);
        a.inverse[r] = static_cast<std::int32_t>(g);
      }
    }
  }
  a.offsets[El] = static_cast<std::int32_t>(g);
  return core::Status::ok();
}

}  // namespace hpsim::kernels::ref
