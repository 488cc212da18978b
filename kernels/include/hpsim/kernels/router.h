#pragma once
// Router, forward and backward: HP's per-head router h -> E (family 1 and 2) and EP's router
// d -> E (family 7) are the same maths, so they share these launchers: EP is one "head" of width d.
// Symbols as in DESIGN.md section 2 (n, d, H, h, E, k, f, W); L = heads held by this rank (H/W for
// HP, 1 for EP), N = tokens per head on this rank (W*n sub-tokens for HP, n for EP).
//
// Forward, for every head l and token t:
//   score[e] = sum_i x[t][l][i] * weight[l][e][i]                 (fp32, never stored in full)
//   selection = the k experts with the largest score[e] + bias[l][e] (ties: lower expert first);
//               the bias steers the selection only
//   gate[j]   = softmax over the k clean scores score[e_j]
//   counts[l][e] += 1 for every selected e
// The k slots are stored in selection order (largest biased score first).
//
// Backward, given d_score[l][t][j] = dLoss/dscore[e_j] (combine's softmax backward):
//   dx[t][l][:]     = dx_in[t][l][:] + sum_j d_score[l][t][j] * weight[l][e_j][:]
//   d_weight[l][e]  = sum over (t, j) with e_j = e of d_score[l][t][j] * x[t][l][:]
// d_weight is summed in the grouped order (grouping.h), in fixed chunks and a fixed order of
// partial sums, so it is bitwise reproducible. Unselected experts get zero.
//
// Layouts: x and dx are token-major [N][L][dim] (the all-to-all receive layout: rank-major then
// token, then local head); per-slot arrays are head-major [L][N][k].

#include <cstdint>

#include "hpsim/core/error.h"
#include "hpsim/kernels/types.h"

namespace hpsim::kernels {

enum class RouterAlgo {
  kFfma,    // plain fp32 FMA, scores tiled in registers
  kBf16x3,  // tensor cores: x is exact in bf16, weight split into three bf16 parts (hi+mid+lo), fp32 accumulation;
            // wgmma on sm_90a (any dim, a multiple of 64), mma.sync elsewhere (dim <= 256)
  kBf16x3MmaSync,  // the same scores on mma.sync on every GPU (the sm_80 kernel, kept for comparison)
};

struct RouterForwardArgs {
  const Bf16* x = nullptr;                   // [N][L][dim]
  const float* weight = nullptr;             // [L][E][dim]
  const float* bias = nullptr;               // [L][E], may be null (no bias)
  std::int32_t* topk_expert = nullptr;       // [L][N][k] out
  float* topk_gate = nullptr;                // [L][N][k] out
  std::int32_t* expert_counts = nullptr;     // [L][E] out, may be null
  std::int64_t num_heads = 0;                // L
  std::int64_t num_tokens = 0;               // N
  std::int64_t dim = 0;                      // h (HP) or d (EP)
  std::int64_t num_experts = 0;              // E
  std::int64_t top_k = 0;                    // k
  RouterAlgo algo = RouterAlgo::kFfma;
};

struct RouterBackwardArgs {
  const Bf16* x = nullptr;                   // [N][L][dim]
  const float* weight = nullptr;             // [L][E][dim]
  const std::int32_t* topk_expert = nullptr; // [L][N][k]
  const float* d_score = nullptr;            // [L][N][k]
  const std::int32_t* group_offsets = nullptr;  // [L*E+1] from grouping (padding allowed)
  const std::int32_t* group_perm = nullptr;     // [rows] pair index t*k+j, or -1 for padding
  const Bf16* dx_in = nullptr;               // [N][L][dim] added to dx; may be null; may equal dx
  Bf16* dx = nullptr;                        // [N][L][dim] out
  float* d_weight = nullptr;                 // [L][E][dim] out
  std::int64_t num_heads = 0;
  std::int64_t num_tokens = 0;
  std::int64_t dim = 0;
  std::int64_t num_experts = 0;
  std::int64_t top_k = 0;
  std::int64_t group_rows = 0;               // capacity of group_perm (grouping_rows_bound)
};

// Whether both bf16x3 kernels take this width (dim in {64, 128, 192, 256}): the mma.sync one
// (kBf16x3MmaSync, and kBf16x3 off sm_90) keeps x resident and takes no other; the wgmma one
// (kBf16x3 on sm_90) takes any multiple of 64, streaming x with the weights above 256. The fp32
// one takes any multiple of 32.
bool router_bf16x3_takes_dim(std::int64_t dim);
// Whether kBf16x3 runs at this width on the current device (the GPU build only).
bool router_bf16x3_runs(std::int64_t dim);
// The router the layers run at this width: bf16x3 where it runs on the current device (it selects
// the same experts as plain fp32 on the kernels' test data and is 2-4 times as fast,
// docs/kernels.md; EP's d = 1024 needs the sm_90 kernel), else plain fp32 (the GPU build only).
inline RouterAlgo layer_router_algo(std::int64_t dim) {
  return router_bf16x3_runs(dim) ? RouterAlgo::kBf16x3 : RouterAlgo::kFfma;
}

core::Status can_implement(const RouterForwardArgs& args);
std::int64_t workspace_bytes(const RouterForwardArgs& args);
// Zeroes expert_counts on the stream, then routes. Never allocates.
core::Status launch(const RouterForwardArgs& args, void* workspace, Stream stream);

core::Status can_implement(const RouterBackwardArgs& args);
std::int64_t workspace_bytes(const RouterBackwardArgs& args);
core::Status launch(const RouterBackwardArgs& args, void* workspace, Stream stream);

}  // namespace hpsim::kernels
