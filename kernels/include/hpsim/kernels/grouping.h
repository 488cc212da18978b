#pragma once
// Grouping (family 3): a stable counting sort of the (token, slot) pairs of every head by
// (head, expert). Segment s = l*E + e holds the grouped rows [offsets[s], offsets[s+1]); inside a
// segment the pairs keep their order (t*k + j ascending), then come padding rows (perm = -1) up to
// a multiple of pad_to. Everything stays on the device: the output buffers are sized for the bound
// (grouping_rows_bound), offsets[L*E] holds the rows actually used, and no host synchronisation
// is needed. Symbols as in router.h.
//
//   perm[row]            = t*k + j of the pair in that grouped row (within its head), or -1
//   inverse[l][t][j]     = grouped row of the pair (global over heads)
//   counts[l][e]         = unpadded number of pairs routed to e (optional output)

#include <cstdint>

#include "hpsim/core/error.h"
#include "hpsim/kernels/types.h"

namespace hpsim::kernels {

struct GroupingArgs {
  const std::int32_t* topk_expert = nullptr; // [L][N][k]
  std::int32_t* offsets = nullptr;           // [L*E+1] out
  std::int32_t* perm = nullptr;              // [grouping_rows_bound] out (rows >= offsets[L*E] untouched)
  std::int32_t* inverse = nullptr;           // [L][N][k] out
  std::int32_t* counts = nullptr;            // [L*E] out, may be null
  std::int64_t num_heads = 0;                // L
  std::int64_t num_tokens = 0;               // N
  std::int64_t top_k = 0;                    // k
  std::int64_t num_experts = 0;              // E
  std::int64_t pad_to = 1;                   // each segment padded to a multiple of this (1 = none)
};

// Upper bound of grouped rows: L * (N*k + E*(pad_to-1)).
std::int64_t grouping_rows_bound(std::int64_t num_heads,
                                 std::int64_t num_tokens,
                                 std::int64_t top_k,
                                 std::int64_t num_experts,
                                 std::int64_t pad_to);
std::int64_t grouping_rows_bound(const GroupingArgs& args);

core::Status can_implement(const GroupingArgs& args);
std::int64_t workspace_bytes(const GroupingArgs& args);
core::Status launch(const GroupingArgs& args, void* workspace, Stream stream);

}  // namespace hpsim::kernels
