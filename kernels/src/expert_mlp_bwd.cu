// HP expert MLP backward (expert_mlp.h). On Hopper the fused wgmma kernel of
// expert_mlp_bwd_sm90a.cu runs it (f a multiple of 128); elsewhere (or with
// ExpertMlpAlgo::kMmaSync) two fused mma.sync kernels with recomputation:
//  dX kernel   (per <= 128 rows of a segment, like the forward): per chunk of 32 hidden units
//              S = X K_c^T, dA = dY V_c^T, dS = dA GELU'(S) (registers), dX += dS K_c.
//  dW kernel   (per <= mlp_wgrad_rows() rows of a segment x 128 or 64 hidden units): per 64-row tile
//              S, dA -> A = GELU(S), dS to shared memory, then dK_c += dS^T X and
//              dV_c^T += dY^T A with the gradients in registers. A segment longer than one work
//              item writes fp32 partial sums per item, added in item order afterwards.
// Neither the activation nor dS reaches device memory. Tiles use padded rows (mlp_tile.cuh).
// Symbols as in expert_mlp.h.
#include "device_common.cuh"
#include "expert_mlp_wgmma.h"
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
  __nv_bfloat16* xs = reinterpret_cast<__nv_bfloat16*>(smem_raw);  // [128][kXS]
  __nv_bfloat16* dys = xs + kRows * kXS;                            // [128][kXS]
  __nv_bfloat16* wbuf = dys + kRows * kXS;                          // [kDxStages][kChunkElems]
  if (static_cast<int>(blockIdx.x) >= sched.counters[0]) return;
  const WorkItem item = sched.items[blockIdx.x];
  const int rows = item.row_end - item.row_begin;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int l = item.segment / p.E;
  const __nv_bfloat16* kp = p.wk + static_cast<long long>(item.segment) * p.f * kH;
  const __nv_bfloat16* vtp = p.wv + static_cast<long long>(item.segment) * kH * p.f;
  const int nchunks = p.f / kFc;

  load_rows_gathered(p, xs, item, l, tid);
  load_rows_grouped(p, dys, p.dy, item, tid);
  weight_ring_prologue<kDxStages>(wbuf, kp, vtp, p.f, nchunks, tid);
  const bool active = warp * 16 < rows;
  float dx[16][4];
#pragma unroll
  for (int nt = 0; nt < 16; ++nt)
#pragma unroll
    for (int c = 0; c < 4; ++c) dx[nt][c] = 0.0f;

  for (int j = 0; j < nchunks; ++j) {
    const __nv_bfloat16* kc = weight_ring_step<kDxStages>(wbuf, kp, vtp, p.f, nchunks, j, tid);
    if (!active) continue;
    const __nv_bfloat16* vc = kc + kFc * kKS;  // V_c^T [h][kVS]
    float s[4][4], da[4][4];
    rows_times_chunk<false>(xs, kc, warp, lane, s);    // S = X K_c^T
    rows_times_chunk<true>(dys, vc, warp, lane, da);  // dA = dY V_c (V_c^T stored [h][hidden])
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
    p_times_chunk<true>(pa, kc, lane, dx);  // dX += dS K_c
  }
  cp_async_wait<0>();
  if (active) store_rows(dx, xs, p.dxg, item, warp, lane);
}

// ---------------------------------------------------------------------------------------------
// Weight gradients. WGF hidden units per block (128 where f allows: the X/dY rows of a segment are
// then gathered f/128 times instead of f/64 times).
constexpr int kWgRows = 64;  // rows per tile

template <int WGF>
struct Wg {
  static constexpr int kKS = kH + 8;    // K_c [WGF][kKS]
  static constexpr int kVS = WGF + 8;   // V_c^T [128][kVS]; A and dS [64 rows][kVS]
  static constexpr int kSmemElems = WGF * kKS + kH * kVS + 2 * 2 * kWgRows * kXS + 2 * kWgRows * kVS;
  static constexpr int kNt1 = WGF / 16;  // phase 1: n-tiles (hidden units) per warp, 16 rows x WGF/2
  static constexpr int kNt2 = WGF / 8;   // phase 2: n-tiles per warp of dK and of dV^T
  static constexpr int kMkGroups = WGF / 16;  // dK: warps along the hidden units
};

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
    cp_async16(smem_u32(xs + r * kXS + col), xsrc, valid);
    cp_async16(smem_u32(dys + r * kXS + col), dsrc, valid);
  }
}

