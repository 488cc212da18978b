#pragma once
// Device helpers shared by the kernels: bf16 views, cp.async, ldmatrix, mma.sync (m16n8k16 bf16,
// fp32 accumulation), swizzled shared-memory tiles and the GELU of expert_mlp.h. Private.
//
// mma.sync m16n8k16 fragment layout (g = lane / 4, t = lane % 4):
//   A (16x16, row): a0 = (g, 2t..2t+1), a1 = (g+8, 2t..), a2 = (g, 2t+8..), a3 = (g+8, 2t+8..)
//   B (16x8, col):  b0 = (k 2t..2t+1, n g), b1 = (k 2t+8.., n g)
//   C (16x8 fp32):  c0,c1 = (g, 2t..2t+1), c2,c3 = (g+8, 2t..2t+1)

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <utility>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "hpsim/kernels/types.h"

#if defined(HPSIM_DEVICE_CHECKS) && HPSIM_DEVICE_CHECKS
#define HPSIM_DEVICE_ASSERT(cond)                                                                  \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      printf("hpsim device assert failed: %s at %s:%d (block %d, thread %d)\n", #cond, __FILE__,   \
             __LINE__, static_cast<int>(blockIdx.x), static_cast<int>(threadIdx.x));               \
      __trap();                                                                                    \
    }                                                                                              \
  } while (0)
#else
#define HPSIM_DEVICE_ASSERT(cond) \
  do {                            \
  } while (0)
#endif

namespace hpsim::kernels::device {

inline const __nv_bfloat16* nv(const Bf16* p) { return reinterpret_cast<const __nv_bfloat16*>(p); }
inline __nv_bfloat16* nv(Bf16* p) { return reinterpret_cast<__nv_bfloat16*>(p); }

__device__ __forceinline__ std::uint32_t smem_u32(const void* p) {
  return static_cast<std::uint32_t>(__cvta_generic_to_shared(p));
}

// 16-byte asynchronous copy global -> shared; with pred false the destination is zero-filled.
__device__ __forceinline__ void cp_async16(std::uint32_t dst, const void* src, bool pred) {
  const int bytes = pred ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void ldmatrix_x4(std::uint32_t (&r)[4], std::uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void ldmatrix_x4_trans(std::uint32_t (&r)[4], std::uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

__device__ __forceinline__ void mma_bf16(float (&d)[4], const std::uint32_t (&a)[4], std::uint32_t b0, std::uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Two floats -> bf16x2 (lo in the low half: the lower column).
__device__ __forceinline__ std::uint32_t pack_bf16x2(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const std::uint32_t*>(&v);
}

// Element offset in a row-major bf16 tile whose rows hold `row_elems` elements (a multiple of 64),
// with 16-byte chunks XOR-swizzled by the row: conflict-free ldmatrix and cp.async.
__device__ __forceinline__ int swz(int row, int col, int row_elems) {
  return row * row_elems + ((((col >> 3) ^ (row & 7))) << 3) + (col & 7);
}

// GELU, tanh form (expert_mlp.h), with the hardware tanh approximation (max rel. error ~2^-11).
__device__ __forceinline__ float tanh_fast(float x) {
  float y;
  asm("tanh.approx.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}
constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kGeluCubic = 0.044715f;
__device__ __forceinline__ float gelu(float s) {
  const float t = tanh_fast(kSqrt2OverPi * fmaf(kGeluCubic * s, s * s, s));
  return 0.5f * s * (1.0f + t);
}
__device__ __forceinline__ float gelu_grad(float s) {
  const float t = tanh_fast(kSqrt2OverPi * fmaf(kGeluCubic * s, s * s, s));
  return 0.5f * (1.0f + t) + 0.5f * s * (1.0f - t * t) * kSqrt2OverPi * fmaf(3.0f * kGeluCubic, s * s, 1.0f);
}

// 8 bf16 <-> 8 floats through one 16-byte word.
__device__ __forceinline__ void unpack8(const uint4& v, float (&f)[8]) {
  const __nv_bfloat162* p = reinterpret_cast<const __nv_bfloat162*>(&v);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 q = __bfloat1622float2(p[i]);
    f[2 * i] = q.x;
    f[2 * i + 1] = q.y;
  }
}
__device__ __forceinline__ uint4 pack8(const float (&f)[8]) {
  uint4 v;
  v.x = pack_bf16x2(f[0], f[1]);
  v.y = pack_bf16x2(f[2], f[3]);
  v.z = pack_bf16x2(f[4], f[5]);
  v.w = pack_bf16x2(f[6], f[7]);
  return v;
}

// Programmatic dependent launch (sm_90): a kernel launched with launch_after() may start while
// the kernel before it in the stream still runs; it must call griddep_wait() before it reads
// anything that kernel (or any earlier one) wrote. griddep_launch_dependents() lets the next
// kernel start early; its griddep_wait() still waits for this whole grid and its writes. Both
// are no-ops for kernels launched the ordinary way.
__device__ __forceinline__ void griddep_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void griddep_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

template <typename... Params, typename... Args>
cudaError_t launch_after(void (*kernel)(Params...), dim3 grid, dim3 block, std::size_t smem, cudaStream_t stream,
                         Args&&... args) {
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  cudaLaunchAttribute attribute{};
  attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute.val.programmaticStreamSerializationAllowed = 1;
  config.attrs = &attribute;
  config.numAttrs = 1;
  return cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
}

inline unsigned grid_1d(long long work, int per_block) {
  const long long blocks = (work + per_block - 1) / per_block;
  return static_cast<unsigned>(blocks < 1 ? 1 : blocks);
}

}  // namespace hpsim::kernels::device
