#pragma once
// EP grouped expert MLP (family 9), d -> f -> d per local expert, forward and backward, over rows
// already grouped by expert (contiguous; offsets[e] .. offsets[e+1]). Symbols as in DESIGN.md
// section 2; E here is the number of experts held by this rank. For expert e:
//   forward:   pre = X_e W1_e^T (rows x f), act = GELU(pre), Y_e = act W2_e      (W1_e, W2_e: f x d)
//   backward:  d_act = dY_e W2_e^T,  d_pre = d_act * GELU'(pre)
//              dX_e = d_pre W1_e,  dW2_e = act^T dY_e,  dW1_e = d_pre^T X_e
// GELU is the tanh form (expert_mlp.h). Unlike HP's fused MLP, this is the baseline's usual
// structure: two grouped GEMMs that keep pre and act (bf16) for the backward.
//
// The grouped GEMMs are this project's own (mma.sync bf16, fp32 accumulation), not cuBLAS's
// grouped GEMM: cuBLAS needs every group's row count on the host, which costs a device-to-host
// synchronisation per layer; these kernels read the counts from device memory. hpsim-bench times
// cuBLAS's grouped GEMM on the same shapes (with the counts given on the host) for comparison.
// Weight gradients are reduced over a whole segment by one block per output tile: deterministic.

#include <cstdint>

#include "hpsim/core/error.h"
#include "hpsim/kernels/types.h"

namespace hpsim::kernels {

struct GroupedMlpForwardArgs {
  const Bf16* x = nullptr;                  // [rows][d] grouped rows
  const std::int32_t* offsets = nullptr;    // [E+1]
  const Bf16* w1 = nullptr;                 // [E][f][d]
  const Bf16* w2 = nullptr;                 // [E][f][d]
  Bf16* pre_act = nullptr;                  // [rows][f] out, kept for the backward
  Bf16* act = nullptr;                      // [rows][f] out, kept for the backward
  Bf16* y = nullptr;                        // [rows][d] out
  std::int64_t num_experts = 0;             // E (local)
  std::int64_t rows = 0;                    // capacity (offsets[E] <= rows)
  std::int64_t dim = 0;                     // d (multiple of 128)
  std::int64_t hidden = 0;                  // f (multiple of 128)
};

struct GroupedMlpBackwardArgs {
  const Bf16* x = nullptr;                  // [rows][d]
  const std::int32_t* offsets = nullptr;    // [E+1]
  const Bf16* w1 = nullptr;                 // [E][f][d]
  const Bf16* w2 = nullptr;                 // [E][f][d]
  const Bf16* pre_act = nullptr;            // [rows][f]
  const Bf16* act = nullptr;                // [rows][f]
  const Bf16* dy = nullptr;                 // [rows][d]
  Bf16* dx = nullptr;                       // [rows][d] out
  Bf16* d_w1 = nullptr;                     // [E][f][d] out
  Bf16* d_w2 = nullptr;                     // [E][f][d] out
  std::int64_t num_experts = 0;
  std::int64_t rows = 0;
  std::int64_t dim = 0;
  std::int64_t hidden = 0;
};

core::Status can_implement(const GroupedMlpForwardArgs& args);
std::int64_t workspace_bytes(const GroupedMlpForwardArgs& args);
core::Status launch(const GroupedMlpForwardArgs& args, void* workspace, Stream stream);

core::Status can_implement(const GroupedMlpBackwardArgs& args);
// Workspace of the backward: the schedules, the pre-activation gradient (rows f 2 bytes) and the
// fp32 partial sums of experts cut into work items of 1024 rows, sized for the worst case:
// (2 ceil(rows / 1024) + 1) 2 f d 4 bytes (0.54 GB at rows = 131072, f = 256, d = 1024; it grows
// with f d, so very wide experts need a large workspace even under uniform routing).
std::int64_t workspace_bytes(const GroupedMlpBackwardArgs& args);
core::Status launch(const GroupedMlpBackwardArgs& args, void* workspace, Stream stream);

}  // namespace hpsim::kernels
