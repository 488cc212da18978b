// HP expert MLP backward (expert_mlp.h), two fused kernels with recomputation:
//  dX kernel   (per <= 128 rows of a segment, like the forward): per chunk of 32 hidden units
//              S = X K_c^T, dA = dY V_c^T, dS = dA GELU'(S) (registers), dX += dS K_c.
//  dW kernel   (per <= kMlpWgradRows rows of a segment x 64 hidden units): per 64-row tile
//              S, dA -> A = GELU(S), dS to shared memory, then dV_c += A^T dY, dK_c += dS^T X
//              with the 64 x 128 gradients in registers. A segment longer than one work item
//              writes fp32 partial sums per item, added in item order afterwards.
// Neither the activation nor dS reaches device memory. Symbols as in expert_mlp.h.
#include "device_common.cuh"
#include "hpsim/kernels/cuda_check.h"
#include "hpsim/kernels/expert_mlp.h"
#include "kernel_limits.h"
#include "mlp_tile.cuh"
#include "schedule.cuh"

namespace hpsim::kernels {
namespace {

using namespace device;
using namespace device::mlp;

constexpr int kDxStages = 3;

__global__ void __launch_bounds__(kThreads, 1) expert_mlp_dx_kernel(MlpParams p, Schedule sched) {
  extern __shared__ __align__(128) unsigned char smem_raw[];
  __nv_bfloat16* xs = reinterpret_cast<__nv_bfloat16*>(smem_raw);  // [128][128]
  __nv_bfloat16* dys = xs + kRows * kH;                             // [128][128]
  __nv_bfloat16* wbuf = dys + kRows * kH;                           // [kDxStages][2][32][128]
  if (static_cast<int>(blockIdx.x) >= *sched.num_items) return;
  const WorkItem item = sched.items[blockIdx.x];
  const int rows = item.row_end - item.row_begin;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int l = item.segment / p.E;
  const long long wofs = static_cast<long long>(item.segment) * p.f * kH;
  const __nv_bfloat16* kp = p.wk + wofs;
  const __nv_bfloat16* vp = p.wv + wofs;
  const int nchunks = p.f / kFc;

  load_rows_gathered(p, xs, p.x, item, l, tid);
  load_rows_grouped(p, dys, p.dy, item, tid);
  load_weight_chunk(wbuf, kp, vp, 0, tid);
  cp_async_commit();
#pragma unroll
  for (int s = 1; s < kDxStages - 1; ++s) {
    if (s < nchunks) load_weight_chunk(wbuf + s * kChunkElems, kp, vp, s, tid);
    cp_async_commit();
  }
  const bool active = warp * 16 < rows;
  float dx[16][4];
#pragma unroll
  for (int nt = 0; nt < 16; ++nt)
#pragma unroll
    for (int c = 0; c < 4; ++c) dx[nt][c] = 0.0f;

  for (int j = 0; j < nchunks; ++j) {
    cp_async_wait<kDxStages - 2>();
    __syncthreads();
    if (j + kDxStages - 1 < nchunks)
      load_weight_chunk(wbuf + ((j + kDxStages - 1) % kDxStages) * kChunkElems, kp, vp, j + kDxStages - 1, tid);
    cp_async_commit();
    if (!active) continue;
    const __nv_bfloat16* kc = wbuf + (j % kDxStages) * kChunkElems;
    const __nv_bfloat16* vc = kc + kFc * kH;
    float s[4][4], da[4][4];
    rows_times_chunk_t(xs, kc, warp, lane, s);
    rows_times_chunk_t(dys, vc, warp, lane, da);
    std::uint32_t pa[2][4];
#pragma unroll
    for (int ks = 0; ks < 2; ++ks) {
      pa[ks][0] = pack_bf16x2(da[2 * ks][0] * gelu_grad(s[2 * ks][0]), da[2 * ks][1] * gelu_grad(s[2 * ks][1]));
      pa[ks][1] = pack_bf16x2(da[2 * ks][2] * gelu_grad(s[2 * ks][2]), da[2 * ks][3] * gelu_grad(s[2 * ks][3]));
      pa[ks][2] =
          pack_bf16x2(da[2 * ks + 1][0] * gelu_grad(s[2 * ks + 1][0]), da[2 * ks + 1][1] * gelu_grad(s[2 * ks + 1][1]));
      pa[ks][3] =
          pack_bf16x2(da[2 * ks + 1][2] * gelu_grad(s[2 * ks + 1][2]), da[2 * ks + 1][3] * gelu_grad(s[2 * ks + 1][3]));
    }
    chunk_times_weight(pa, kc, lane, dx);  // dX += dS K_c
  }
  cp_async_wait<0>();
  if (active) store_rows(dx, xs, p.dxg, item, warp, lane);
}

// ---------------------------------------------------------------------------------------------
// Weight gradients.
constexpr int kWgF = 64;      // hidden units per block
constexpr int kWgRows = 64;   // rows per tile
// Shared memory (bf16 elements): K_c, V_c [64][128]; X, dY [2][64][128]; A, dS [64][64].
constexpr int kWgSmemElems = 2 * kWgF * kH + 2 * 2 * kWgRows * kH + 2 * kWgRows * kWgF;

__device__ __forceinline__ void load_wg_tile(const MlpParams& p, __nv_bfloat16* xs, __nv_bfloat16* dys,
                                             const WorkItem& item, int row0, int l, int tid) {
#pragma unroll
  for (int i = 0; i < (kWgRows * kH / 8) / kThreads; ++i) {  // 4
    const int c = tid + i * kThreads;
    const int r = c / 16, col = (c % 16) * 8;
    const int row = row0 + r;
    int pair = -1;
    if (row < item.row_end) pair = p.perm[row];
    const bool valid = pair >= 0;
    const __nv_bfloat16* xsrc = p.x + (valid ? ((static_cast<long long>(pair / p.k) * p.L + l) * kH + col) : 0);
    const __nv_bfloat16* dsrc = p.dy + (valid ? (static_cast<long long>(row) * kH + col) : 0);
    cp_async16(smem_u32(xs + swz(r, col, kH)), xsrc, valid);
    cp_async16(smem_u32(dys + swz(r, col, kH)), dsrc, valid);
  }
}

__global__ void __launch_bounds__(kThreads, 1) expert_mlp_dw_kernel(MlpParams p, Schedule sched) {
  extern __shared__ __align__(128) unsigned char smem_raw[];
  __nv_bfloat16* kc = reinterpret_cast<__nv_bfloat16*>(smem_raw);  // [64][128]
  __nv_bfloat16* vc = kc + kWgF * kH;                               // [64][128]
  __nv_bfloat16* xs = vc + kWgF * kH;                               // [2][64][128]
  __nv_bfloat16* dys = xs + 2 * kWgRows * kH;                       // [2][64][128]
  __nv_bfloat16* as = dys + 2 * kWgRows * kH;                       // [64 rows][64 hidden]
  __nv_bfloat16* dss = as + kWgRows * kWgF;                         // [64 rows][64 hidden]
  if (static_cast<int>(blockIdx.x) >= *sched.num_items) return;
  const WorkItem item = sched.items[blockIdx.x];
  const int f0 = blockIdx.y * kWgF;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int g = lane / 4, t = lane % 4;
  const int l = item.segment / p.E;
  const long long wofs = static_cast<long long>(item.segment) * p.f * kH;

  // K_c, V_c: rows f0 .. f0+63.
#pragma unroll
  for (int i = 0; i < (2 * kWgF * kH / 8) / kThreads; ++i) {  // 8
    const int c = tid + i * kThreads;
    const int which = c / (kWgF * 16), rem = c % (kWgF * 16);
    const int r = rem / 16, col = (rem % 16) * 8;
    const __nv_bfloat16* src = (which ? p.wv : p.wk) + wofs + static_cast<long long>(f0 + r) * kH + col;
    cp_async16(smem_u32((which ? vc : kc) + swz(r, col, kH)), src, true);
  }
  const int ntiles = (item.row_end - item.row_begin + kWgRows - 1) / kWgRows;
  if (ntiles > 0) load_wg_tile(p, xs, dys, item, item.row_begin, l, tid);
  cp_async_commit();

  // Phase-1 roles: rows (warp % 4) * 16, hidden units (warp / 4) * 32.
  // Phase-2 roles: hidden units (warp % 4) * 16, columns (warp / 4) * 64.
  const int m1 = (warp % 4) * 16, n1 = (warp / 4) * 32;
  const int m2 = (warp % 4) * 16, n2 = (warp / 4) * 64;
  float dv[8][4], dk[8][4];
#pragma unroll
  for (int nt = 0; nt < 8; ++nt)
#pragma unroll
    for (int c = 0; c < 4; ++c) dv[nt][c] = dk[nt][c] = 0.0f;

  for (int i = 0; i < ntiles; ++i) {
    __syncthreads();  // tile i-1 fully consumed: its buffers and A/dS are free
    if (i + 1 < ntiles)
      load_wg_tile(p, xs + ((i + 1) % 2) * kWgRows * kH, dys + ((i + 1) % 2) * kWgRows * kH, item,
                   item.row_begin + (i + 1) * kWgRows, l, tid);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    const __nv_bfloat16* xt = xs + (i % 2) * kWgRows * kH;
    const __nv_bfloat16* dyt = dys + (i % 2) * kWgRows * kH;
    // Phase 1: S and dA for rows m1.., hidden n1.. (16 x 32 each).
    {
      float s[4][4], da[4][4];
#pragma unroll
      for (int nt = 0; nt < 4; ++nt)
#pragma unroll
        for (int q = 0; q < 4; ++q) s[nt][q] = da[nt][q] = 0.0f;
#pragma unroll
      for (int kk = 0; kk < kH / 16; ++kk) {
        std::uint32_t ax[4], ad[4];
        ldmatrix_x4(ax, smem_u32(xt + swz(m1 + (lane % 16), kk * 16 + (lane / 16) * 8, kH)));
        ldmatrix_x4(ad, smem_u32(dyt + swz(m1 + (lane % 16), kk * 16 + (lane / 16) * 8, kH)));
#pragma unroll
        for (int np = 0; np < 2; ++np) {
          const int brow = n1 + np * 16 + (lane % 8) + (lane / 16) * 8, bcol = kk * 16 + ((lane / 8) % 2) * 8;
          std::uint32_t bk[4], bv[4];
          ldmatrix_x4(bk, smem_u32(kc + swz(brow, bcol, kH)));
          ldmatrix_x4(bv, smem_u32(vc + swz(brow, bcol, kH)));
          mma_bf16(s[2 * np], ax, bk[0], bk[1]);
          mma_bf16(s[2 * np + 1], ax, bk[2], bk[3]);
          mma_bf16(da[2 * np], ad, bv[0], bv[1]);
          mma_bf16(da[2 * np + 1], ad, bv[2], bv[3]);
        }
      }
#pragma unroll
      for (int nt = 0; nt < 4; ++nt) {
        const int col = n1 + nt * 8 + 2 * t;
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int row = m1 + g + 8 * h;
          const float s0 = s[nt][2 * h], s1 = s[nt][2 * h + 1];
          *reinterpret_cast<std::uint32_t*>(as + swz(row, col, kWgF)) = pack_bf16x2(gelu(s0), gelu(s1));
          *reinterpret_cast<std::uint32_t*>(dss + swz(row, col, kWgF)) =
              pack_bf16x2(da[nt][2 * h] * gelu_grad(s0), da[nt][2 * h + 1] * gelu_grad(s1));
        }
      }
    }
    __syncthreads();
    // Phase 2: dV_c += A^T dY, dK_c += dS^T X for hidden m2.., columns n2.. (16 x 64 each).
#pragma unroll
    for (int ks = 0; ks < kWgRows / 16; ++ks) {
      std::uint32_t aa[4], ad[4];
      const int arow = ks * 16 + (lane % 8) + (lane / 16) * 8, acol = m2 + ((lane / 8) % 2) * 8;
      ldmatrix_x4_trans(aa, smem_u32(as + swz(arow, acol, kWgF)));
      ldmatrix_x4_trans(ad, smem_u32(dss + swz(arow, acol, kWgF)));
#pragma unroll
      for (int np = 0; np < 4; ++np) {
        const int brow = ks * 16 + (lane % 8) + ((lane / 8) % 2) * 8, bcol = n2 + np * 16 + (lane / 16) * 8;
        std::uint32_t by[4], bx[4];
        ldmatrix_x4_trans(by, smem_u32(dyt + swz(brow, bcol, kH)));
        ldmatrix_x4_trans(bx, smem_u32(xt + swz(brow, bcol, kH)));
        mma_bf16(dv[2 * np], aa, by[0], by[1]);
        mma_bf16(dv[2 * np + 1], aa, by[2], by[3]);
        mma_bf16(dk[2 * np], ad, bx[0], bx[1]);
        mma_bf16(dk[2 * np + 1], ad, bx[2], bx[3]);
      }
    }
  }
  cp_async_wait<0>();

