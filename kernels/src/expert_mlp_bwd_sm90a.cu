// HP expert MLP backward on wgmma (sm_90a): one persistent, warp-specialised kernel that reads
// each expert's weights once and writes its gradients once. A producer warpgroup (one thread
// streams the weights by TMA, two warps gather X and dY rows by cp.async) feeds two consumer
// warpgroups through mbarriers. A block unit is one weight-gradient item (up to mlp_wgrad_rows()
// rows of a segment), handed out dynamically, heavy items first; the block walks its f / 128
// chunks of hidden units one after the other (64 per consumer warpgroup, so its dK and dV rows
// stay in registers), and per 64-row tile:
//   S^T = K_c X^T, dA^T = V_c dY^T      wgmma m64n64k16 x 8 each (V_c M-major)
//   A^T = GELU(S^T), dS^T = dA^T GELU'(S^T)   A^T as register operands, dS^T to shared memory
//   dV_c += A^T dY, dK_c += dS^T X      wgmma m64n128k16 x 4 each (tiles N-major)
//   dX[:, 64 wg ..] (+)= dS K_c[:, 64 wg ..]  wgmma m64n64k16 x 8 over both warpgroups' dS
// dX is staged in the previous tile's dS buffer and summed over the chunks in device memory: the
// first chunk stores it by TMA, later ones add to it in L2 by TMA reductions (bf16, in chunk
// order). dS, dX and the gradients reach shared memory by stmatrix. S and dA are computed once per
// element (10 P h f FLOPs executed for 8 useful). The X and dY tiles serve both as K-major
// operands (rows along N) and as N-major ones (rows along K): the same 128-byte-swizzled bytes, two
// descriptors. Neither the activation nor dS reaches device memory. Symbols as in expert_mlp.h.
// Compiled for sm_90a only.
#include "expert_mlp_wgmma.h"
#include "kernel_limits.h"
#include "sm90.cuh"

namespace hpsim::kernels::device {
namespace {

using namespace mlp;

constexpr int kGroups = 2;                          // consumer warpgroups
constexpr int kConsumerWarps = kGroups * 4;
constexpr int kThreadsB = kGroups * 128 + 128;      // + the producer warpgroup
constexpr int kGatherLanes = 2 * 32;                // producer warps 1 and 2
constexpr std::uint32_t kStepBytes = 16 * 128;      // a k16 step of an MN-major operand: 16 rows of 128 bytes

// Registers: launched at 168 per thread (384 threads); the producer gives some back so the two
// consumer warpgroups can hold more: 2 x 128 x kConsumer + 128 x kProducer <= 3 x 128 x 168.
template <int kProducer>
__device__ __forceinline__ void producer_registers() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kProducer) : "memory");
}
template <int kConsumer>
__device__ __forceinline__ void consumer_registers() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kConsumer) : "memory");
}

__device__ __forceinline__ std::uint64_t desc_add(std::uint64_t desc, std::uint32_t bytes) {
  return desc + static_cast<std::uint64_t>(bytes >> 4);
}

// One warp: rows r0 .. r0 + 31 of a tile whose row r is grouped row row_begin + r (valid below
// row_end). gather_token: the lane's row's token (perm / k), or -1 past the end or for perm = -1;
// loaded before the tile's buffer is free, so the load's latency overlaps the wait.
__device__ __forceinline__ int gather_token(const MlpParams& p, int row_begin, int row_end, int r0, float inv_k,
                                            int lane) {
  const int row = row_begin + r0 + lane;
  const int pair = row < row_end ? p.perm[row] : -1;
  return pair >= 0 ? div_small(pair, p.k, inv_k) : -1;
}
// Then X through the tokens (the sub-token of head l) and dY in grouped order, each to
// dst + off(r, c); rows without a token are zero. Two rows per cp.async step (16 lanes x 16 bytes each).
template <typename Off>
__device__ __forceinline__ void gather_x_dy_32(const MlpParams& p, int tok, int row_begin, int r0, int l,
                                               __nv_bfloat16* dst_x, __nv_bfloat16* dst_dy, int lane, Off off) {
  const int cc = lane % 16;
#pragma unroll 4
  for (int half = 0; half < 16; ++half) {
    const int from = 2 * half + lane / 16;
    const int r = r0 + from;
    const int t = __shfl_sync(0xffffffffu, tok, from);
    const __nv_bfloat16* xsrc = p.x + (t >= 0 ? ((static_cast<long long>(t) * p.L + l) * kH + cc * 8) : 0);
    const __nv_bfloat16* dsrc = p.dy + (t >= 0 ? (static_cast<long long>(row_begin + r) * kH + cc * 8) : 0);
    cp_async16(smem_u32(dst_x + off(r, cc * 8)), xsrc, t >= 0);
    cp_async16(smem_u32(dst_dy + off(r, cc * 8)), dsrc, t >= 0);
  }
}

