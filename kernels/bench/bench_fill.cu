// Device-side random fills and the GELU step of the cuBLAS comparison (bench only).
#include <cuda_bf16.h>

#include "bench_common.h"

namespace hpsim::kernels::bench {
namespace {

__device__ __forceinline__ std::uint64_t mix(std::uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

__device__ __forceinline__ float normal_at(std::uint64_t seed, std::int64_t i) {
  const std::uint64_t r = mix(seed ^ mix(static_cast<std::uint64_t>(i)));
  const float u1 = (static_cast<float>(r >> 40) + 0.5f) * (1.0f / 16777216.0f);
  const float u2 = static_cast<float>((r >> 16) & 0xffffffu) * (1.0f / 16777216.0f);
  return sqrtf(-2.0f * logf(u1)) * cospif(2.0f * u2);
}

template <typename T>
__global__ void fill_kernel(T* p, std::int64_t n, float scale, std::uint64_t seed) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const float v = scale * normal_at(seed, i);
    if constexpr (sizeof(T) == 2)
      reinterpret_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(v);
    else
      p[i] = v;
  }
}

__global__ void gelu_kernel(__nv_bfloat16* p, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const float s = __bfloat162float(p[i]);
    const float t = tanhf(0.7978845608028654f * (s + 0.044715f * s * s * s));
    p[i] = __float2bfloat16_rn(0.5f * s * (1.0f + t));
  }
}

// Zeros with 16-byte stores, grid-stride: the write-only stream of a kernel (the ceiling beside
// cudaMemset's).
__global__ void store_zero_kernel(uint4* p, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
    p[i] = make_uint4(0u, 0u, 0u, 0u);
}

// One thread that returns `ns` nanoseconds after it started (the global nanosecond timer).
__global__ void hold_kernel(std::uint64_t ns) {
  std::uint64_t t0 = 0, t = 0;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
  do {
    __nanosleep(1000);
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  } while (t - t0 < ns);
}

unsigned blocks_for(std::int64_t n) {
  const std::int64_t b = (n + 255) / 256;
  return static_cast<unsigned>(b < 1 ? 1 : (b > 65536 ? 65536 : b));
}

}  // namespace

void fill_normal(Bf16* p, std::int64_t n, float scale, std::uint64_t seed) {
  fill_kernel<Bf16><<<blocks_for(n), 256>>>(p, n, scale, seed);
  HPSIM_CUDA_CHECK(cudaGetLastError());
}

void fill_normal(float* p, std::int64_t n, float scale, std::uint64_t seed) {
  fill_kernel<float><<<blocks_for(n), 256>>>(p, n, scale, seed);
  HPSIM_CUDA_CHECK(cudaGetLastError());
}

void gelu_inplace(Bf16* p, std::int64_t n, cudaStream_t stream) {
  gelu_kernel<<<blocks_for(n), 256, 0, stream>>>(reinterpret_cast<__nv_bfloat16*>(p), n);
}

void hold_stream(cudaStream_t stream, int microseconds) {
  hold_kernel<<<1, 1, 0, stream>>>(static_cast<std::uint64_t>(microseconds) * 1000u);
  HPSIM_CUDA_CHECK(cudaGetLastError());
}

void store_zeros(void* p, std::int64_t bytes, cudaStream_t stream) {
  const std::int64_t n = bytes / 16;
  store_zero_kernel<<<blocks_for(n), 256, 0, stream>>>(static_cast<uint4*>(p), n);
}

}  // namespace hpsim::kernels::bench