  if (item.slot >= 0) {
    float* base = p.partial + static_cast<long long>(item.slot) * 2 * p.f * kH;
#pragma unroll
    for (int nt = 0; nt < 8; ++nt)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const long long at = static_cast<long long>(f0 + m2 + g + 8 * h) * kH + n2 + nt * 8 + 2 * t;
        *reinterpret_cast<float2*>(base + at) = make_float2(dk[nt][2 * h], dk[nt][2 * h + 1]);
        *reinterpret_cast<float2*>(base + static_cast<long long>(p.f) * kH + at) = make_float2(dv[nt][2 * h], dv[nt][2 * h + 1]);
      }
    return;
  }
  // Stage both 64 x 128 bf16 tiles in the X/dY buffers, then 16-byte stores.
  __syncthreads();
  __nv_bfloat16* stk = xs;
  __nv_bfloat16* stv = dys;
#pragma unroll
  for (int nt = 0; nt < 8; ++nt)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int row = m2 + g + 8 * h, col = n2 + nt * 8 + 2 * t;
      *reinterpret_cast<std::uint32_t*>(stk + swz(row, col, kH)) = pack_bf16x2(dk[nt][2 * h], dk[nt][2 * h + 1]);
      *reinterpret_cast<std::uint32_t*>(stv + swz(row, col, kH)) = pack_bf16x2(dv[nt][2 * h], dv[nt][2 * h + 1]);
    }
  __syncthreads();