namespace fused {

constexpr int kFc = kGroups * 64;     // 128 hidden units per chunk (64 per consumer warpgroup)
constexpr int kTile = 64;             // rows per tile
constexpr int kWElems = 8 * kAtom;    // K_c [2 h halves][128 f][64] + V^T_c [2 f halves][128 h][64] (64 KB)
constexpr int kWBufs = 2;
constexpr int kTElems = 4 * kAtom;    // X tile [2 h halves][64 rows][64] + dY tile alike (32 KB)
constexpr int kTBufs = 2;
constexpr int kSElems = 2 * kAtom;  // dS^T of a tile [128 f][64 rows] (16 KB): warpgroup wg's rows at wg * kAtom;
                                    // the next tile's dX [64 rows][64 h] is staged in the same halves
constexpr int kSBufs = 2;
constexpr int kSmemBytes = (kWBufs * kWElems + kTBufs * kTElems + kSBufs * kSElems) * 2 + 1024;  // 225 KB
constexpr int kURing = 4;
constexpr int kConsumersBarrier = 3;  // named barrier of both consumer warpgroups (1 and 2: warpgroup_sync)

struct Barriers {
  std::uint64_t full_w[kWBufs], empty_w[kWBufs], full_t[kTBufs], empty_t[kTBufs];
  std::uint64_t full_u[kURing], empty_u[kURing];
  int unit[kURing];
};

__device__ __forceinline__ void consumers_sync() {
  asm volatile("bar.sync %0, %1;\n" ::"n"(kConsumersBarrier), "n"(kGroups * 128) : "memory");
}

__device__ __forceinline__ int next_unit(Barriers& bars, int u, int lane) {
  const int r = u % kURing;
  mbar_wait(smem_u32(&bars.full_u[r]), static_cast<std::uint32_t>((u / kURing) & 1));
  const int id = bars.unit[r];
  __syncwarp();
  if (lane == 0) mbar_arrive(smem_u32(&bars.empty_u[r]));
  return id;
}

// Eight bf16 at `at`: stored, or added in L2 (reductions without a return).
__device__ __forceinline__ void store_or_add_bf16x8(__nv_bfloat16* at, const uint4& v, bool add) {
  if (add) {
    const std::uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int i = 0; i < 4; ++i)
      asm volatile("red.global.add.noftz.bf16x2 [%0], %1;\n" ::"l"(at + 2 * i), "r"(w[i]) : "memory");
  } else {
    *reinterpret_cast<uint4*>(at) = v;
  }
}

__device__ __forceinline__ int toff64(int r, int c) { return (c >> 6) * kAtom + sw64(r, c & 63); }
__device__ __forceinline__ int tiles_of(const WorkItem& w) { return (w.row_end - w.row_begin + kTile - 1) / kTile; }

