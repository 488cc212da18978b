#pragma once
// The wgmma (sm_90a) forward and backward of the HP expert MLP, compiled in their own translation
// units for sm_90a only (expert_mlp_fwd_sm90a.cu, expert_mlp_bwd_sm90a.cu). Private.
#include <cuda_runtime_api.h>

#include "mlp_tile.cuh"
#include "schedule.cuh"
#include "wgmma_support.h"

namespace hpsim::kernels::device {

constexpr int kWgmmaRows = 192;  // rows per block (three warpgroups of 64 rows)

// Builds `sched` (kWgmmaRows-row items) from p.offsets and launches the forward over it; `rows` is
// the capacity of p.y. Returns the first error.
cudaError_t launch_expert_mlp_fwd_wgmma(const mlp::MlpParams& p, const Schedule& sched, long long rows,
                                        cudaStream_t stream);

// Builds `sched` (weight-gradient items, one for every segment, heavy first) and launches the
// fused backward over it; f must be a multiple of 128. The partial sums of segments cut into
// several items are left in p.partial for reduce_slots; `rows` is the capacity of p.dxg. Returns
// the first error.
cudaError_t launch_expert_mlp_bwd_wgmma(const mlp::MlpParams& p, const Schedule& sched, long long rows,
                                        cudaStream_t stream);

}  // namespace hpsim::kernels::device