#pragma unroll
  for (int i = 0; i < (2 * kWgF * kH / 8) / kThreads; ++i) {  // 8
    const int c = tid + i * kThreads;
    const int which = c / (kWgF * 16), rem = c % (kWgF * 16);
    const int r = rem / 16, col = (rem % 16) * 8;
    __nv_bfloat16* dst = (which ? p.dwv : p.dwk) + wofs + static_cast<long long>(f0 + r) * kH + col;
    *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>((which ? stv : stk) + swz(r, col, kH));
  }
}

struct StoreMlpWeightGrads {
  __nv_bfloat16* dwk;
  __nv_bfloat16* dwv;
  long long fh;
  __device__ void operator()(int s, long long i, float v) const {
    if (i < fh)
      dwk[s * fh + i] = __float2bfloat16_rn(v);
    else
      dwv[s * fh + i - fh] = __float2bfloat16_rn(v);
  }
};

}  // namespace

core::Status launch(const ExpertMlpBackwardArgs& args, void* workspace, Stream stream_handle) {
  HPSIM_TRY(can_implement(args));
  auto stream = static_cast<cudaStream_t>(stream_handle);
  MlpParams p = make_mlp_params(args.x, args.offsets, args.perm, args.w_k, args.w_v, args.num_heads, args.num_tokens,
                                args.top_k, args.num_experts, args.hidden);
  p.dy = nv(args.dy);
  p.dxg = nv(args.dx_grouped);
  p.dwk = nv(args.d_w_k);
  p.dwv = nv(args.d_w_v);
  const long long segments = args.num_heads * args.num_experts;
  char* cursor = static_cast<char*>(workspace);
  const Schedule rows_sched = carve_schedule(cursor, args.rows, segments, kRows);
  const Schedule wg_sched = carve_schedule(cursor, args.rows, segments, limits::kMlpWgradRows);
  p.partial = reinterpret_cast<float*>(cursor);
  HPSIM_CUDA_TRY(build_schedule(args.offsets, rows_sched, /*item_for_empty=*/false, stream));
  HPSIM_CUDA_TRY(build_schedule(args.offsets, wg_sched, /*item_for_empty=*/true, stream));

  const int dx_smem = (2 * kRows * kH + kDxStages * kChunkElems) * 2;
  HPSIM_CUDA_TRY(cudaFuncSetAttribute(expert_mlp_dx_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, dx_smem));
  if (rows_sched.max_items > 0) {
    expert_mlp_dx_kernel<<<static_cast<unsigned>(rows_sched.max_items), kThreads, dx_smem, stream>>>(p, rows_sched);
    HPSIM_CUDA_TRY_LAUNCH("expert_mlp_dx_kernel");
  }
  const int dw_smem = kWgSmemElems * 2;
  HPSIM_CUDA_TRY(cudaFuncSetAttribute(expert_mlp_dw_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, dw_smem));
  expert_mlp_dw_kernel<<<dim3(static_cast<unsigned>(wg_sched.max_items), static_cast<unsigned>(args.hidden / kWgF)), kThreads,
                         dw_smem, stream>>>(p, wg_sched);
  HPSIM_CUDA_TRY_LAUNCH("expert_mlp_dw_kernel");
  const long long fh = args.hidden * args.head_dim;
  reduce_slots_kernel<<<dim3(static_cast<unsigned>(segments), 8), 256, 0, stream>>>(
      p.partial, wg_sched.slot_begin, 2 * fh, StoreMlpWeightGrads{p.dwk, p.dwv, fh});
  HPSIM_CUDA_TRY_LAUNCH("reduce_slots_kernel");
  return core::Status::ok();
}

}  // namespace hpsim::kernels