// Units (items) are handed out dynamically: the producer thread takes the next id from a global
// counter and publishes it in a ring that the gathering warps and the consumers read in the same
// order; a static assignment would leave a long tail when routing is skewed. The g-th weight
// chunk of a block uses weight buffer g % 2, the t-th tile of its walk tile buffer and dS buffer
// t % 2. A unit of an empty segment reads no weights; its consumers store zero gradients. The
// two consumer warpgroups meet once per tile (dX needs both halves of the chunk's dS: each issues
// dX's steps over its own half first) and once per chunk (before the gradients are staged in the
// weight buffer that the other's dX read). A tile's dX is stored by the first chunk and added to
// by the later ones, by the same thread in chunk order: its TMA boxes each only after that thread
// has seen the previous chunk's writes complete, its last rows % 8 by the same thread's stores
// and reductions in program order; so the order of the sum is fixed.
__global__ void __launch_bounds__(kThreadsB, 1)
    expert_mlp_bwd_fused_kernel(MlpParams p, Schedule sched, const __grid_constant__ CUtensorMap map_k,
                                const __grid_constant__ CUtensorMap map_vt, const __grid_constant__ CUtensorMap map_dk,
                                const __grid_constant__ CUtensorMap map_dvt, const __grid_constant__ CUtensorMap map_dx,
                                const __grid_constant__ CUtensorMap map_dx8) {
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  __shared__ Barriers bars;
  const std::uint32_t misalign = smem_u32(smem_raw) & 1023u;
  __nv_bfloat16* base = reinterpret_cast<__nv_bfloat16*>(smem_raw + (misalign ? 1024u - misalign : 0u));
  __nv_bfloat16* wbufs = base;
  __nv_bfloat16* tbufs = base + kWBufs * kWElems;
  __nv_bfloat16* sbufs = tbufs + kTBufs * kTElems;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int nchunks = p.f / kFc;
  griddep_wait();  // launched while the schedule build runs
  const int heavy = sched.counters[3];
  const int num_units = item_count(sched);
  HPSIM_DEVICE_ASSERT(num_units <= sched.max_items);
  if (static_cast<int>(blockIdx.x) >= num_units) return;
  const std::uint32_t full_w = smem_u32(bars.full_w), empty_w = smem_u32(bars.empty_w);
  const std::uint32_t full_t = smem_u32(bars.full_t), empty_t = smem_u32(bars.empty_t);
  if (tid == 0) {
    init_ring(full_w, empty_w, kWBufs, 1, kConsumerWarps);
    init_ring(full_t, empty_t, kTBufs, kGatherLanes, kConsumerWarps);
    init_ring(smem_u32(bars.full_u), smem_u32(bars.empty_u), kURing, 1, kConsumerWarps + 2);
    fence_barrier_init();
  }
  __syncthreads();

  if (warp >= kConsumerWarps) {  // ---- producer warpgroup ----
    producer_registers<56>();
    const int pw = warp - kConsumerWarps;
    if (pw == 0) {
      if (lane != 0) return;
      std::uint64_t policy = 0;
      asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;\n" : "=l"(policy));
      int gw = 0;
      for (int u = 0;; ++u) {
        const int r = u % kURing;
        mbar_wait(smem_u32(&bars.empty_u[r]), static_cast<std::uint32_t>(((u / kURing) & 1) ^ 1));
        const int taken = atomicAdd(sched.counters + 4, 1);
        const int unit = taken < num_units ? taken : -1;
        bars.unit[r] = unit;
        mbar_arrive(smem_u32(&bars.full_u[r]));
        if (unit < 0) break;
        const WorkItem w = item_at(sched, heavy, unit);
        if (w.row_end == w.row_begin) continue;  // an empty segment: zero gradients, no weights read
        for (int j = 0; j < nchunks; ++j, ++gw) {
          const int b = gw & 1;
          mbar_wait(empty_w + 8u * b, static_cast<std::uint32_t>(((gw >> 1) & 1) ^ 1));
          const std::uint32_t bar = full_w + 8u * b;
          const std::uint32_t wb = smem_u32(wbufs + b * kWElems);
          const int f0 = j * kFc;
          mbar_expect_tx(bar, kWElems * 2);
          tma_load_2d(wb, &map_k, bar, 0, w.segment * p.f + f0, policy);
          tma_load_2d(wb + 2 * kAtom * 2, &map_k, bar, 64, w.segment * p.f + f0, policy);
          tma_load_2d(wb + 4 * kAtom * 2, &map_vt, bar, f0, w.segment * kH, policy);
          tma_load_2d(wb + 6 * kAtom * 2, &map_vt, bar, f0 + 64, w.segment * kH, policy);
        }
      }
      return;
    }
    // Warps 1 and 2: rows 32 (pw - 1) .. 32 pw - 1 of every tile, once per chunk; warp 3 idles.
    if (pw == 3) return;
    const float inv_k = 1.0f / static_cast<float>(p.k);
    int tc = 0;
    for (int u = 0;; ++u) {
      const int unit = next_unit(bars, u, lane);
      if (unit < 0) break;
      const WorkItem w = item_at(sched, heavy, unit);
      const int l = w.segment / p.E;
      const int ntiles = tiles_of(w);
      for (int j = 0; j < (ntiles > 0 ? nchunks : 0); ++j)
        for (int t = 0; t < ntiles; ++t, ++tc) {
          const int b = tc & 1;
          const int tok = gather_token(p, w.row_begin + t * kTile, w.row_end, 32 * (pw - 1), inv_k, lane);
          mbar_wait(empty_t + 8u * b, static_cast<std::uint32_t>(((tc >> 1) & 1) ^ 1));
          __nv_bfloat16* ts = tbufs + b * kTElems;
          gather_x_dy_32(p, tok, w.row_begin + t * kTile, 32 * (pw - 1), l, ts, ts + 2 * kAtom, lane,
                         [](int r, int c) { return toff64(r, c); });
          cp_async_mbar_arrive(full_t + 8u * b);
        }
    }
    cp_async_wait<0>();
    return;
  }

  // ---- consumer warpgroups: hidden units 64 wg .. 64 wg + 63 of each chunk ----
  consumer_registers<224>();
  const int wg = warpgroup_index(), ltid = tid % 128;
  const int g8 = lane / 4, t4 = lane % 4;
  const int frow = (warp % 4) * 16 + g8;  // accumulator rows frow and frow + 8
  const int srow = stmatrix_row(warp, lane), scol = stmatrix_col(lane);  // this lane's stmatrix address
  const long long fh = static_cast<long long>(p.f) * kH;
  const bool stores_gradients = warp % 4 == 0 && lane == 0;  // the thread that issues its warpgroup's TMA stores
  int pending = -1;  // that thread: the weight buffer whose gradient stores may still be reading it
  int gw = 0, tc = 0;
  for (int u = 0;; ++u) {
    const int unit = next_unit(bars, u, lane);
    if (unit < 0) break;
    const WorkItem w = item_at(sched, heavy, unit);
    if (w.row_end == w.row_begin) {
      // Zero gradients, each warpgroup a contiguous 16 KB of dK and of dV^T per chunk.
      const uint4 zero = make_uint4(0u, 0u, 0u, 0u);
      for (int j = 0; j < nchunks; ++j) {
        const long long at = static_cast<long long>(w.segment) * fh + static_cast<long long>(j * kFc + wg * 64) * kH;
        uint4* zk = reinterpret_cast<uint4*>(p.dwk + at);
        uint4* zv = reinterpret_cast<uint4*>(p.dwv + at);
#pragma unroll
        for (int i = 0; i < 8; ++i) {
          zk[ltid + 128 * i] = zero;
          zv[ltid + 128 * i] = zero;
        }
      }
      continue;
    }
    const int ntiles = tiles_of(w);
    for (int j = 0; j < nchunks; ++j, ++gw) {
      const int b = gw & 1;
      __nv_bfloat16* wb = wbufs + b * kWElems;
      __nv_bfloat16* kreg = wb + wg * kAtom;  // this warpgroup's K_c rows, h half 0 (half 1 at + 2 atoms)
      __nv_bfloat16* vreg = wb + 4 * kAtom + wg * 2 * kAtom;  // this warpgroup's V^T_c columns [128 h][64]
      const std::uint64_t desc_k = wgmma_desc(kreg);
      const std::uint64_t desc_v = wgmma_desc_mn(vreg, 0);
      const std::uint64_t desc_kn = wgmma_desc_mn(wb + wg * 2 * kAtom, 0);  // K_c [128 f][h half wg] as dX's B
      mbar_wait(full_w + 8u * b, static_cast<std::uint32_t>((gw >> 1) & 1));

      float dk[64], dv[64];
#pragma unroll
      for (int i = 0; i < 64; ++i) dk[i] = dv[i] = 0.0f;
      for (int t = 0; t < ntiles; ++t, ++tc) {
        const int tb = tc & 1;
        mbar_wait(full_t + 8u * tb, static_cast<std::uint32_t>((tc >> 1) & 1));
        fence_proxy_async();
        const __nv_bfloat16* ts = tbufs + tb * kTElems;
        const std::uint64_t desc_x = wgmma_desc(ts), desc_dy = wgmma_desc(ts + 2 * kAtom);
        const std::uint64_t desc_dyn = wgmma_desc_mn(ts + 2 * kAtom, kAtom * 2), desc_xn = wgmma_desc_mn(ts, kAtom * 2);
        // A^T as A operands in registers; dS^T of this warpgroup's hidden units straight into the
        // tile's dS buffer ([128 f][64 rows], swizzled), one stmatrix per k16 step.
        __nv_bfloat16* ds = sbufs + tb * kSElems;
        std::uint32_t pa[4][4];
        {
          float s[32], da[32];
          wgmma_fence();
#pragma unroll
          for (int kk = 0; kk < kH / 16; ++kk) {
            const std::uint32_t bo = (kk / 4) * kAtom * 2 + (kk % 4) * 32;
            wgmma_m64n64k16_ss(s, desc_add(desc_k, (kk / 4) * 2 * kAtom * 2 + (kk % 4) * 32), desc_add(desc_x, bo),
                               kk > 0);
          }
#pragma unroll
          for (int kk = 0; kk < kH / 16; ++kk) {
            const std::uint32_t bo = (kk / 4) * kAtom * 2 + (kk % 4) * 32;
            wgmma_m64n64k16_ss<1, 0>(da, desc_add(desc_v, kk * kStepBytes), desc_add(desc_dy, bo), kk > 0);
          }
          wgmma_commit();
          if (stores_gradients) {  // the previous tile's dX has left this tile's dS buffer (written after the
                                   // barrier below), and the previous chunk's gradients their weight buffer
            bulk_wait_read();
            if (pending >= 0) mbar_arrive(empty_w + 8u * pending);
            pending = -1;
          }
          __syncwarp();
          wgmma_wait<0>();
          warpgroup_sync(wg);  // the previous tile's dX, staged in this dS buffer's half, has been read
          __nv_bfloat16* dsw = ds + wg * kAtom;
          // k16 step by k16 step: A^T and dS^T of 16 rows, then that step's dV product, so the
          // tensor pipe works on dV while the later steps' pointwise values are formed.
#pragma unroll
          for (int ks = 0; ks < 4; ++ks) {
            std::uint32_t dsv[4];
#pragma unroll
            for (int q = 0; q < 4; ++q) {  // A fragment q of k16 step ks: rows frow (+8), columns 16 ks + 2 t4 (+8)
              const int i = 8 * ks + 2 * q;
              dsv[q] = dgelu_bf16x2<true>(s[i], s[i + 1], da[i], da[i + 1], &pa[ks][q]);
            }
            stmatrix_x4(smem_u32(dsw + sw64(srow, 16 * ks + scol)), dsv[0], dsv[1], dsv[2], dsv[3]);
            wgmma_fence();
            wgmma_m64n128k16_rs<1>(dv, pa[ks], desc_add(desc_dyn, ks * kStepBytes), 1);
          }
        }
        fence_proxy_async();  // this thread's dS stores before any wgmma reads them
        warpgroup_sync(wg);   // this warpgroup's dS^T complete for its own dK product
        const std::uint64_t desc_ds = wgmma_desc_mn(ds, 0);          // dS: M = rows, K = all 128 hidden units
        const std::uint64_t desc_dsk = wgmma_desc(ds + wg * kAtom);  // this warpgroup's dS^T: M = its f, K = rows
        wgmma_fence();
#pragma unroll
        for (int ks = 0; ks < kTile / 16; ++ks)
          wgmma_m64n128k16_ss<0, 1>(dk, desc_add(desc_dsk, ks * 32), desc_add(desc_xn, ks * kStepBytes), 1);
        wgmma_commit();
        // dX over this warpgroup's hidden units first (its own dS^T is complete), then, once the
        // other warpgroup's dS^T is in, over the other's: the tensor pipe holds work through the meeting.
        float dx[32];
#pragma unroll
        for (int i = 0; i < 32; ++i) dx[i] = 0.0f;  // (an undefined accumulator would stay live across the loop)
        constexpr int kHalfSteps = kFc / 32;        // k16 steps over one warpgroup's 64 hidden units
        const std::uint32_t own = kHalfSteps * kStepBytes * wg, other = kHalfSteps * kStepBytes * (1 - wg);
        const std::uint64_t desc_ds_own = desc_add(desc_ds, own), desc_kn_own = desc_add(desc_kn, own);
        const std::uint64_t desc_ds_other = desc_add(desc_ds, other), desc_kn_other = desc_add(desc_kn, other);
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < kHalfSteps; ++kk)
          wgmma_m64n64k16_ss<1, 1>(dx, desc_add(desc_ds_own, kk * kStepBytes), desc_add(desc_kn_own, kk * kStepBytes),
                                   kk > 0);
        wgmma_commit();
        consumers_sync();  // the other warpgroup's hidden units of dS
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < kHalfSteps; ++kk)
          wgmma_m64n64k16_ss<1, 1>(dx, desc_add(desc_ds_other, kk * kStepBytes),
                                   desc_add(desc_kn_other, kk * kStepBytes), 1);
        wgmma_commit();
        wgmma_wait<0>();
        __syncwarp();
        if (lane == 0) mbar_arrive(empty_t + 8u * tb);
        // dX leaves through shared memory: each warpgroup stages its h half of the tile's dX in its
        // own half of the other dS buffer (the previous tile's: both warpgroups' products that read
        // it were done before either passed this tile's meeting; this warpgroup writes it again
        // next tile, after its storing thread has waited for the stores to read it), then one
        // thread stores it by TMA (a 64-row box, or 8-row boxes; the last rows % 8 by 16-byte
        // stores of the threads). The first chunk stores, later ones add in L2 (TMA reductions),
        // each once the previous chunk's writes to the tile have completed, so the sum's order is fixed.
        __nv_bfloat16* dxs = sbufs + (tb ^ 1) * kSElems + wg * kAtom;
        stage_accumulator_rows(
            dx, dxs, [](int r, int c) { return sw64(r, c); }, 0, warp, lane);
        fence_proxy_async();  // the staged rows before the TMA stores read them
        warpgroup_sync(wg);
        const int row0 = w.row_begin + t * kTile;
        const int valid = min(kTile, w.row_end - row0), valid8 = valid & ~7;
        if (stores_gradients) {
          if (j > 0) {  // chunk j - 1's writes to this tile are complete (they are older than the last group unless
                        // the item has one tile)
            if (ntiles == 1)
              bulk_wait<0>();
            else
              bulk_wait<1>();
          }
          if (valid8 == kTile) {
            if (j == 0)
              tma_store_2d(&map_dx, smem_u32(dxs), 64 * wg, row0);
            else
              tma_add_2d(&map_dx, smem_u32(dxs), 64 * wg, row0);
          } else {
            for (int r8 = 0; r8 < valid8; r8 += 8) {
              if (j == 0)
                tma_store_2d(&map_dx8, smem_u32(dxs + r8 * 64), 64 * wg, row0 + r8);
              else
                tma_add_2d(&map_dx8, smem_u32(dxs + r8 * 64), 64 * wg, row0 + r8);
            }
          }
          bulk_commit();  // a group every tile (possibly empty; the gradients' groups come between chunks), so
                          // the waits above can count back to the previous chunk's group of this tile
        }
        if (ltid < (valid - valid8) * 8) {  // the same thread for a row in every chunk: its store, then its adds
          const int r = valid8 + ltid / 8, c = (ltid % 8) * 8;
          store_or_add_bf16x8(p.dxg + static_cast<long long>(row0 + r) * kH + 64 * wg + c,
                              *reinterpret_cast<const uint4*>(dxs + sw64(r, c)), j > 0);
        }
      }
      // Both warpgroups' dX products have read all of K_c before either stages its gradients there.
      consumers_sync();

      const int fbase = j * kFc + wg * 64;
      if (w.slot >= 0) {
        float* part_k =
            p.partial + static_cast<long long>(w.slot) * 2 * fh + static_cast<long long>(fbase + frow) * kH + 2 * t4;
        float* part_v = p.partial + static_cast<long long>(w.slot) * 2 * fh + fh +
                        static_cast<long long>(2 * t4) * p.f + fbase + frow;
#pragma unroll
        for (int i = 0; i < 16; ++i)
#pragma unroll
          for (int hh = 0; hh < 2; ++hh) {
            *reinterpret_cast<float2*>(part_k + hh * 8 * kH + 8 * i) =
                make_float2(dk[4 * i + 2 * hh], dk[4 * i + 2 * hh + 1]);
            float* at = part_v + static_cast<long long>(8 * i) * p.f + 8 * hh;
            at[0] = dv[4 * i + 2 * hh];
            at[p.f] = dv[4 * i + 2 * hh + 1];
          }
      } else {
        // dK as [f][h] (two 64-column halves), dV^T as [h][f]: the accumulator's 8x8 matrices
        // stored as they are, and transposed.
        stage_accumulator_rows(
            dk, kreg, [](int r, int c) { return (c >> 6) * 2 * kAtom + sw64(r, c & 63); }, 0, warp, lane);
#pragma unroll
        for (int i = 0; i < 16; i += 2)
          stmatrix_x4_trans(smem_u32(vreg + sw64(8 * i + scol + (srow & 7), (warp % 4) * 16 + (srow & 8))),
                            pack_bf16x2(dv[4 * i + 0], dv[4 * i + 1]), pack_bf16x2(dv[4 * i + 2], dv[4 * i + 3]),
                            pack_bf16x2(dv[4 * i + 4], dv[4 * i + 5]), pack_bf16x2(dv[4 * i + 6], dv[4 * i + 7]));
        fence_proxy_async();
        warpgroup_sync(wg);
        if (stores_gradients) {  // the buffer is released once the stores have read it (next chunk)
          tma_store_2d(&map_dk, smem_u32(kreg), 0, w.segment * p.f + fbase);
          tma_store_2d(&map_dk, smem_u32(kreg + 2 * kAtom), 64, w.segment * p.f + fbase);
          tma_store_2d(&map_dvt, smem_u32(vreg), fbase, w.segment * kH);
          bulk_commit();
          pending = b;
        }
      }
      __syncwarp();
      if (lane == 0 && pending != b) mbar_arrive(empty_w + 8u * b);
    }
  }
  if (stores_gradients) bulk_wait_read();  // shared memory stays until the last stores have read it
}

}  // namespace fused

}  // namespace

