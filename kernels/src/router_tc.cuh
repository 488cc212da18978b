#pragma once
// Router forward on tensor cores with fp32 accuracy ("bf16x3", router.h RouterAlgo::kBf16x3).
// x is bf16, so it is exact as an mma operand; each fp32 router weight is split into three bf16
// parts w = hi + mid + lo (24 significant bits, as many as fp32 has), and a score is
//   sum_i x_i hi_i + x_i mid_i + x_i lo_i
// with exact products and fp32 accumulation: the accuracy of a plain fp32 dot product, at the
// bf16 tensor-core rate / 3. Block = 128 tokens of one head (4 warps x 32 tokens), x resident in
// shared memory (dim <= 256), experts in chunks of 64 streamed through a 3-stage cp.async
// pipeline (K steps of 64). Per-thread top-k lists as in the FFMA kernel, merged per token at the
// end. Private to router_fwd.cu.

#include <cfloat>

#include "device_common.cuh"
#include "hpsim/kernels/cuda_check.h"
#include "router_select.cuh"
#include "router_wgmma.h"

namespace hpsim::kernels::device {

namespace router_tc {

constexpr int kTokens = 128;
constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kChunk = 64;   // experts per chunk
constexpr int kStepK = 64;   // K per stage
constexpr int kStages = 3;
constexpr int kStageElems = 3 * kChunk * kStepK;  // bf16 per stage

__global__ void split_weight_kernel(const float* __restrict__ w, long long count, __nv_bfloat16* __restrict__ parts) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const float v = w[i];
    const __nv_bfloat16 hi = __float2bfloat16_rn(v);
    const float r1 = v - __bfloat162float(hi);
    const __nv_bfloat16 mid = __float2bfloat16_rn(r1);
    const float r2 = r1 - __bfloat162float(mid);
    parts[i] = hi;
    parts[count + i] = mid;
    parts[2 * count + i] = __float2bfloat16_rn(r2);
  }
}

using router_select::insert_sorted;
using router_select::reset_lists;