template <int WGF>
__global__ void __launch_bounds__(kThreads, 1) expert_mlp_dw_kernel(MlpParams p, Schedule sched) {
  using C = Wg<WGF>;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  __nv_bfloat16* kc = reinterpret_cast<__nv_bfloat16*>(smem_raw);  // [WGF hidden][kKS]
  __nv_bfloat16* vc = kc + WGF * C::kKS;                            // V_c^T [128 h][kVS]
  __nv_bfloat16* xs = vc + kH * C::kVS;                             // [2][64][kXS]
  __nv_bfloat16* dys = xs + 2 * kWgRows * kXS;                      // [2][64][kXS]
  __nv_bfloat16* as = dys + 2 * kWgRows * kXS;                      // [64 rows][kVS]
  __nv_bfloat16* dss = as + kWgRows * C::kVS;                       // [64 rows][kVS]
  if (static_cast<int>(blockIdx.x) >= sched.counters[0]) return;
  const WorkItem item = sched.items[blockIdx.x];
  const int f0 = blockIdx.y * WGF;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int g = lane / 4, t = lane % 4;
  const int l = item.segment / p.E;
  const long long kofs = static_cast<long long>(item.segment) * p.f * kH;  // [f][h] and [h][f] alike

  // K_c: rows f0 .. f0+WGF-1 of K_e; V_c^T: columns f0 .. f0+WGF-1 of V_e^T.
  for (int c = tid; c < WGF * kH / 8; c += kThreads) {
    const int r = c / 16, col = (c % 16) * 8;
    cp_async16(smem_u32(kc + r * C::kKS + col), p.wk + kofs + static_cast<long long>(f0 + r) * kH + col, true);
  }
  for (int c = tid; c < kH * WGF / 8; c += kThreads) {
    const int r = c / (WGF / 8), col = (c % (WGF / 8)) * 8;
    cp_async16(smem_u32(vc + r * C::kVS + col), p.wv + kofs + static_cast<long long>(r) * p.f + f0 + col, true);
  }
  const int ntiles = (item.row_end - item.row_begin + kWgRows - 1) / kWgRows;
  if (ntiles > 0) load_wg_tile(p, xs, dys, item, item.row_begin, l, tid);
  cp_async_commit();

  // Phase 1: rows m1 (16) x hidden n1 (WGF/2). Phase 2: dK: hidden mk (16) x h nk (kNt2*8);
  // dV^T: h mv (16) x all WGF hidden units.
  const int m1 = (warp % 4) * 16, n1 = (warp / 4) * (WGF / 2);
  const int mk = (warp % C::kMkGroups) * 16, nk = (warp / C::kMkGroups) * (C::kNt2 * 8);
  const int mv = warp * 16;
  float dk[C::kNt2][4], dvt[C::kNt2][4];
#pragma unroll
  for (int nt = 0; nt < C::kNt2; ++nt)
#pragma unroll
    for (int c = 0; c < 4; ++c) dk[nt][c] = dvt[nt][c] = 0.0f;

  for (int i = 0; i < ntiles; ++i) {
    __syncthreads();  // tile i-1 consumed: its buffers and A/dS are free
    if (i + 1 < ntiles)
      load_wg_tile(p, xs + ((i + 1) % 2) * kWgRows * kXS, dys + ((i + 1) % 2) * kWgRows * kXS, item,
                   item.row_begin + (i + 1) * kWgRows, l, tid);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    const __nv_bfloat16* xt = xs + (i % 2) * kWgRows * kXS;
    const __nv_bfloat16* dyt = dys + (i % 2) * kWgRows * kXS;
    {
      float s[C::kNt1][4], da[C::kNt1][4];
#pragma unroll
      for (int nt = 0; nt < C::kNt1; ++nt)
#pragma unroll
        for (int q = 0; q < 4; ++q) s[nt][q] = da[nt][q] = 0.0f;
      const __nv_bfloat16* xrow = xt + (m1 + (lane % 16)) * kXS + (lane / 16) * 8;
      const __nv_bfloat16* dyrow = dyt + (m1 + (lane % 16)) * kXS + (lane / 16) * 8;
      const __nv_bfloat16* krow = kc + (n1 + (lane % 8) + (lane / 16) * 8) * C::kKS + ((lane / 8) % 2) * 8;
      const __nv_bfloat16* vrow = vc + ((lane % 8) + ((lane / 8) % 2) * 8) * C::kVS + n1 + (lane / 16) * 8;
#pragma unroll
      for (int kk = 0; kk < kH / 16; ++kk) {
        std::uint32_t ax[4], ad[4];
        ldmatrix_x4(ax, smem_u32(xrow + kk * 16));
        ldmatrix_x4(ad, smem_u32(dyrow + kk * 16));
#pragma unroll
        for (int np = 0; np < C::kNt1 / 2; ++np) {
          std::uint32_t bk[4], bv[4];
          ldmatrix_x4(bk, smem_u32(krow + np * 16 * C::kKS + kk * 16));
          ldmatrix_x4_trans(bv, smem_u32(vrow + kk * 16 * C::kVS + np * 16));
          mma_bf16(s[2 * np], ax, bk[0], bk[1]);
          mma_bf16(s[2 * np + 1], ax, bk[2], bk[3]);
          mma_bf16(da[2 * np], ad, bv[0], bv[1]);
          mma_bf16(da[2 * np + 1], ad, bv[2], bv[3]);
        }
      }
#pragma unroll
      for (int nt = 0; nt < C::kNt1; ++nt) {
        const int col = n1 + nt * 8 + 2 * t;
#pragma unroll
        for (int hh = 0; hh < 2; ++hh) {
          const int row = m1 + g + 8 * hh;
          const float s0 = s[nt][2 * hh], s1 = s[nt][2 * hh + 1];
          *reinterpret_cast<std::uint32_t*>(as + row * C::kVS + col) = pack_bf16x2(gelu(s0), gelu(s1));
          *reinterpret_cast<std::uint32_t*>(dss + row * C::kVS + col) =
              pack_bf16x2(da[nt][2 * hh] * gelu_grad(s0), da[nt][2 * hh + 1] * gelu_grad(s1));
        }
      }
    }
    __syncthreads();
    // Phase 2: dK_c += dS^T X (A = dS^T from [rows][hidden]); dV_c^T += dY^T A (A = dY^T from [rows][h]).
    const __nv_bfloat16* dsrow = dss + ((lane % 8) + (lane / 16) * 8) * C::kVS + mk + ((lane / 8) % 2) * 8;
    const __nv_bfloat16* dytrow = dyt + ((lane % 8) + (lane / 16) * 8) * kXS + mv + ((lane / 8) % 2) * 8;
    const __nv_bfloat16* xbrow = xt + ((lane % 8) + ((lane / 8) % 2) * 8) * kXS + nk + (lane / 16) * 8;
    const __nv_bfloat16* abrow = as + ((lane % 8) + ((lane / 8) % 2) * 8) * C::kVS + (lane / 16) * 8;
#pragma unroll
    for (int ks = 0; ks < kWgRows / 16; ++ks) {
      std::uint32_t ads[4], ady[4];
      ldmatrix_x4_trans(ads, smem_u32(dsrow + ks * 16 * C::kVS));
      ldmatrix_x4_trans(ady, smem_u32(dytrow + ks * 16 * kXS));
#pragma unroll
      for (int np = 0; np < C::kNt2 / 2; ++np) {
        std::uint32_t bx[4], ba[4];
        ldmatrix_x4_trans(bx, smem_u32(xbrow + ks * 16 * kXS + np * 16));
        ldmatrix_x4_trans(ba, smem_u32(abrow + ks * 16 * C::kVS + np * 16));
        mma_bf16(dk[2 * np], ads, bx[0], bx[1]);
        mma_bf16(dk[2 * np + 1], ads, bx[2], bx[3]);
        mma_bf16(dvt[2 * np], ady, ba[0], ba[1]);
        mma_bf16(dvt[2 * np + 1], ady, ba[2], ba[3]);
      }
    }
  }
  cp_async_wait<0>();

  const long long fh = static_cast<long long>(p.f) * kH;
  if (item.slot >= 0) {
    float* base = p.partial + static_cast<long long>(item.slot) * 2 * fh;
#pragma unroll
    for (int nt = 0; nt < C::kNt2; ++nt)
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        const long long ak = static_cast<long long>(f0 + mk + g + 8 * hh) * kH + nk + nt * 8 + 2 * t;
        *reinterpret_cast<float2*>(base + ak) = make_float2(dk[nt][2 * hh], dk[nt][2 * hh + 1]);
        const long long av = fh + static_cast<long long>(mv + g + 8 * hh) * p.f + f0 + nt * 8 + 2 * t;
        *reinterpret_cast<float2*>(base + av) = make_float2(dvt[nt][2 * hh], dvt[nt][2 * hh + 1]);
      }
    return;
  }
  // Stage dK_c [WGF][kXS] and dV_c^T [128][kVS] in the X/dY buffers, then 16-byte stores.
  __syncthreads();
  __nv_bfloat16* stk = xs;   // 2*64*kXS elements >= WGF*kXS
  __nv_bfloat16* stv = dys;  // 2*64*kXS elements >= 128*kVS
