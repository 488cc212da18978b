#pragma once
// The bf16x3 router forward's parameters, shared by its two kernels: mma.sync (router_tc.cuh, any
// sm_80+ GPU) and wgmma (router_fwd_sm90a.cu, sm_90a only). Private.
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

// Routes with the wgmma kernel from p.w_parts (already split); dim in {64, 128, 192, 256}.
// Returns the first error.
cudaError_t launch_router_bf16x3_wgmma(const RouterTcParams& p, cudaStream_t stream);

}  // namespace hpsim::kernels::device