template <int KMAX>
__global__ void __launch_bounds__(kThreads, 2) router_bf16x3_kernel(RouterTcParams p) {
  extern __shared__ __align__(128) unsigned char smem_raw[];
  __nv_bfloat16* xs = reinterpret_cast<__nv_bfloat16*>(smem_raw);  // [128][dim] swizzled
  __nv_bfloat16* wst = xs + kTokens * p.dim;                        // [kStages][3][64][64] swizzled
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int g = lane / 4, tq = lane % 4;
  const int l = blockIdx.y;
  const int t0 = blockIdx.x * kTokens;
  const int k_steps = p.dim / kStepK;
  const int num_chunks = (p.E + kChunk - 1) / kChunk;
  const int total = num_chunks * k_steps;
  const long long part_stride = static_cast<long long>(p.L) * p.E * p.dim;

  // x tile (once).
  {
    const int chunks_per_row = p.dim / 8;
    for (int c = tid; c < kTokens * chunks_per_row; c += kThreads) {
      const int r = c / chunks_per_row, col = (c % chunks_per_row) * 8;
      const int t = t0 + r;
      const __nv_bfloat16* src = p.x + (static_cast<long long>(t < p.N ? t : 0) * p.L + l) * p.dim + col;
      cp_async16(smem_u32(xs + swz(r, col, p.dim)), src, t < p.N);
    }
  }
  auto load_stage = [&](int step) {
    const int chunk = step / k_steps, k0 = (step % k_steps) * kStepK;
    __nv_bfloat16* dst = wst + (step % kStages) * kStageElems;
#pragma unroll
    for (int i = 0; i < (3 * kChunk * kStepK / 8) / kThreads; ++i) {  // 12 chunks of 16 B per thread
      const int c = tid + i * kThreads;
      const int part = c / (kChunk * 8), rem = c % (kChunk * 8);
      const int r = rem / 8, col = (rem % 8) * 8;
      const int e = chunk * kChunk + r;
      const __nv_bfloat16* src =
          p.w_parts + part * part_stride + (static_cast<long long>(l) * p.E + (e < p.E ? e : 0)) * p.dim + k0 + col;
      cp_async16(smem_u32(dst + part * kChunk * kStepK + swz(r, col, kStepK)), src, e < p.E);
    }
  };

  float lv[4][KMAX];
  int li[4][KMAX];
  float thr[4];
  float bufv[4][16];  // per token, this chunk's candidates at or above thr
  int bufe[4][16];
  reset_lists(lv, li, thr);
  float acc[2][8][4];
#pragma unroll
  for (int mt = 0; mt < 2; ++mt)
#pragma unroll
    for (int nt = 0; nt < 8; ++nt)
#pragma unroll
      for (int c = 0; c < 4; ++c) acc[mt][nt][c] = 0.0f;

  // ldmatrix addresses, per thread: the swizzles of swz() reduce to a row term and, per k16 step
  // kk, an XOR term below 64 (kx0 is a multiple of 64 and rows start at multiples of 8), so each
  // address is one add and the weight parts and expert tiles are immediate offsets.
  std::uint32_t a_row[2], a_col[4], b_col[4];
#pragma unroll
  for (int mt = 0; mt < 2; ++mt) a_row[mt] = smem_u32(xs) + 2u * static_cast<std::uint32_t>((warp * 32 + mt * 16 + lane % 16) * p.dim);
#pragma unroll
  for (int kk = 0; kk < 4; ++kk) {
    a_col[kk] = 16u * static_cast<std::uint32_t>((2 * kk + lane / 16) ^ (lane % 8));
    b_col[kk] = 16u * static_cast<std::uint32_t>((2 * kk + (lane / 8) % 2) ^ (lane % 8)) + 128u * (lane % 8 + (lane / 16) * 8);
  }

  load_stage(0);
  cp_async_commit();
  if (total > 1) load_stage(1);
  cp_async_commit();
  for (int step = 0; step < total; ++step) {
    cp_async_wait<1>();
    __syncthreads();
    if (step + 2 < total) load_stage(step + 2);
    cp_async_commit();
    const std::uint32_t wb = smem_u32(wst + (step % kStages) * kStageElems);
    const std::uint32_t kx0_bytes = 2u * static_cast<std::uint32_t>((step % k_steps) * kStepK);
#pragma unroll
    for (int kk = 0; kk < kStepK / 16; ++kk) {
      std::uint32_t a[2][4];
#pragma unroll
      for (int mt = 0; mt < 2; ++mt) ldmatrix_x4(a[mt], a_row[mt] + kx0_bytes + a_col[kk]);  // = xs + swz(row, col, dim)
      const std::uint32_t b_at = wb + b_col[kk];  // = stage + swz(np * 16 + row, kk * 16 + col, 64) at np = 0
#pragma unroll
      for (int part = 2; part >= 0; --part) {  // smallest part first
#pragma unroll
        for (int np = 0; np < 4; ++np) {
          std::uint32_t b[4];
          ldmatrix_x4(b, b_at + 2u * (part * kChunk * kStepK + np * 16 * kStepK));
#pragma unroll
          for (int mt = 0; mt < 2; ++mt) {
            mma_bf16(acc[mt][2 * np], a[mt], b[0], b[1]);
            mma_bf16(acc[mt][2 * np + 1], a[mt], b[2], b[3]);
          }
        }
      }
    }
    if (step % k_steps == k_steps - 1) {
      // Candidates at or above the token's threshold go to a small buffer (predicated stores, no
      // divergent insertion per score); the buffer is then merged into the sorted lists and the
      // threshold raised to the best of the quad's KMAX-th scores (a lower bound of the token's
      // k-th best, so no candidate of the final top-k is ever dropped).
      const int chunk = step / k_steps;
      int cnt[4] = {0, 0, 0, 0};
#pragma unroll
      for (int nt = 0; nt < 8; ++nt)
#pragma unroll
        for (int c = 0; c < 2; ++c) {
          const int e = chunk * kChunk + nt * 8 + 2 * tq + c;
          if (e < p.E) {
            const float b = p.bias != nullptr ? __ldg(p.bias + static_cast<long long>(l) * p.E + e) : 0.0f;
#pragma unroll
            for (int mt = 0; mt < 2; ++mt)
#pragma unroll
              for (int rh = 0; rh < 2; ++rh) {
                const int i = mt * 2 + rh;
                const float v = acc[mt][nt][rh * 2 + c] + b;
                if (v >= thr[i]) {
                  bufv[i][cnt[i]] = v;
                  bufe[i][cnt[i]] = e;
                  ++cnt[i];
                }
              }
          }
        }
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        for (int q = 0; q < cnt[i]; ++q) insert_sorted<KMAX>(lv[i], li[i], bufv[i][q], bufe[i][q]);
        float th = lv[i][KMAX - 1];
        th = fmaxf(th, __shfl_xor_sync(0xffffffffu, th, 1));
        th = fmaxf(th, __shfl_xor_sync(0xffffffffu, th, 2));
        thr[i] = th;
      }
#pragma unroll
      for (int mt = 0; mt < 2; ++mt)
#pragma unroll
        for (int nt = 0; nt < 8; ++nt)
#pragma unroll
          for (int c = 0; c < 4; ++c) acc[mt][nt][c] = 0.0f;
    }
  }
  cp_async_wait<0>();
  __syncthreads();

  // Merge the 4 lists of each token (the 4 threads of a quad).
  float* cand_v = reinterpret_cast<float*>(smem_raw);  // [128][4][KMAX]
  int* cand_e = reinterpret_cast<int*>(cand_v + kTokens * 4 * KMAX);
  router_select::store_quad_lists<KMAX>(cand_v, cand_e, lv, li, tq,
                                        [&](int mt, int rh) { return warp * 32 + mt * 16 + rh * 8 + g; });
  __syncthreads();
  const int t = t0 + tid;
  if (t < p.N) {
    float sel_v[KMAX];
    int sel_e[KMAX];
    router_select::merge_sorted_lists<KMAX, 4>(cand_v + tid * 4 * KMAX, cand_e + tid * 4 * KMAX, 4, KMAX, sel_v, sel_e);
    router_select::finish_token<KMAX>(p, l, t, sel_v, sel_e);
  }
}