#pragma unroll
  for (int nt = 0; nt < C::kNt2; ++nt)
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      *reinterpret_cast<std::uint32_t*>(stk + (mk + g + 8 * hh) * kXS + nk + nt * 8 + 2 * t) =
          pack_bf16x2(dk[nt][2 * hh], dk[nt][2 * hh + 1]);
      *reinterpret_cast<std::uint32_t*>(stv + (mv + g + 8 * hh) * C::kVS + nt * 8 + 2 * t) =
          pack_bf16x2(dvt[nt][2 * hh], dvt[nt][2 * hh + 1]);
    }
  __syncthreads();
  for (int c = tid; c < WGF * kH / 8; c += kThreads) {  // dK rows
    const int r = c / 16, col = (c % 16) * 8;
    *reinterpret_cast<uint4*>(p.dwk + kofs + static_cast<long long>(f0 + r) * kH + col) =
        *reinterpret_cast<const uint4*>(stk + r * kXS + col);
  }
  for (int c = tid; c < kH * WGF / 8; c += kThreads) {  // dV^T rows
    const int r = c / (WGF / 8), col = (c % (WGF / 8)) * 8;
    *reinterpret_cast<uint4*>(p.dwv + kofs + static_cast<long long>(r) * p.f + f0 + col) =
        *reinterpret_cast<const uint4*>(stv + r * C::kVS + col);
  }
}

