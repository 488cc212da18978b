#pragma once
// Combine (family 6): the weighted sum over the k slots, forward and backward, for HP (width h,
// L local heads) and for EP's unpermute (width d, one head). Symbols as in router.h.
//
//   forward:   out[t][l][:] = sum_j gate[l][t][j] * y[inverse[l][t][j]][:]
//              (gate == null: weight 1, which is also the backward of a k-fold gather: the
//              gradient of a token is the sum of the gradients of its k grouped copies)
//   backward:  d_y[inverse[l][t][j]][:] = gate[l][t][j] * d_out[t][l][:]
//              d_gate[l][t][j]          = <d_out[t][l][:], y[inverse[l][t][j]][:]>
//              d_score[l][t][j]         = gate_j * (d_gate_j - sum_i gate_i d_gate_i)
//                                         (softmax backward: the gradient of the clean scores)
// fp32 accumulation in a fixed order; bf16 rows.

#include <cstdint>

#include "hpsim/core/error.h"
#include "hpsim/kernels/types.h"

namespace hpsim::kernels {

struct CombineForwardArgs {
  const Bf16* y = nullptr;                  // [rows][width] grouped rows
  const std::int32_t* inverse = nullptr;    // [L][N][k]
  const float* gate = nullptr;              // [L][N][k], may be null (weight 1)
  Bf16* out = nullptr;                      // [N][L][width] out
  std::int64_t num_heads = 0;               // L
  std::int64_t num_tokens = 0;              // N
  std::int64_t top_k = 0;                   // k
  std::int64_t width = 0;                   // h or d (multiple of 8)
};

struct CombineBackwardArgs {
  const Bf16* d_out = nullptr;              // [N][L][width]
  const Bf16* y = nullptr;                  // [rows][width] the forward's grouped rows
  const std::int32_t* inverse = nullptr;    // [L][N][k]
  const float* gate = nullptr;              // [L][N][k]
  Bf16* d_y = nullptr;                      // [rows][width] out (rows listed by inverse)
  float* d_gate = nullptr;                  // [L][N][k] out, may be null
  float* d_score = nullptr;                 // [L][N][k] out, may be null
  std::int64_t num_heads = 0;
  std::int64_t num_tokens = 0;
  std::int64_t top_k = 0;
  std::int64_t width = 0;
};

core::Status can_implement(const CombineForwardArgs& args);
std::int64_t workspace_bytes(const CombineForwardArgs& args);
core::Status launch(const CombineForwardArgs& args, void* workspace, Stream stream);

core::Status can_implement(const CombineBackwardArgs& args);
std::int64_t workspace_bytes(const CombineBackwardArgs& args);
core::Status launch(const CombineBackwardArgs& args, void* workspace, Stream stream);

}  // namespace hpsim::kernels
