#pragma once
// Hopper (sm_90a) building blocks of the wgmma expert MLP kernels (expert_mlp_fwd_sm90a.cu,
// expert_mlp_bwd_sm90a.cu): 128-byte-swizzled tile offsets, the bf16x2 GELU, mbarriers, stmatrix, TMA loads
// and stores and the tensor maps they use. Compile for sm_90a only. Private.
#include <cuda.h>
#include <cuda_bf16.h>

#include "wgmma.cuh"

namespace hpsim::kernels::device {
namespace {

constexpr int kAtom = 64 * 64;  // elements of one [64][64] 128-byte-swizzle atom (8 KB)

// Element offset of (r, c) in a swizzled tile of 64-element rows (atoms stacked along rows).
__device__ __forceinline__ int sw64(int r, int c) { return r * 64 + ((((c >> 3) ^ (r & 7))) << 3) + (c & 7); }

// The calling thread's warpgroup, broadcast from lane 0 so that the compiler knows it is the same
// across the warp: wgmma descriptors derived from it then live in uniform registers, instead of
// being rebuilt in vector registers and moved over (R2UR) before every wgmma.
__device__ __forceinline__ int warpgroup_index() { return __shfl_sync(0xffffffffu, static_cast<int>(threadIdx.x) / 128, 0); }

// GELU (tanh form) of two fp32 pre-activations in bf16x2 arithmetic, packed as bf16x2 (the A
// operand of the next wgmma). The pre-activations are rounded to bf16 first, as a bf16 GEMM's
// output would be; bf16 keeps fp32's exponent range, so nothing needs clamping and small
// gradients keep their exponent. The expert MLP tests measure relative L2 errors of 2.6-5.2e-3
// against the float64 twin (tolerance 1e-2; docs/kernels.md). Nothing is converted back: 10
// instructions per pair (16 for the backward's pair), where f16x2 arithmetic, whose results
// must go through fp32 to become bf16, takes 14 (26).
//   u = c s (1 + 0.044715 s^2),  t = tanh(u),  GELU = s (1 + t) / 2,
//   GELU' = (1 + t) / 2 + s c (1 - t^2) (1 + 3 * 0.044715 s^2) / 2.
__device__ __forceinline__ __nv_bfloat162 bf16x2_splat(float v) { return __float2bfloat162_rn(v); }
__device__ __forceinline__ std::uint32_t bf16x2_bits(__nv_bfloat162 v) { return *reinterpret_cast<const std::uint32_t*>(&v); }
__device__ __forceinline__ __nv_bfloat162 tanh_bf16x2(__nv_bfloat162 u) {
  std::uint32_t t_bits;
  asm("tanh.approx.bf16x2 %0, %1;" : "=r"(t_bits) : "r"(bf16x2_bits(u)));
  return *reinterpret_cast<const __nv_bfloat162*>(&t_bits);
}
// s and s^2 in, tanh(u) out.
__device__ __forceinline__ __nv_bfloat162 gelu_tanh_bf16x2(__nv_bfloat162 s, __nv_bfloat162 s2) {
  return tanh_bf16x2(__hmul2(__hfma2(s2, bf16x2_splat(kSqrt2OverPi * kGeluCubic), bf16x2_splat(kSqrt2OverPi)), s));
}
__device__ __forceinline__ std::uint32_t gelu_bf16x2(float a, float b) {
  const __nv_bfloat162 s = __floats2bfloat162_rn(a, b);
  const __nv_bfloat162 t = gelu_tanh_bf16x2(s, __hmul2(s, s));
  const __nv_bfloat162 hs = __hmul2(s, bf16x2_splat(0.5f));
  return bf16x2_bits(__hfma2(hs, t, hs));
}

// The backward's pointwise step for two pre-activations s and their gradients da (fp32):
// ds = da GELU'(s) packed as bf16x2, and (with `a`) GELU(s) packed likewise, from one tanh.
template <bool kWithGelu>
__device__ __forceinline__ std::uint32_t dgelu_bf16x2(float s0, float s1, float da0, float da1, std::uint32_t* a) {
  const __nv_bfloat162 s = __floats2bfloat162_rn(s0, s1);
  const __nv_bfloat162 s2 = __hmul2(s, s);
  const __nv_bfloat162 t = gelu_tanh_bf16x2(s, s2);
  const __nv_bfloat162 half_1pt = __hfma2(t, bf16x2_splat(0.5f), bf16x2_splat(0.5f));
  if constexpr (kWithGelu) *a = bf16x2_bits(__hmul2(s, half_1pt));
  const __nv_bfloat162 one = bf16x2_splat(1.0f);
  const __nv_bfloat162 q = __hfma2(s2, bf16x2_splat(3.0f * kGeluCubic), one);
  const __nv_bfloat162 omt2 = __hfma2(__hneg2(t), t, one);
  const __nv_bfloat162 hs = __hmul2(s, bf16x2_splat(0.5f * kSqrt2OverPi));
  const __nv_bfloat162 g = __hfma2(__hmul2(hs, omt2), q, half_1pt);
  return bf16x2_bits(__hmul2(__floats2bfloat162_rn(da0, da1), g));
}

// pair / k for 0 <= pair < 2^24 and 1 <= k <= 8, without an integer division.
__device__ __forceinline__ int div_small(int pair, int k, float inv_k) {
  int t = __float2int_rz(__int2float_rn(pair) * inv_k);
  t += (t + 1) * k <= pair ? 1 : 0;
  t -= t * k > pair ? 1 : 0;
  return t;
}

// Single-thread TMA and mbarrier helpers (sm_90).
__device__ __forceinline__ void mbar_init(std::uint32_t bar, std::uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_expect_tx(std::uint32_t bar, std::uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ bool mbar_try_wait(std::uint32_t bar, std::uint32_t parity) {
  std::uint32_t done;
  asm volatile(
      "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
      : "=r"(done)
      : "r"(bar), "r"(parity)
      : "memory");
  return done != 0;
}
// Box (c0, c1) of a 2-D tensor map into shared memory at `dst`, completing on `bar`; the weights
// are read once, so they are marked first to leave L2 (the gathered X rows are reused k times).
__device__ __forceinline__ void tma_load_2d(std::uint32_t dst, const CUtensorMap* map, std::uint32_t bar, int c0, int c1,
                                            std::uint64_t policy) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint [%0], [%1, {%3, %4}], "
      "[%2], %5;\n" ::"r"(dst),
      "l"(reinterpret_cast<std::uint64_t>(map)), "r"(bar), "r"(c0), "r"(c1), "l"(policy)
      : "memory");
}

// Shared memory at `src` (the layout tma_load_2d writes) into box (c0, c1) of a tensor map, in
// this thread's open bulk group (bulk_commit() closes it); bulk_wait_read() waits until every
// committed group has read its source.
__device__ __forceinline__ void tma_store_2d(const CUtensorMap* map, std::uint32_t src, int c0, int c1) {
  asm volatile("cp.async.bulk.tensor.2d.global.shared::cta.bulk_group [%0, {%2, %3}], [%1];\n" ::"l"(
                   reinterpret_cast<std::uint64_t>(map)),
               "r"(src), "r"(c0), "r"(c1)
               : "memory");
}
// The same box added to what is there (an element-wise reduction in L2, the tensor's type).
__device__ __forceinline__ void tma_add_2d(const CUtensorMap* map, std::uint32_t src, int c0, int c1) {
  asm volatile("cp.reduce.async.bulk.tensor.2d.global.shared::cta.add.tile.bulk_group [%0, {%2, %3}], [%1];\n" ::"l"(
                   reinterpret_cast<std::uint64_t>(map)),
               "r"(src), "r"(c0), "r"(c1)
               : "memory");
}
__device__ __forceinline__ void bulk_commit() { asm volatile("cp.async.bulk.commit_group;\n" ::: "memory"); }
__device__ __forceinline__ void bulk_wait_read() { asm volatile("cp.async.bulk.wait_group.read 0;\n" ::: "memory"); }
// Waits until at most N of this thread's committed bulk groups are still pending, their writes
// to global memory included.
template <int N>
__device__ __forceinline__ void bulk_wait() {
  asm volatile("cp.async.bulk.wait_group %0;\n" ::"n"(N) : "memory");
}

__device__ __forceinline__ void mbar_arrive(std::uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
// Arrives on `bar` once all of this thread's earlier cp.async copies have landed (the arrival is
// counted in the barrier's expected count).
__device__ __forceinline__ void cp_async_mbar_arrive(std::uint32_t bar) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(bar) : "memory");
}
__device__ __forceinline__ void mbar_wait(std::uint32_t bar, std::uint32_t parity) {
  while (!mbar_try_wait(bar, parity)) {
  }
}
// Barrier of warpgroup wg's 128 threads (named barrier wg + 1; 0 is __syncthreads).
__device__ __forceinline__ void warpgroup_sync(int wg) {
  asm volatile("bar.sync %0, 128;\n" ::"r"(wg + 1) : "memory");
}

// Full/empty mbarrier pairs of a ring of n buffers (consecutive 8-byte barriers): full expects
// `full_count` arrivals, empty `empty_count`.
__device__ __forceinline__ void init_ring(std::uint32_t full, std::uint32_t empty, int n, std::uint32_t full_count,
                                          std::uint32_t empty_count) {
  for (int i = 0; i < n; ++i) {
    mbar_init(full + 8u * i, full_count);
    mbar_init(empty + 8u * i, empty_count);
  }
}
__device__ __forceinline__ void fence_barrier_init() { asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory"); }

// Producer of a ring of weight-chunk stages at shared address `stages` (each K_e rows 64 j ..
// 64 j + 63 as two 64-column halves, then V^T_e columns 64 j .. 64 j + 63, 128 rows: 4 atoms):
// waits until stage g % Stages is released, then loads chunk j of `segment` into it by TMA,
// completing on the stage's full barrier.
template <int Stages>
__device__ __forceinline__ void load_weight_chunk(std::uint32_t stages, int g, std::uint32_t full_w, std::uint32_t empty_w,
                                                  const CUtensorMap* map_k, const CUtensorMap* map_vt, int segment, int j,
                                                  int f, std::uint64_t policy) {
  constexpr std::uint32_t kStageBytes = 4 * kAtom * 2;
  constexpr int kHeadRows = 128;  // V^T_e rows of a segment: the head width h
  const int st = g % Stages;
  mbar_wait(empty_w + 8u * st, static_cast<std::uint32_t>(((g / Stages) & 1) ^ 1));
  const std::uint32_t bar = full_w + 8u * st;
  const std::uint32_t kb = stages + st * kStageBytes;
  const int krow = segment * f + j * 64;
  mbar_expect_tx(bar, kStageBytes);
  tma_load_2d(kb, map_k, bar, 0, krow, policy);
  tma_load_2d(kb + kAtom * 2, map_k, bar, 64, krow, policy);
  tma_load_2d(kb + 2 * kAtom * 2, map_vt, bar, j * 64, segment * kHeadRows, policy);
}

// Four 8x8 bf16 matrices to shared memory (stmatrix): lanes 8 m .. 8 m + 7 give the addresses of
// matrix m's eight rows (16 contiguous bytes each), and every thread's register m holds its two
// elements of matrix m in the accumulator fragment layout (row lane / 4, columns 2 (lane % 4) + 0, 1).
// The transposing form stores each matrix transposed: the addresses are then of its columns.
__device__ __forceinline__ void stmatrix_x4(std::uint32_t addr, std::uint32_t r0, std::uint32_t r1, std::uint32_t r2,
                                            std::uint32_t r3) {
  asm volatile("stmatrix.sync.aligned.m8n8.x4.shared.b16 [%0], {%1, %2, %3, %4};\n" ::"r"(addr), "r"(r0), "r"(r1),
               "r"(r2), "r"(r3)
               : "memory");
}
__device__ __forceinline__ void stmatrix_x4_trans(std::uint32_t addr, std::uint32_t r0, std::uint32_t r1,
                                                  std::uint32_t r2, std::uint32_t r3) {
  asm volatile("stmatrix.sync.aligned.m8n8.x4.trans.shared.b16 [%0], {%1, %2, %3, %4};\n" ::"r"(addr), "r"(r0), "r"(r1),
               "r"(r2), "r"(r3)
               : "memory");
}
// The row (within a warpgroup's 64) and column offset whose address this lane gives when a warp
// stores its 16 accumulator rows x 16 columns as four matrices: (rows 0-7, 8-15) x (columns 0-7, 8-15).
__device__ __forceinline__ int stmatrix_row(int warp, int lane) {
  return (warp % 4) * 16 + ((lane >> 3) & 1) * 8 + (lane & 7);
}
__device__ __forceinline__ int stmatrix_col(int lane) { return (lane >> 4) * 8; }

// Writes a warpgroup's m64nN fp32 accumulator (Regs = N / 2 floats per thread) as bf16
// to rows row0 .. row0 + 63 of a swizzled shared tile (element offset off(r, c)); the warp's place
// in its warpgroup (warp % 4) picks its 16 of those rows. One stmatrix per 16 columns.
template <int Regs, typename Off>
__device__ __forceinline__ void stage_accumulator_rows(const float (&acc)[Regs], __nv_bfloat16* tile, Off off, int row0,
                                                       int warp, int lane) {
  const int r = row0 + stmatrix_row(warp, lane), c = stmatrix_col(lane);
#pragma unroll
  for (int i = 0; i < Regs / 4; i += 2)
    stmatrix_x4(smem_u32(tile + off(r, 8 * i + c)), pack_bf16x2(acc[4 * i + 0], acc[4 * i + 1]),
                pack_bf16x2(acc[4 * i + 2], acc[4 * i + 3]), pack_bf16x2(acc[4 * i + 4], acc[4 * i + 5]),
                pack_bf16x2(acc[4 * i + 6], acc[4 * i + 7]));
}

}  // namespace

// cuTensorMapEncodeTiled, looked up in the driver at run time (no link against libcuda).
using EncodeTiled = CUresult (*)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*, const cuuint64_t*,
                                 const cuuint64_t*, const cuuint32_t*, const cuuint32_t*, CUtensorMapInterleave,
                                 CUtensorMapSwizzle, CUtensorMapL2promotion, CUtensorMapFloatOOBfill);

