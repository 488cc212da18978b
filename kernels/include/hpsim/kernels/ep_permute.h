#pragma once
// EP permute (family 8): duplicate each token k times and group the copies by destination rank,
// then by local expert, ready for the dispatch all-to-all-v; with the split sizes that the
// metadata exchange carries. Experts are owned contiguously (rank r holds experts
// r*E/W ... (r+1)*E/W - 1), so grouping by global expert is grouping by (rank, local expert).
// Symbols as in DESIGN.md section 2.
//
//   send[row][:]      = x[perm[row] / k][:]        rows in [0, n*k), grouped by expert
//   offsets[e]        = first row of expert e; offsets[E] = n*k
//   expert_counts[e]  = rows of expert e (what the metadata all-to-all sends)
//   rank_counts[r]    = rows for destination rank r (the dispatch split sizes)
//
// Unpermute is combine.h with one head and width d (weighted sum of the k returned copies); the
// backward of permute is the same with gate = null (sum of the k copies' gradients).

#include <cstdint>

#include "hpsim/core/error.h"
#include "hpsim/kernels/types.h"

namespace hpsim::kernels {

struct PermuteArgs {
  const Bf16* x = nullptr;                   // [n][d]
  const std::int32_t* topk_expert = nullptr; // [n][k]
  Bf16* send = nullptr;                      // [n*k][d] out
  std::int32_t* offsets = nullptr;           // [E+1] out
  std::int32_t* perm = nullptr;              // [n*k] out
  std::int32_t* inverse = nullptr;           // [n][k] out
  std::int32_t* expert_counts = nullptr;     // [E] out
  std::int32_t* rank_counts = nullptr;       // [W] out
  std::int64_t num_tokens = 0;               // n
  std::int64_t dim = 0;                      // d (multiple of 8)
  std::int64_t top_k = 0;                    // k
  std::int64_t num_experts = 0;              // E (multiple of W)
  std::int64_t num_ranks = 0;                // W
};

core::Status can_implement(const PermuteArgs& args);
std::int64_t workspace_bytes(const PermuteArgs& args);
core::Status launch(const PermuteArgs& args, void* workspace, Stream stream);

// EP regroup (the receiving side of the dispatch, also family 8): the rows a rank receives arrive
// ordered by source rank, then by local expert (each sender's permute order); the expert MLP wants
// them by local expert, then by source rank. That order follows from the received counts alone,
// so regroup reads no routing and needs no host round trip:
//
//   counts[p][e]   rows from rank p for local expert e ([W][E_l], what the metadata all-to-all delivered)
//   offsets[e]     first grouped row of local expert e; offsets[E_l] = rows
//   perm[g]        received row at grouped row g
//   inverse[r]     grouped row of received row r
//
// It is the stable counting sort of the grouping (grouping.h, one head, k = 1) applied to the
// local expert of each received row, without materialising that expert list. `rows` must equal
// the sum of the counts (the host knows it from the metadata exchange; the twin checks it).
struct RegroupArgs {
  const std::int32_t* counts = nullptr;  // [W][E_l]
  std::int32_t* offsets = nullptr;       // [E_l+1] out
  std::int32_t* perm = nullptr;          // [rows] out
  std::int32_t* inverse = nullptr;       // [rows] out
  std::int64_t num_ranks = 0;            // W
  std::int64_t local_experts = 0;        // E_l
  std::int64_t rows = 0;                 // received rows, the sum of counts
};

core::Status can_implement(const RegroupArgs& args);
std::int64_t workspace_bytes(const RegroupArgs& args);  // 0
core::Status launch(const RegroupArgs& args, void* workspace, Stream stream);

}  // namespace hpsim::kernels
