#pragma once
// The tensor pipe's rate for the expert MLP kernels' wgmma shapes (wgmma_pipe_sm90a.cu; bench
// only). Launch only where wgmma_pipe_supported().
#include <cuda_runtime.h>

namespace hpsim::kernels::bench {

enum class WgmmaShape {
  kM64N64K16SharedShared,    // both operands from shared memory (the kernels' S products)
  kM64N128K16RegisterShared  // A from registers (the kernels' Y, dX, dK and dV products)
};

// Whether the current device runs wgmma: the kernels' own test (device::wgmma_supported()).
bool wgmma_pipe_supported();
// FLOPs of one launch: `blocks` blocks of three warpgroups, `chains` chains of eight k16 steps each.
double wgmma_pipe_flops(WgmmaShape shape, int blocks, int chains);
// `sink` holds at least 384 floats (written only if the products take an impossible value).
cudaError_t launch_wgmma_pipe(WgmmaShape shape, int blocks, int chains, float* sink, cudaStream_t stream);

}  // namespace hpsim::kernels::bench