inline EncodeTiled encode_tiled() {
  static EncodeTiled fn = [] {
    void* ptr = nullptr;
    cudaDriverEntryPointQueryResult found{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &ptr, 12000, cudaEnableDefault, &found) !=
            cudaSuccess ||
        found != cudaDriverEntryPointSuccess)
      return static_cast<EncodeTiled>(nullptr);
    return reinterpret_cast<EncodeTiled>(ptr);
  }();
  return fn;
}

// A row-major bf16 matrix [rows][cols] (rows > 0) read or written in boxes of 64 columns (128
// bytes, the swizzle span) by `box_rows` rows, 128-byte swizzled in shared memory (the layout
// sw64() and wgmma_desc() use).
inline cudaError_t make_map(CUtensorMap* map, const __nv_bfloat16* ptr, long long rows, long long cols, int box_rows) {
  const EncodeTiled encode = encode_tiled();
  if (encode == nullptr) return cudaErrorNotSupported;
  const cuuint64_t dims[2] = {static_cast<cuuint64_t>(cols), static_cast<cuuint64_t>(rows)};
  const cuuint64_t strides[1] = {static_cast<cuuint64_t>(cols) * 2};
  const cuuint32_t box[2] = {64, static_cast<cuuint32_t>(box_rows)};
  const cuuint32_t elem_strides[2] = {1, 1};
  const CUresult r = encode(map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, const_cast<__nv_bfloat16*>(ptr), dims, strides,
                            box, elem_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                            CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  return r == CUDA_SUCCESS ? cudaSuccess : cudaErrorInvalidValue;
}


}  // namespace hpsim::kernels::device