template <int KMAX>
core::Status launch_kmax(const RouterTcParams& p, cudaStream_t stream) {
  const int pipe_bytes = (kTokens * p.dim + kStages * kStageElems) * 2;
  const int merge_bytes = kTokens * 4 * KMAX * 8;
  const int smem = pipe_bytes > merge_bytes ? pipe_bytes : merge_bytes;
  HPSIM_CUDA_TRY(cudaFuncSetAttribute(router_bf16x3_kernel<KMAX>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  const dim3 grid((p.N + kTokens - 1) / kTokens, p.L);
  router_bf16x3_kernel<KMAX><<<grid, kThreads, smem, stream>>>(p);
  HPSIM_CUDA_TRY_LAUNCH("router_bf16x3_kernel");
  return core::Status::ok();
}

}  // namespace router_tc

// Splits the fp32 weights into their three bf16 parts at the start of the workspace (3 * L * E * dim
// bf16) and points p.w_parts at them.
inline core::Status split_weight_parts(RouterTcParams& p, void* workspace, cudaStream_t stream) {
  const long long count = static_cast<long long>(p.L) * p.E * p.dim;
  auto* parts = static_cast<__nv_bfloat16*>(workspace);
  router_tc::split_weight_kernel<<<grid_1d(count, 256 * 4), 256, 0, stream>>>(p.weight, count, parts);
  HPSIM_CUDA_TRY_LAUNCH("split_weight_kernel");
  p.w_parts = parts;
  return core::Status::ok();
}

// Routes with the mma.sync kernel from p.w_parts (dim <= 256).
inline core::Status launch_router_bf16x3_mma(const RouterTcParams& p, cudaStream_t stream) {
  if (p.k <= 2) return router_tc::launch_kmax<2>(p, stream);
  if (p.k <= 4) return router_tc::launch_kmax<4>(p, stream);
  return router_tc::launch_kmax<8>(p, stream);
}

}  // namespace hpsim::kernels::device