cudaError_t launch_expert_mlp_bwd_wgmma(const mlp::MlpParams& p, const Schedule& sched, long long rows,
                                        cudaStream_t stream) {
  if (p.f % fused::kFc != 0) return cudaErrorInvalidValue;
  cudaError_t e = cudaFuncSetAttribute(fused::expert_mlp_bwd_fused_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       fused::kSmemBytes);
  int device = 0, sms = 0;
  if (e == cudaSuccess) e = cudaGetDevice(&device);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  if (e != cudaSuccess) return e;
  const long long segments = static_cast<long long>(p.L) * p.E;
  CUtensorMap map_k{}, map_vt{}, map_dk{}, map_dvt{}, map_dx{}, map_dx8{};
  e = make_map(&map_k, p.wk, segments * p.f, kH, 128);                        // K: [L E f][h], 128-row boxes
  if (e == cudaSuccess) e = make_map(&map_vt, p.wv, segments * kH, p.f, kH);  // V^T: [L E h][f]
  if (e == cudaSuccess) e = make_map(&map_dk, p.dwk, segments * p.f, kH, 64);  // the gradients, 64-row boxes
  if (e == cudaSuccess) e = make_map(&map_dvt, p.dwv, segments * kH, p.f, kH);
  if (e == cudaSuccess && rows > 0) e = make_map(&map_dx, p.dxg, rows, kH, 64);  // dX: [rows][h], 64-row boxes
  if (e == cudaSuccess && rows > 0)
    e = make_map(&map_dx8, p.dxg, rows, kH, 8);  // and 8-row boxes (no tile without rows)
  if (e == cudaSuccess)
    e = build_schedules(p.offsets, ScheduleBuild{sched, /*item_for_empty=*/true, /*heavy_first=*/true}, nullptr,
                        stream);
  if (e != cudaSuccess || sched.max_items == 0) return e;
  long long blocks = sched.max_items < sms ? sched.max_items : sms;
  return launch_after(fused::expert_mlp_bwd_fused_kernel, dim3(static_cast<unsigned>(blocks)), dim3(kThreadsB),
                      fused::kSmemBytes, stream, p, sched, map_k, map_vt, map_dk, map_dvt, map_dx, map_dx8);
}

}  // namespace hpsim::kernels::device