template <int WGF>
core::Status launch_dw(const MlpParams& p, const Schedule& sched, std::int64_t hidden, cudaStream_t stream) {
  const int smem = Wg<WGF>::kSmemElems * 2;
  HPSIM_CUDA_TRY(cudaFuncSetAttribute(expert_mlp_dw_kernel<WGF>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  expert_mlp_dw_kernel<WGF><<<dim3(static_cast<unsigned>(sched.max_items), static_cast<unsigned>(hidden / WGF)), kThreads, smem,
                              stream>>>(p, sched);
  HPSIM_CUDA_TRY_LAUNCH("expert_mlp_dw_kernel");
  return core::Status::ok();
}

// The two mma.sync kernels (and their schedules).
core::Status launch_mma_sync(const MlpParams& p, const Schedule& rows_sched, const Schedule& wg_sched, std::int64_t hidden,
                             cudaStream_t stream) {
  const ScheduleBuild wg_build{wg_sched, /*item_for_empty=*/true};
  HPSIM_CUDA_TRY(build_schedules(p.offsets, ScheduleBuild{rows_sched, /*item_for_empty=*/false}, &wg_build, stream));

  const int dx_smem = (2 * kRows * kXS + kDxStages * kChunkElems) * 2;
  HPSIM_CUDA_TRY(cudaFuncSetAttribute(expert_mlp_dx_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, dx_smem));
  if (rows_sched.max_items > 0) {
    expert_mlp_dx_kernel<<<static_cast<unsigned>(rows_sched.max_items), kThreads, dx_smem, stream>>>(p, rows_sched);
    HPSIM_CUDA_TRY_LAUNCH("expert_mlp_dx_kernel");
  }
  if (hidden % 128 == 0)
    HPSIM_TRY(launch_dw<128>(p, wg_sched, hidden, stream));
  else
    HPSIM_TRY(launch_dw<64>(p, wg_sched, hidden, stream));
  return core::Status::ok();
}


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
  const Schedule wg_sched = carve_schedule(cursor, args.rows, segments, limits::mlp_wgrad_rows(args.rows, args.hidden));
  p.partial = reinterpret_cast<float*>(cursor);
  // The wgmma kernels divide pair indices by k in fp32 (exact below 2^24 pairs per head) and
  // take 128 hidden units per weight-gradient block.
  const bool wgmma_fits = args.num_tokens * args.top_k < (std::int64_t{1} << 24) && args.hidden % 128 == 0;
  bool use_wgmma = args.algo == ExpertMlpAlgo::kWgmma;
  if (use_wgmma && !wgmma_fits)
    return core::Error{core::ErrorCode::kUnsupported,
                       "ExpertMlpBackwardArgs: the wgmma backward takes num_tokens * top_k < 2^24 and hidden a multiple of 128"};
  if (args.algo == ExpertMlpAlgo::kAuto) use_wgmma = wgmma_fits && wgmma_supported();
  if (use_wgmma) {
    HPSIM_CUDA_TRY(launch_expert_mlp_bwd_wgmma(p, wg_sched, args.rows, stream));  // builds its schedule too
  } else {
    HPSIM_TRY(launch_mma_sync(p, rows_sched, wg_sched, args.hidden, stream));
  }
  const long long fh = args.hidden * args.head_dim;
  // A partial-sum slot holds dK [f][h] and then dV^T [h][f], the layouts of the gradients.
  HPSIM_CUDA_TRY(reduce_slots(p.partial, wg_sched, 2 * fh, StoreBf16Pair{p.dwk, p.dwv, fh}, stream));
  return core::Status::ok();
}

}  // namespace hpsim::kernels
