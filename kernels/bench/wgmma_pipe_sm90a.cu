// The tensor pipe's own rate for the two wgmma shapes the expert MLP kernels issue (bench only):
// one block per SM of three warpgroups, each issuing chains of eight k16 steps on tiles that
// stay in shared memory, so no device-memory traffic and no other work competes. Compiled for
// sm_90a only.
#include <cuda_runtime.h>

#include "bench_wgmma.h"
#include "expert_mlp_wgmma.h"
#include "wgmma.cuh"

namespace hpsim::kernels::bench {
namespace {

using device::smem_u32;

constexpr int kWarpgroups = 3;
constexpr int kTileBytes = 65536;

template <WgmmaShape kShape>
__global__ void __launch_bounds__(kWarpgroups * 128, 1) wgmma_pipe_kernel(int chains, float* sink) {
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  const std::uint32_t misalign = smem_u32(smem_raw) & 1023u;
  unsigned char* base = smem_raw + (misalign ? 1024u - misalign : 0u);
  // Small finite values: the rate must not depend on the bits, but keep them ordinary numbers.
  for (int i = threadIdx.x; i < kTileBytes / 4; i += blockDim.x) reinterpret_cast<std::uint32_t*>(base)[i] = 0x3c003c00u ^ (i & 0xff);
  __syncthreads();
  device::fence_proxy_async();
  __syncthreads();
  const int wg = threadIdx.x / 128;
  const std::uint64_t desc_a = device::wgmma_desc(base + wg * 8192), desc_b = device::wgmma_desc(base + 32768);
  float acc[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) acc[i] = 0.0f;
  const std::uint32_t frag[4] = {0x3c003c00u, 0x3c003c00u, 0x3c003c00u, 0x3c003c00u};
  for (int c = 0; c < chains; ++c) {
    device::wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < 8; ++kk) {
      const std::uint64_t ao = ((kk / 4) * 16384 + (kk % 4) * 32) >> 4, bo = ((kk / 4) * 8192 + (kk % 4) * 32) >> 4;
      if constexpr (kShape == WgmmaShape::kM64N64K16SharedShared)
        device::wgmma_m64n64k16_ss(*reinterpret_cast<float(*)[32]>(acc), desc_a + ao, desc_b + bo, 1);
      else
        device::wgmma_m64n128k16_rs(acc, frag, desc_b + bo, 1);
    }
    device::wgmma_commit();
    device::wgmma_wait<0>();
  }
  float s = 0.0f;
#pragma unroll
  for (int i = 0; i < 64; ++i) s += acc[i];
  if (s == 1234.5f) sink[threadIdx.x] = s;  // keeps the products; never true for these inputs
}

}  // namespace

double wgmma_pipe_flops(WgmmaShape shape, int blocks, int chains) {
  const double per_mma = shape == WgmmaShape::kM64N64K16SharedShared ? 2.0 * 64 * 64 * 16 : 2.0 * 64 * 128 * 16;
  return per_mma * 8.0 * chains * kWarpgroups * blocks;
}

bool wgmma_pipe_supported() { return device::wgmma_supported(); }

cudaError_t launch_wgmma_pipe(WgmmaShape shape, int blocks, int chains, float* sink, cudaStream_t stream) {
  const int smem = kTileBytes + 1024;
  auto kernel = shape == WgmmaShape::kM64N64K16SharedShared ? wgmma_pipe_kernel<WgmmaShape::kM64N64K16SharedShared>
                                                            : wgmma_pipe_kernel<WgmmaShape::kM64N128K16RegisterShared>;
  const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  if (e != cudaSuccess) return e;
  kernel<<<blocks, kWarpgroups * 128, smem, stream>>>(chains, sink);
  return cudaGetLastError();
}

}  // namespace hpsim::kernels::bench
