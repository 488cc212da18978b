#pragma once
// The bf16x3 router forward's parameters, shared by its two kernels: mma.sync (router_tc.cuh, any
// sm_80+ GPU, dim <= 256) and wgmma (router_fwd_sm90a.cu, sm_90a only, any multiple of 64). Private.
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include "wgmma_support.h"

namespace hpsim::kernels::device {

struct RouterTcParams {
  const __nv_bfloat16* x;
  const float* weight;
  const float* bias;
  int* topk_expert;
  float* topk_gate;
  int* counts;
  int L, N, dim, E, k;
  const __nv_bfloat16* w_parts = nullptr;  // [3][L][E][dim], set by the launcher
};

// The wgmma kernel's expert split (kernel_limits.h router_wgmma_chunks_per_split): with splits > 1
// each split writes its tokens' top-k to cand_v / cand_e ([L][N][splits][k]) and the caller merges
// them.
struct RouterSplit {
  int splits = 1;
  int chunks_per_split = 0;  // of 64 experts
  float* cand_v = nullptr;
  int* cand_e = nullptr;
};

// Routes with the wgmma kernel from p.w_parts (already split); dim a multiple of 64 (x resident in
// shared memory up to 256, streamed with the weights above). Returns the first error.
cudaError_t launch_router_bf16x3_wgmma(const RouterTcParams& p, const RouterSplit& split, cudaStream_t stream);

}  // namespace hpsim::kernels::device
