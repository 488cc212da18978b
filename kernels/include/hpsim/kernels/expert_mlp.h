#pragma once
// HP expert MLP, forward (family 4) and backward (family 5), per (head, expert) segment of the
// grouping (grouping.h). Symbols as in router.h; per expert e of head l the two weights are
//   K_e = w_k[l][e]  (f x h)   and   V_e^T = w_v[l][e]  (h x f),
// both in the [out][in] order of a linear layer's weight (h -> f and f -> h),
// and for the rows X_g of a segment (read through perm: row -> token t = perm/k, no k-fold copy):
//   forward:   Y_g = GELU(X_g K_e^T) V_e                                  (h -> f -> h)
//   backward:  S = X_g K_e^T, A = GELU(S)           (recomputed, never saved by the forward)
//              dA = dY_g V_e^T,  dS = dA * GELU'(S)
//              dX_g = dS K_e,  dV_e = A^T dY_g,  dK_e = dS^T X_g
// GELU is the tanh form: GELU(s) = s/2 (1 + tanh(sqrt(2/pi) (s + 0.044715 s^3))).
//
// bf16 data, fp32 accumulation; the rows x f activation lives only in registers and shared
// memory. Both directions run on wgmma (sm_90a) on Hopper, else on mma.sync (ExpertMlpAlgo; the
// wgmma backward needs f a multiple of 128). Rows of y, dx_grouped and dy are in grouped order
// ([rows][h]); padding rows (perm = -1) are written as zeros and dy's padding rows are ignored.
// The weight gradients are summed over a segment's rows in a fixed order (fixed tiles, partial
// sums added in slot order): bitwise reproducible. On the wgmma path dX is summed over 128-unit
// chunks of f in bf16, in chunk order (also reproducible). Experts without rows get zero gradients.

#include <cstdint>

#include "hpsim/core/error.h"
#include "hpsim/kernels/types.h"

namespace hpsim::kernels {

enum class ExpertMlpAlgo {
  kAuto,     // wgmma where the device is sm_90, else mma.sync
  kMmaSync,  // mma.sync m16n8k16, 128-row blocks
  kWgmma,    // wgmma m64nNk16 (sm_90a), 64-row blocks
};

struct ExpertMlpForwardArgs {
  const Bf16* x = nullptr;                  // [N][L][h] sub-tokens
  const std::int32_t* offsets = nullptr;    // [L*E+1] from grouping
  const std::int32_t* perm = nullptr;       // [rows] from grouping
  const Bf16* w_k = nullptr;                // [L][E][f][h]
  const Bf16* w_v = nullptr;                // [L][E][h][f]  (V_e^T)
  Bf16* y = nullptr;                        // [rows][h] out, grouped order
  std::int64_t num_heads = 0;               // L
  std::int64_t num_tokens = 0;              // N
  std::int64_t top_k = 0;                   // k
  std::int64_t num_experts = 0;             // E
  std::int64_t head_dim = 0;                // h (128)
  std::int64_t hidden = 0;                  // f (multiple of 64)
  std::int64_t rows = 0;                    // capacity of perm and y (grouping_rows_bound)
  ExpertMlpAlgo algo = ExpertMlpAlgo::kAuto;
};

struct ExpertMlpBackwardArgs {
  const Bf16* x = nullptr;                  // [N][L][h]
  const std::int32_t* offsets = nullptr;    // [L*E+1]
  const std::int32_t* perm = nullptr;       // [rows]
  const Bf16* w_k = nullptr;                // [L][E][f][h]
  const Bf16* w_v = nullptr;                // [L][E][h][f]  (V_e^T)
  const Bf16* dy = nullptr;                 // [rows][h] gradient of y (grouped order)
  Bf16* dx_grouped = nullptr;               // [rows][h] out: gradient of each grouped input row
  Bf16* d_w_k = nullptr;                    // [L][E][f][h] out
  Bf16* d_w_v = nullptr;                    // [L][E][h][f] out
  std::int64_t num_heads = 0;
  std::int64_t num_tokens = 0;
  std::int64_t top_k = 0;
  std::int64_t num_experts = 0;
  std::int64_t head_dim = 0;
  std::int64_t hidden = 0;
  std::int64_t rows = 0;
  ExpertMlpAlgo algo = ExpertMlpAlgo::kAuto;  // kWgmma also needs hidden a multiple of 128
};

// can_implement, forward and backward: beyond check_shape, h = 128, f a multiple of 64, L E within
// int32, and every bf16 tensor 16-byte aligned (kUnsupported, naming the field).
core::Status can_implement(const ExpertMlpForwardArgs& args);
std::int64_t workspace_bytes(const ExpertMlpForwardArgs& args);
core::Status launch(const ExpertMlpForwardArgs& args, void* workspace, Stream stream);

core::Status can_implement(const ExpertMlpBackwardArgs& args);
std::int64_t workspace_bytes(const ExpertMlpBackwardArgs& args);
core::Status launch(const ExpertMlpBackwardArgs& args, void* workspace, Stream stream);

}  // namespace hpsim::kernels
