// Shape rules (check_shape: what the maths needs; can_implement: what the GPU kernels add) and
// workspace sizes of every kernel family. Plain C++: part of hpsim_kernels_ref, so the rules are
// tested on every machine.
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "hpsim/kernels/ref.h"
#include "kernel_limits.h"

namespace hpsim::kernels {
namespace {

using limits::ceil_div;
using limits::kAlign;
using limits::round_up;

constexpr std::int64_t kInt32Max = std::numeric_limits<std::int32_t>::max();

// Fails with "<Struct>.<field>: <rule>" (kInvalidArgument).
#define HPSIM_RULE(cond, strct, fld, ...)                                                           \
  do {                                                                                              \
    if (!(cond)) return core::Error::field(strct "." fld, fmt::format(__VA_ARGS__));                 \
  } while (0)

// Fails with kUnsupported: a valid shape this GPU kernel does not do.
#define HPSIM_KERNEL_LIMIT(cond, strct, fld, ...)                                                   \
  do {                                                                                              \
    if (!(cond))                                                                                    \
      return core::Error{core::ErrorCode::kUnsupported,                                             \
                         fmt::format("{}: {}", strct "." fld, fmt::format(__VA_ARGS__))};            \
  } while (0)

#define HPSIM_NOT_NULL(ptr, strct, fld) HPSIM_RULE((ptr) != nullptr, strct, fld, "must not be null")

core::Status check_routing(const char* strct, std::int64_t heads, std::int64_t tokens, std::int64_t experts,
                           std::int64_t top_k) {
  if (heads < 1) return core::Error::field(fmt::format("{}.num_heads", strct), fmt::format("must be >= 1 (got {})", heads));
  if (tokens < 0) return core::Error::field(fmt::format("{}.num_tokens", strct), fmt::format("must be >= 0 (got {})", tokens));
  if (experts < 1) return core::Error::field(fmt::format("{}.num_experts", strct), fmt::format("must be >= 1 (got {})", experts));
  if (top_k < 1 || top_k > experts)
    return core::Error::field(fmt::format("{}.top_k", strct), fmt::format("must be in [1, num_experts = {}] (got {})", experts, top_k));
  if (heads * tokens * top_k > kInt32Max)
    return core::Error::field(fmt::format("{}.num_tokens", strct),
                              fmt::format("num_heads * num_tokens * top_k must fit in int32 (got {})", heads * tokens * top_k));
  return core::Status::ok();
}

core::Status check_top_k_limit(const char* strct, std::int64_t top_k) {
  if (top_k > kMaxTopK)
    return core::Error{core::ErrorCode::kUnsupported,
                       fmt::format("{}.top_k: the GPU kernels take k <= {} (got {})", strct, kMaxTopK, top_k)};
  return core::Status::ok();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Router
core::Status check_shape(const RouterForwardArgs& a) {
  HPSIM_TRY(check_routing("RouterForwardArgs", a.num_heads, a.num_tokens, a.num_experts, a.top_k));
  HPSIM_RULE(a.dim >= 1, "RouterForwardArgs", "dim", "must be >= 1 (got {})", a.dim);
  HPSIM_NOT_NULL(a.x, "RouterForwardArgs", "x");
  HPSIM_NOT_NULL(a.weight, "RouterForwardArgs", "weight");
  HPSIM_NOT_NULL(a.topk_expert, "RouterForwardArgs", "topk_expert");
  HPSIM_NOT_NULL(a.topk_gate, "RouterForwardArgs", "topk_gate");
  return core::Status::ok();
}

bool router_bf16x3_takes_dim(std::int64_t dim) { return dim % 64 == 0 && dim >= 64 && dim <= 256; }

core::Status can_implement(const RouterForwardArgs& a) {
  HPSIM_TRY(check_shape(a));
  HPSIM_TRY(check_top_k_limit("RouterForwardArgs", a.top_k));
  HPSIM_KERNEL_LIMIT(a.dim % 32 == 0, "RouterForwardArgs", "dim", "must be a multiple of 32 (got {})", a.dim);
  HPSIM_KERNEL_LIMIT(a.num_heads <= 65535, "RouterForwardArgs", "num_heads", "must be <= 65535 (got {})", a.num_heads);
  if (a.algo == RouterAlgo::kBf16x3MmaSync)
    HPSIM_KERNEL_LIMIT(router_bf16x3_takes_dim(a.dim), "RouterForwardArgs", "dim",
                       "the bf16x3 algorithm on mma.sync takes dim in {{64, 128, 192, 256}} (got {})", a.dim);
  if (a.algo == RouterAlgo::kBf16x3)  // dim > 256: the wgmma kernel only (launch says so elsewhere)
    HPSIM_KERNEL_LIMIT(a.dim % 64 == 0, "RouterForwardArgs", "dim",
                       "the bf16x3 algorithm takes a multiple of 64 (got {})", a.dim);
  return core::Status::ok();
}

std::int64_t workspace_bytes(const RouterForwardArgs& a) {
  if (a.algo == RouterAlgo::kBf16x3MmaSync) return limits::router_bf16x3_parts_bytes(a.num_heads, a.num_experts, a.dim);
  if (a.algo == RouterAlgo::kBf16x3)  // the wgmma kernel's split candidates counted on every device
    return limits::router_bf16x3_parts_bytes(a.num_heads, a.num_experts, a.dim) +
           limits::router_wgmma_cand_bytes(a.num_heads, a.num_tokens, a.num_experts, a.top_k);
  // FFMA with split experts: every split's top-k (value, expert) per token.
  return limits::router_split_lists_bytes(a.num_heads, a.num_tokens,
                                          limits::router_splits(a.num_heads, a.num_tokens, a.num_experts, a.top_k),
                                          a.top_k);
}

core::Status check_shape(const RouterBackwardArgs& a) {
  HPSIM_TRY(check_routing("RouterBackwardArgs", a.num_heads, a.num_tokens, a.num_experts, a.top_k));
  HPSIM_RULE(a.dim >= 1, "RouterBackwardArgs", "dim", "must be >= 1 (got {})", a.dim);
  HPSIM_NOT_NULL(a.x, "RouterBackwardArgs", "x");
  HPSIM_NOT_NULL(a.weight, "RouterBackwardArgs", "weight");
  HPSIM_NOT_NULL(a.topk_expert, "RouterBackwardArgs", "topk_expert");
  HPSIM_NOT_NULL(a.d_score, "RouterBackwardArgs", "d_score");
  HPSIM_NOT_NULL(a.dx, "RouterBackwardArgs", "dx");
  HPSIM_NOT_NULL(a.d_weight, "RouterBackwardArgs", "d_weight");
  return core::Status::ok();
}

core::Status can_implement(const RouterBackwardArgs& a) {
  HPSIM_TRY(check_shape(a));
  HPSIM_TRY(check_top_k_limit("RouterBackwardArgs", a.top_k));
  HPSIM_KERNEL_LIMIT(a.dim % 128 == 0, "RouterBackwardArgs", "dim", "must be a multiple of 128 (got {})", a.dim);
  HPSIM_RULE(a.group_offsets != nullptr, "RouterBackwardArgs", "group_offsets", "the GPU kernel needs the grouping");
  HPSIM_RULE(a.group_perm != nullptr, "RouterBackwardArgs", "group_perm", "the GPU kernel needs the grouping");
  HPSIM_RULE(a.group_rows >= a.num_heads * a.num_tokens * a.top_k, "RouterBackwardArgs", "group_rows",
             "must be >= num_heads * num_tokens * top_k = {} (got {})", a.num_heads * a.num_tokens * a.top_k,
             a.group_rows);
  HPSIM_RULE(a.group_rows <= kInt32Max, "RouterBackwardArgs", "group_rows", "must fit in int32 (got {})", a.group_rows);
  return core::Status::ok();
}

std::int64_t workspace_bytes(const RouterBackwardArgs& a) {
  const std::int64_t segments = a.num_heads * a.num_experts;
  return limits::schedule_bytes(a.group_rows, segments, limits::kRouterBwdRows) +
         round_up(limits::schedule_max_slots(a.group_rows, limits::kRouterBwdRows) * a.dim * 4, kAlign);
}

// ---------------------------------------------------------------------------------------------
// Grouping
std::int64_t grouping_rows_bound(std::int64_t heads, std::int64_t tokens, std::int64_t top_k, std::int64_t experts,
                                 std::int64_t pad_to) {
  return heads * (tokens * top_k + experts * (pad_to - 1));
}

std::int64_t grouping_rows_bound(const GroupingArgs& a) {
  return grouping_rows_bound(a.num_heads, a.num_tokens, a.top_k, a.num_experts, a.pad_to);
}

core::Status check_shape(const GroupingArgs& a) {
  HPSIM_TRY(check_routing("GroupingArgs", a.num_heads, a.num_tokens, a.num_experts, a.top_k));
  HPSIM_RULE(a.pad_to >= 1, "GroupingArgs", "pad_to", "must be >= 1 (got {})", a.pad_to);
  HPSIM_RULE(grouping_rows_bound(a) <= kInt32Max, "GroupingArgs", "pad_to", "the padded row bound must fit in int32 (got {})",
             grouping_rows_bound(a));
  HPSIM_NOT_NULL(a.topk_expert, "GroupingArgs", "topk_expert");
  HPSIM_NOT_NULL(a.offsets, "GroupingArgs", "offsets");
  HPSIM_NOT_NULL(a.perm, "GroupingArgs", "perm");
  HPSIM_NOT_NULL(a.inverse, "GroupingArgs", "inverse");
  return core::Status::ok();
}

core::Status can_implement(const GroupingArgs& a) {
  HPSIM_TRY(check_shape(a));
  HPSIM_KERNEL_LIMIT(a.num_experts <= limits::kGroupMaxExperts, "GroupingArgs", "num_experts", "must be <= {} (got {})",
                     limits::kGroupMaxExperts, a.num_experts);
  HPSIM_KERNEL_LIMIT(a.num_heads <= 65535, "GroupingArgs", "num_heads", "must be <= 65535 (got {})", a.num_heads);
  return core::Status::ok();
}

std::int64_t workspace_bytes(const GroupingArgs& a) {
  const std::int64_t chunks = std::max<std::int64_t>(1, ceil_div(a.num_tokens * a.top_k, limits::kGroupChunk));
  return round_up(a.num_heads * chunks * a.num_experts * 4, kAlign) + round_up(a.num_heads * a.num_experts * 4, kAlign);
}

// ---------------------------------------------------------------------------------------------
// HP expert MLP
namespace {
template <typename Args>
core::Status check_mlp_common(const Args& a, const char* strct) {
  HPSIM_TRY(check_routing(strct, a.num_heads, a.num_tokens, a.num_experts, a.top_k));
  if (a.head_dim < 1) return core::Error::field(fmt::format("{}.head_dim", strct), fmt::format("must be >= 1 (got {})", a.head_dim));
  if (a.hidden < 1) return core::Error::field(fmt::format("{}.hidden", strct), fmt::format("must be >= 1 (got {})", a.hidden));
  if (a.rows < 0 || a.rows > kInt32Max)
    return core::Error::field(fmt::format("{}.rows", strct), fmt::format("must be in [0, 2^31) (got {})", a.rows));
  if (a.x == nullptr || a.offsets == nullptr || a.perm == nullptr || a.w_k == nullptr || a.w_v == nullptr)
    return core::Error::field(fmt::format("{}.x/offsets/perm/w_k/w_v", strct), "must not be null");
  return core::Status::ok();
}

// The fused kernels move rows in 16-byte pieces (vector accesses, cp.async and TMA, whose tensor
// maps need 16-byte aligned bases): every bf16 tensor they touch starts on a 16-byte boundary.
core::Status bf16_tensors_aligned(const char* strct,
                                  std::initializer_list<std::pair<const char*, const Bf16*>> tensors) {
  for (const auto& [name, ptr] : tensors)
    if (reinterpret_cast<std::uintptr_t>(ptr) % 16 != 0)
      return core::Error{core::ErrorCode::kUnsupported,
                         fmt::format("{}.{}: the fused kernels need it 16-byte aligned (got address {})", strct, name,
                                     static_cast<const void*>(ptr))};
  return core::Status::ok();
}
core::Status mlp_outputs_aligned(const ExpertMlpForwardArgs& a, const char* strct) {
  return bf16_tensors_aligned(strct, {{"y", a.y}});
}
core::Status mlp_outputs_aligned(const ExpertMlpBackwardArgs& a, const char* strct) {
  return bf16_tensors_aligned(
      strct, {{"dy", a.dy}, {"dx_grouped", a.dx_grouped}, {"d_w_k", a.d_w_k}, {"d_w_v", a.d_w_v}});
}

template <typename Args>
core::Status mlp_kernel_limits(const Args& a, const char* strct) {
  if (a.head_dim != limits::kMlpHeadDim)
    return core::Error{core::ErrorCode::kUnsupported,
                       fmt::format("{}.head_dim: the fused kernels take h = {} (got {})", strct, limits::kMlpHeadDim, a.head_dim)};
  if (a.hidden % limits::kMlpHiddenMultiple != 0)
    return core::Error{core::ErrorCode::kUnsupported, fmt::format("{}.hidden: must be a multiple of {} (got {})", strct,
                                                                  limits::kMlpHiddenMultiple, a.hidden)};
  if (a.num_heads * a.num_experts > kInt32Max)
    return core::Error{core::ErrorCode::kUnsupported, fmt::format("{}.num_experts: L*E must fit in int32", strct)};
  HPSIM_TRY(bf16_tensors_aligned(strct, {{"x", a.x}, {"w_k", a.w_k}, {"w_v", a.w_v}}));
  return mlp_outputs_aligned(a, strct);
}
}  // namespace

core::Status check_shape(const ExpertMlpForwardArgs& a) {
  HPSIM_TRY(check_mlp_common(a, "ExpertMlpForwardArgs"));
  HPSIM_NOT_NULL(a.y, "ExpertMlpForwardArgs", "y");
  return core::Status::ok();
}

core::Status can_implement(const ExpertMlpForwardArgs& a) {
  HPSIM_TRY(check_shape(a));
  return mlp_kernel_limits(a, "ExpertMlpForwardArgs");
}

std::int64_t workspace_bytes(const ExpertMlpForwardArgs& a) {
  // The mma.sync forward cuts segments into 128-row items, the wgmma one into 192-row items.
  static_assert(limits::kMlpTileRows <= limits::kMlpWgmmaRows);
  return limits::schedule_bytes(a.rows, a.num_heads * a.num_experts, limits::kMlpTileRows);
}

core::Status check_shape(const ExpertMlpBackwardArgs& a) {
  HPSIM_TRY(check_mlp_common(a, "ExpertMlpBackwardArgs"));
  HPSIM_NOT_NULL(a.dy, "ExpertMlpBackwardArgs", "dy");
  HPSIM_NOT_NULL(a.dx_grouped, "ExpertMlpBackwardArgs", "dx_grouped");
  HPSIM_NOT_NULL(a.d_w_k, "ExpertMlpBackwardArgs", "d_w_k");
  HPSIM_NOT_NULL(a.d_w_v, "ExpertMlpBackwardArgs", "d_w_v");
  return core::Status::ok();
}

core::Status can_implement(const ExpertMlpBackwardArgs& a) {
  HPSIM_TRY(check_shape(a));
  return mlp_kernel_limits(a, "ExpertMlpBackwardArgs");
}

std::int64_t workspace_bytes(const ExpertMlpBackwardArgs& a) {
  const std::int64_t segments = a.num_heads * a.num_experts;
  const std::int64_t wgrad_rows = limits::mlp_wgrad_rows(a.rows, a.hidden);
  return limits::schedule_bytes(a.rows, segments, limits::kMlpTileRows) + limits::schedule_bytes(a.rows, segments, wgrad_rows) +
         round_up(limits::schedule_max_slots(a.rows, wgrad_rows) * 2 * a.hidden * a.head_dim * 4, kAlign);
}

// ---------------------------------------------------------------------------------------------
// Combine
core::Status check_shape(const CombineForwardArgs& a) {
  HPSIM_TRY(check_routing("CombineForwardArgs", a.num_heads, a.num_tokens, a.top_k, a.top_k));
  HPSIM_RULE(a.width >= 1, "CombineForwardArgs", "width", "must be >= 1 (got {})", a.width);
  HPSIM_NOT_NULL(a.y, "CombineForwardArgs", "y");
  HPSIM_NOT_NULL(a.inverse, "CombineForwardArgs", "inverse");
  HPSIM_NOT_NULL(a.out, "CombineForwardArgs", "out");
  return core::Status::ok();
}

core::Status can_implement(const CombineForwardArgs& a) {
  HPSIM_TRY(check_shape(a));
  HPSIM_TRY(check_top_k_limit("CombineForwardArgs", a.top_k));
  HPSIM_KERNEL_LIMIT(a.width % 8 == 0, "CombineForwardArgs", "width", "must be a multiple of 8 (got {})", a.width);
  return core::Status::ok();
}

std::int64_t workspace_bytes(const CombineForwardArgs&) { return 0; }

core::Status check_shape(const CombineBackwardArgs& a) {
  HPSIM_TRY(check_routing("CombineBackwardArgs", a.num_heads, a.num_tokens, a.top_k, a.top_k));
  HPSIM_RULE(a.width >= 1, "CombineBackwardArgs", "width", "must be >= 1 (got {})", a.width);
  HPSIM_NOT_NULL(a.d_out, "CombineBackwardArgs", "d_out");
  HPSIM_NOT_NULL(a.y, "CombineBackwardArgs", "y");
  HPSIM_NOT_NULL(a.inverse, "CombineBackwardArgs", "inverse");
  HPSIM_NOT_NULL(a.gate, "CombineBackwardArgs", "gate");
  HPSIM_NOT_NULL(a.d_y, "CombineBackwardArgs", "d_y");
  return core::Status::ok();
}

core::Status can_implement(const CombineBackwardArgs& a) {
  HPSIM_TRY(check_shape(a));
  HPSIM_TRY(check_top_k_limit("CombineBackwardArgs", a.top_k));
  HPSIM_KERNEL_LIMIT(a.width % 8 == 0, "CombineBackwardArgs", "width", "must be a multiple of 8 (got {})", a.width);
  return core::Status::ok();
}

std::int64_t workspace_bytes(const CombineBackwardArgs&) { return 0; }

// ---------------------------------------------------------------------------------------------
// EP permute
core::Status check_shape(const PermuteArgs& a) {
  HPSIM_TRY(check_routing("PermuteArgs", 1, a.num_tokens, a.num_experts, a.top_k));
  HPSIM_RULE(a.dim >= 1, "PermuteArgs", "dim", "must be >= 1 (got {})", a.dim);
  HPSIM_RULE(a.num_ranks >= 1, "PermuteArgs", "num_ranks", "must be >= 1 (got {})", a.num_ranks);
  HPSIM_RULE(a.num_experts % a.num_ranks == 0, "PermuteArgs", "num_experts", "must be a multiple of num_ranks = {} (got {})",
             a.num_ranks, a.num_experts);
  HPSIM_NOT_NULL(a.x, "PermuteArgs", "x");
  HPSIM_NOT_NULL(a.topk_expert, "PermuteArgs", "topk_expert");
  HPSIM_NOT_NULL(a.send, "PermuteArgs", "send");
  HPSIM_NOT_NULL(a.offsets, "PermuteArgs", "offsets");
  HPSIM_NOT_NULL(a.perm, "PermuteArgs", "perm");
  HPSIM_NOT_NULL(a.inverse, "PermuteArgs", "inverse");
  HPSIM_NOT_NULL(a.expert_counts, "PermuteArgs", "expert_counts");
  HPSIM_NOT_NULL(a.rank_counts, "PermuteArgs", "rank_counts");
  return core::Status::ok();
}

core::Status can_implement(const PermuteArgs& a) {
  HPSIM_TRY(check_shape(a));
  HPSIM_KERNEL_LIMIT(a.dim % 8 == 0, "PermuteArgs", "dim", "must be a multiple of 8 (got {})", a.dim);
  HPSIM_KERNEL_LIMIT(a.num_experts <= limits::kGroupMaxExperts, "PermuteArgs", "num_experts", "must be <= {} (got {})",
                     limits::kGroupMaxExperts, a.num_experts);
  return core::Status::ok();
}

std::int64_t workspace_bytes(const PermuteArgs& a) {
  GroupingArgs g;
  g.num_heads = 1;
  g.num_tokens = a.num_tokens;
  g.top_k = a.top_k;
  g.num_experts = a.num_experts;
  return workspace_bytes(g);
}

core::Status check_shape(const RegroupArgs& a) {
  HPSIM_RULE(a.num_ranks >= 1, "RegroupArgs", "num_ranks", "must be >= 1 (got {})", a.num_ranks);
  HPSIM_RULE(a.local_experts >= 1, "RegroupArgs", "local_experts", "must be >= 1 (got {})", a.local_experts);
  HPSIM_RULE(a.rows >= 0 && a.rows <= kInt32Max, "RegroupArgs", "rows", "must be in [0, 2^31) (got {})", a.rows);
  HPSIM_NOT_NULL(a.counts, "RegroupArgs", "counts");
  HPSIM_NOT_NULL(a.offsets, "RegroupArgs", "offsets");
  if (a.rows > 0) {
    HPSIM_NOT_NULL(a.perm, "RegroupArgs", "perm");
    HPSIM_NOT_NULL(a.inverse, "RegroupArgs", "inverse");
  }
  return core::Status::ok();
}

core::Status can_implement(const RegroupArgs& a) {
  HPSIM_TRY(check_shape(a));
  // Every block holds the counts' scans in shared memory.
  HPSIM_KERNEL_LIMIT(a.num_ranks * a.local_experts <= limits::kGroupMaxExperts, "RegroupArgs", "local_experts",
                     "num_ranks x local_experts must be <= {} (got {} x {})", limits::kGroupMaxExperts, a.num_ranks,
                     a.local_experts);
  return core::Status::ok();
}

std::int64_t workspace_bytes(const RegroupArgs&) { return 0; }

// ---------------------------------------------------------------------------------------------
// EP grouped MLP
namespace {
template <typename Args>
core::Status check_grouped_common(const Args& a, const char* strct) {
  if (a.num_experts < 1)
    return core::Error::field(fmt::format("{}.num_experts", strct), fmt::format("must be >= 1 (got {})", a.num_experts));
  if (a.rows < 0 || a.rows > kInt32Max)
    return core::Error::field(fmt::format("{}.rows", strct), fmt::format("must be in [0, 2^31) (got {})", a.rows));
  if (a.dim < 1) return core::Error::field(fmt::format("{}.dim", strct), fmt::format("must be >= 1 (got {})", a.dim));
  if (a.hidden < 1) return core::Error::field(fmt::format("{}.hidden", strct), fmt::format("must be >= 1 (got {})", a.hidden));
  if (a.x == nullptr || a.offsets == nullptr || a.w1 == nullptr || a.w2 == nullptr)
    return core::Error::field(fmt::format("{}.x/offsets/w1/w2", strct), "must not be null");
  return core::Status::ok();
}

template <typename Args>
core::Status grouped_kernel_limits(const Args& a, const char* strct) {
  if (a.dim % limits::kGemmTile != 0)
    return core::Error{core::ErrorCode::kUnsupported,
                       fmt::format("{}.dim: must be a multiple of {} (got {})", strct, limits::kGemmTile, a.dim)};
  if (a.hidden % limits::kGemmTile != 0)
    return core::Error{core::ErrorCode::kUnsupported,
                       fmt::format("{}.hidden: must be a multiple of {} (got {})", strct, limits::kGemmTile, a.hidden)};
  return core::Status::ok();
}
}  // namespace

core::Status check_shape(const GroupedMlpForwardArgs& a) {
  HPSIM_TRY(check_grouped_common(a, "GroupedMlpForwardArgs"));
  HPSIM_NOT_NULL(a.pre_act, "GroupedMlpForwardArgs", "pre_act");
  HPSIM_NOT_NULL(a.act, "GroupedMlpForwardArgs", "act");
  HPSIM_NOT_NULL(a.y, "GroupedMlpForwardArgs", "y");
  return core::Status::ok();
}

core::Status can_implement(const GroupedMlpForwardArgs& a) {
  HPSIM_TRY(check_shape(a));
  return grouped_kernel_limits(a, "GroupedMlpForwardArgs");
}

std::int64_t workspace_bytes(const GroupedMlpForwardArgs& a) {
  return limits::schedule_bytes(a.rows, a.num_experts, limits::kGemmTile);
}

core::Status check_shape(const GroupedMlpBackwardArgs& a) {
  HPSIM_TRY(check_grouped_common(a, "GroupedMlpBackwardArgs"));
  HPSIM_NOT_NULL(a.pre_act, "GroupedMlpBackwardArgs", "pre_act");
  HPSIM_NOT_NULL(a.act, "GroupedMlpBackwardArgs", "act");
  HPSIM_NOT_NULL(a.dy, "GroupedMlpBackwardArgs", "dy");
  HPSIM_NOT_NULL(a.dx, "GroupedMlpBackwardArgs", "dx");
  HPSIM_NOT_NULL(a.d_w1, "GroupedMlpBackwardArgs", "d_w1");
  HPSIM_NOT_NULL(a.d_w2, "GroupedMlpBackwardArgs", "d_w2");
  return core::Status::ok();
}

core::Status can_implement(const GroupedMlpBackwardArgs& a) {
  HPSIM_TRY(check_shape(a));
  return grouped_kernel_limits(a, "GroupedMlpBackwardArgs");
}

std::int64_t workspace_bytes(const GroupedMlpBackwardArgs& a) {
  return limits::schedule_bytes(a.rows, a.num_experts, limits::kGemmTile) +
         limits::schedule_bytes(a.rows, a.num_experts, limits::kGemmWgradRows) + round_up(a.rows * a.hidden * 2, kAlign) +
         round_up(limits::schedule_max_slots(a.rows, limits::kGemmWgradRows) * 2 * a.hidden * a.dim * 4, kAlign);
}

// ---------------------------------------------------------------------------------------------
// Dense
core::Status check_shape(const DenseForwardArgs& a) {
  HPSIM_RULE(a.rows >= 0, "DenseForwardArgs", "rows", "must be >= 0 (got {})", a.rows);
  HPSIM_RULE(a.in_features >= 1, "DenseForwardArgs", "in_features", "must be >= 1 (got {})", a.in_features);
  HPSIM_RULE(a.out_features >= 1, "DenseForwardArgs", "out_features", "must be >= 1 (got {})", a.out_features);
  HPSIM_NOT_NULL(a.x, "DenseForwardArgs", "x");
  HPSIM_NOT_NULL(a.w, "DenseForwardArgs", "w");
  HPSIM_NOT_NULL(a.y, "DenseForwardArgs", "y");
  return core::Status::ok();
}

core::Status can_implement(const DenseForwardArgs& a) {
  HPSIM_TRY(check_shape(a));
  HPSIM_RULE(a.context != nullptr, "DenseForwardArgs", "context", "must not be null (create_dense_context)");
  HPSIM_KERNEL_LIMIT(a.in_features % 8 == 0, "DenseForwardArgs", "in_features", "must be a multiple of 8 (got {})", a.in_features);
  HPSIM_KERNEL_LIMIT(a.out_features % 8 == 0, "DenseForwardArgs", "out_features", "must be a multiple of 8 (got {})",
                     a.out_features);
  HPSIM_KERNEL_LIMIT(a.rows <= kInt32Max && a.in_features <= kInt32Max && a.out_features <= kInt32Max, "DenseForwardArgs",
                     "rows", "sizes must fit in int32");
  return core::Status::ok();
}

std::int64_t workspace_bytes(const DenseForwardArgs&) { return limits::kDenseWorkspace; }

core::Status check_shape(const DenseBackwardArgs& a) {
  HPSIM_RULE(a.rows >= 0, "DenseBackwardArgs", "rows", "must be >= 0 (got {})", a.rows);
  HPSIM_RULE(a.in_features >= 1, "DenseBackwardArgs", "in_features", "must be >= 1 (got {})", a.in_features);
  HPSIM_RULE(a.out_features >= 1, "DenseBackwardArgs", "out_features", "must be >= 1 (got {})", a.out_features);
  HPSIM_NOT_NULL(a.x, "DenseBackwardArgs", "x");
  HPSIM_NOT_NULL(a.w, "DenseBackwardArgs", "w");
  HPSIM_NOT_NULL(a.dy, "DenseBackwardArgs", "dy");
  return core::Status::ok();
}

core::Status can_implement(const DenseBackwardArgs& a) {
  HPSIM_TRY(check_shape(a));
  HPSIM_RULE(a.context != nullptr, "DenseBackwardArgs", "context", "must not be null (create_dense_context)");
  HPSIM_KERNEL_LIMIT(a.in_features % 8 == 0, "DenseBackwardArgs", "in_features", "must be a multiple of 8 (got {})",
                     a.in_features);
  HPSIM_KERNEL_LIMIT(a.out_features % 8 == 0, "DenseBackwardArgs", "out_features", "must be a multiple of 8 (got {})",
                     a.out_features);
  HPSIM_KERNEL_LIMIT(a.rows <= kInt32Max && a.in_features <= kInt32Max && a.out_features <= kInt32Max, "DenseBackwardArgs",
                     "rows", "sizes must fit in int32");
  return core::Status::ok();
}

std::int64_t workspace_bytes(const DenseBackwardArgs&) { return limits::kDenseWorkspace; }

}  // namespace hpsim::kernels
