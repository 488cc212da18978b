// HP expert MLP backward on wgmma (sm_90a): two persistent, warp-specialised kernels, each with a
// producer warpgroup (one thread streams the weights by TMA, three warps gather rows by cp.async)
// and two consumer warpgroups that synchronise with it only through mbarriers.
//
//  dX kernel  a block item is up to 128 grouped rows of one segment (64 per consumer warpgroup);
//             per chunk of 64 hidden units:
//               S  = X K_c^T, dA = dY V_c^T        wgmma m64n64k16 x 8 each (V^T chunk N-major)
//               dS = dA GELU'(S)                   registers, repacked as an A operand
//               dX += dS K_c                       wgmma m64n128k16 x 4 (K chunk N-major)
//  dW kernel  a block unit is one weight-gradient item (up to mlp_wgrad_rows() rows of a segment) x 128
//             hidden units (64 per consumer warpgroup, so its dK and dV rows stay in registers);
//             per 64-row tile:
//               S^T = K_c X^T, dA^T = V_c dY^T     wgmma m64n64k16 x 8 each (V_c M-major)
//               A^T = GELU(S^T), dS^T = dA^T GELU'(S^T)
//               dV_c += A^T dY, dK_c += dS^T X    wgmma m64n128k16 x 4 each (tiles N-major)
// The X and dY tiles serve both as K-major operands (rows along N) and as N-major ones (rows
// along K): the same 128-byte-swizzled bytes, two descriptors. Neither the activation nor dS
// reaches device memory. Symbols as in expert_mlp.h. Compiled for sm_90a only.
#include "expert_mlp_wgmma.h"
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

// pa = bf16 A fragments (k16 steps over the accumulator's 64 columns) of the m64n64 accumulator.
// fn(i) packs accumulator elements i and i + 1 (one row, two adjacent columns) as bf16x2.
template <typename F>
__device__ __forceinline__ void pack_a(std::uint32_t (&pa)[4][4], F fn) {
#pragma unroll
  for (int ks = 0; ks < 4; ++ks) {
    const int i0 = 2 * ks, i1 = 2 * ks + 1;
    pa[ks][0] = fn(4 * i0 + 0);
    pa[ks][1] = fn(4 * i0 + 2);
    pa[ks][2] = fn(4 * i1 + 0);
    pa[ks][3] = fn(4 * i1 + 2);
  }
}

// One warp: rows r0 .. r0 + 31 of a tile whose row r is grouped row row_begin + r (valid below
// row_end); X through perm (the token's sub-token of head l) and dY in grouped order, each to
// dst + off(r, c); rows past the end or with perm = -1 are zero. One perm load per lane, then two
// rows per cp.async step (16 lanes x 16 bytes each).
template <typename Off>
__device__ __forceinline__ void gather_x_dy_32(const MlpParams& p, int row_begin, int row_end, int r0, int l, float inv_k,
                                               __nv_bfloat16* dst_x, __nv_bfloat16* dst_dy, int lane, Off off) {
  const int row = row_begin + r0 + lane;
  const int pair = row < row_end ? p.perm[row] : -1;
  const int tok = pair >= 0 ? div_small(pair, p.k, inv_k) : -1;
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

// ---------------------------------------------------------------------------------------------
// dX kernel
namespace dx {

constexpr int kRowsB = kGroups * 64;             // 128 rows per item (the mma.sync tile: one schedule)
constexpr int kFw = 64;                          // hidden units per chunk
constexpr int kStages = 3;
constexpr int kStageElems = 4 * kAtom;           // K chunk [2 h halves][64 f][64] + V^T chunk [128 h][64 f]
constexpr int kTileElems = 2 * kGroups * kAtom;  // [2 h halves][128 rows][64]
constexpr int kBufElems = 2 * kTileElems;        // X tile, then dY tile
constexpr int kBufs = 2;
constexpr int kSmemBytes = (kBufs * kBufElems + kStages * kStageElems) * 2 + 1024;  // 225 KB

// Element offset of (r, c), c < 128, in a [2 h halves][128 rows][64] tile.
__device__ __forceinline__ int toff(int r, int c) { return (c >> 6) * kRowsB * 64 + sw64(r, c & 63); }

struct Barriers {
  std::uint64_t full_w[kStages], empty_w[kStages], full_x[kBufs], empty_x[kBufs];
};

__global__ void __launch_bounds__(kThreadsB, 1)
    expert_mlp_dx_wgmma_kernel(MlpParams p, Schedule sched, const __grid_constant__ CUtensorMap map_k, const __grid_constant__ CUtensorMap map_vt) {
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  __shared__ Barriers bars;
  const std::uint32_t misalign = smem_u32(smem_raw) & 1023u;
  __nv_bfloat16* base = reinterpret_cast<__nv_bfloat16*>(smem_raw + (misalign ? 1024u - misalign : 0u));
  __nv_bfloat16* bufs = base;
  __nv_bfloat16* stages = base + kBufs * kBufElems;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int nchunks = p.f / kFw;
  griddep_wait();               // launched while the schedule build runs
  griddep_launch_dependents();  // the weight-gradient kernel's blocks take the SMs this kernel leaves
  const int num_items = sched.counters[0];
  const int first = static_cast<int>(blockIdx.x), stride = static_cast<int>(gridDim.x);
  if (first >= num_items) return;
  const int nloc = (num_items - 1 - first) / stride + 1;
  const std::uint32_t full_w = smem_u32(bars.full_w), empty_w = smem_u32(bars.empty_w);
  const std::uint32_t full_x = smem_u32(bars.full_x), empty_x = smem_u32(bars.empty_x);
  if (tid == 0) {
    init_ring(full_w, empty_w, kStages, 1, kConsumerWarps);
    init_ring(full_x, empty_x, kBufs, kGatherLanes, kConsumerWarps);
    fence_barrier_init();
  }
  __syncthreads();

  if (warp >= kConsumerWarps) {  // ---- producer warpgroup ----
    producer_registers<56>();  // the gather warps need a few more than 40
    const int pw = warp - kConsumerWarps;
    if (pw == 0) {  // K_e rows j*64 .. +63 (two h halves), V^T_e columns j*64 .. +63
      if (lane != 0) return;
      // Evict-normal, unlike the forward: a segment of more than 128 rows is several items, run
      // side by side by neighbouring blocks, and the later ones should find the chunks in L2.
      std::uint64_t policy = 0;
      asm volatile("createpolicy.fractional.L2::evict_normal.b64 %0, 1.0;\n" : "=l"(policy));
      int g = 0;
      for (int q = 0; q < nloc; ++q) {
        const int segment = sched.items[first + q * stride].segment;
        for (int j = 0; j < nchunks; ++j, ++g)
          load_weight_chunk<kStages>(smem_u32(stages), g, full_w, empty_w, &map_k, &map_vt, segment, j, p.f, policy);
      }
      return;
    }
    // Warps 1 and 2: rows 64 (pw - 1) .. 64 pw - 1 of every item (X and dY); warp 3 has nothing to do.
    if (pw == 3) return;
    const float inv_k = 1.0f / static_cast<float>(p.k);
    for (int q = 0; q < nloc; ++q) {
      const WorkItem w = sched.items[first + q * stride];
      const int l = w.segment / p.E;
      const int b = q & 1;
      mbar_wait(empty_x + 8u * b, static_cast<std::uint32_t>(((q >> 1) & 1) ^ 1));
      __nv_bfloat16* xs = bufs + b * kBufElems;
      for (int r0 = 64 * (pw - 1); r0 < 64 * pw; r0 += 32)
        gather_x_dy_32(p, w.row_begin, w.row_end, r0, l, inv_k, xs, xs + kTileElems, lane, [](int r, int c) { return toff(r, c); });
      cp_async_mbar_arrive(full_x + 8u * b);
    }
    cp_async_wait<0>();
    return;
  }

  // ---- consumer warpgroups: rows 64 wg .. 64 wg + 63 of each item ----
  consumer_registers<224>();
  const int wg = warpgroup_index(), ltid = tid % 128;
  const std::uint64_t desc_x0 = wgmma_desc(bufs + wg * kAtom);               // X rows, K-major
  const std::uint64_t desc_k0 = wgmma_desc(stages);                          // K chunk as S's B (K-major)
  const std::uint64_t desc_kn0 = wgmma_desc_mn(stages, kAtom * 2);           // K chunk as dX's B (N = h)
  const std::uint64_t desc_vn0 = wgmma_desc_mn(stages + 2 * kAtom, 0);       // V^T chunk as dA's B (N = f)
  int g = 0;
  for (int q = 0; q < nloc; ++q) {
    const WorkItem cur = sched.items[first + q * stride];
    const int rows = cur.row_end - cur.row_begin;
    const int b = q & 1;
    __nv_bfloat16* xs = bufs + b * kBufElems;
    const std::uint64_t desc_x = desc_add(desc_x0, b * kBufElems * 2);
    const std::uint64_t desc_dy = desc_add(desc_x, kTileElems * 2);
    mbar_wait(full_x + 8u * b, static_cast<std::uint32_t>((q >> 1) & 1));
    fence_proxy_async();

    float dxa[64];
#pragma unroll
    for (int i = 0; i < 64; ++i) dxa[i] = 0.0f;
    std::uint32_t pa[4][4];  // dS of the chunk whose dX product is in flight
    int prev_st = -1;
    for (int j = 0; j < nchunks; ++j, ++g) {
      const int st = g % kStages;
      mbar_wait(full_w + 8u * st, static_cast<std::uint32_t>((g / kStages) & 1));
      const std::uint32_t so = static_cast<std::uint32_t>(st * kStageElems * 2);
      float s[32], da[32];  // written by the first k16 step (scale-d 0)
      wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < kH / 16; ++kk) {
        const std::uint32_t ao = (kk / 4) * kGroups * kAtom * 2 + (kk % 4) * 32;
        wgmma_m64n64k16_ss(s, desc_add(desc_x, ao), desc_add(desc_k0, so + (kk / 4) * kAtom * 2 + (kk % 4) * 32), kk > 0);
      }
#pragma unroll
      for (int kk = 0; kk < kH / 16; ++kk) {
        const std::uint32_t ao = (kk / 4) * kGroups * kAtom * 2 + (kk % 4) * 32;
        wgmma_m64n64k16_ss<0, 1>(da, desc_add(desc_dy, ao), desc_add(desc_vn0, so + kk * kStepBytes), kk > 0);
      }
      wgmma_commit();
      wgmma_wait<0>();  // S and dA of chunk j, and dX of chunk j - 1 before them
      __syncwarp();
      if (prev_st >= 0 && lane == 0) mbar_arrive(empty_w + 8u * prev_st);
      pack_a(pa, [&](int i) { return dgelu_bf16x2<false>(s[i], s[i + 1], da[i], da[i + 1], nullptr); });
      wgmma_fence();
#pragma unroll
      for (int ks = 0; ks < kFw / 16; ++ks) wgmma_m64n128k16_rs<1>(dxa, pa[ks], desc_add(desc_kn0, so + ks * kStepBytes), 1);
      wgmma_commit();
      prev_st = st;
    }
    wgmma_wait<0>();
    __syncwarp();
    if (lane == 0) mbar_arrive(empty_w + 8u * prev_st);

    // Epilogue: stage this warpgroup's dX rows in its own X rows, then 16-byte stores.
    if (wg * 64 < rows)
      store_accumulator_rows(dxa, xs, [](int r, int c) { return toff(r, c); }, wg, warp, lane, ltid, rows, p.dxg, cur.row_begin);
    __syncwarp();
    if (lane == 0) mbar_arrive(empty_x + 8u * b);
  }
}

}  // namespace dx

// ---------------------------------------------------------------------------------------------
// dW kernel
namespace dw {

constexpr int kFc = kGroups * 64;     // 128 hidden units per unit
constexpr int kTile = 64;             // rows per tile
constexpr int kWElems = 8 * kAtom;    // K_c [2 h halves][128 f][64] + V^T_c [2 f halves][128 h][64] (64 KB)
constexpr int kWBufs = 2;
constexpr int kTElems = 4 * kAtom;    // X tile [2 h halves][64 rows][64] + dY tile alike (32 KB)
constexpr int kTBufs = 3;
constexpr int kSmemBytes = (kWBufs * kWElems + kTBufs * kTElems) * 2 + 1024;  // 225 KB

constexpr int kURing = 4;             // units handed out ahead of the consumers

struct Barriers {
  std::uint64_t full_w[kWBufs], empty_w[kWBufs], full_t[kTBufs], empty_t[kTBufs];
  std::uint64_t full_u[kURing], empty_u[kURing];  // the unit ring: published by the producer thread
  int unit[kURing];                                // unit id, or -1: no more work
};

// The warp's next unit from the ring (every lane reads it; lane 0 releases the slot).
__device__ __forceinline__ int next_unit(Barriers& bars, int u, int lane) {
  const int r = u % kURing;
  mbar_wait(smem_u32(&bars.full_u[r]), static_cast<std::uint32_t>((u / kURing) & 1));
  const int id = bars.unit[r];
  __syncwarp();
  if (lane == 0) mbar_arrive(smem_u32(&bars.empty_u[r]));
  return id;
}

// Element offset of (r, c), c < 128, in a [2 h halves][64 rows][64] tile.
__device__ __forceinline__ int toff64(int r, int c) { return (c >> 6) * kAtom + sw64(r, c & 63); }

__device__ __forceinline__ int tiles_of(const WorkItem& w) { return (w.row_end - w.row_begin + kTile - 1) / kTile; }

// Units are handed out dynamically, heavy items first (the schedule is built heavy_first): the
// producer thread takes the next unit id from a global counter and publishes it in a ring that
// the gathering warps and the consumers read in the same order. Unit id: item id / nchunks, hidden
// units (id % nchunks) * 128 ...; the u-th unit of a block uses weight buffer u % 2; tile t of the
// block's walk (over all its units) uses tile buffer t % 3. A static assignment would leave a
// long tail when routing is skewed. A unit of an empty segment passes
// through the weight ring without a transfer and its consumers store zero gradients straight to
// device memory (under skew most segments are empty, and those stores are most of the bytes).
__global__ void __launch_bounds__(kThreadsB, 1)
    expert_mlp_dw_wgmma_kernel(MlpParams p, Schedule sched, const __grid_constant__ CUtensorMap map_k,
                               const __grid_constant__ CUtensorMap map_vt, const __grid_constant__ CUtensorMap map_dk,
                               const __grid_constant__ CUtensorMap map_dvt) {
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  __shared__ Barriers bars;
  const std::uint32_t misalign = smem_u32(smem_raw) & 1023u;
  __nv_bfloat16* base = reinterpret_cast<__nv_bfloat16*>(smem_raw + (misalign ? 1024u - misalign : 0u));
  __nv_bfloat16* wbufs = base;
  __nv_bfloat16* tbufs = base + kWBufs * kWElems;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int nchunks = p.f / kFc;
  griddep_wait();  // launched while the dX kernel runs
  const int heavy = sched.counters[3];
  const int num_units = item_count(sched) * nchunks;
  HPSIM_DEVICE_ASSERT(item_count(sched) <= sched.max_items);  // the front and back fills did not meet
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
    producer_registers<48>();  // no spills in the gather warps (40: 28 bytes)
    const int pw = warp - kConsumerWarps;
    if (pw == 0) {  // K_e rows f0 .. f0+127 (two h halves), V^T_e columns f0 .. f0+127 (two f halves)
      if (lane != 0) return;
      std::uint64_t policy = 0;
      asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;\n" : "=l"(policy));
      for (int u = 0;; ++u) {
        const int r = u % kURing;
        mbar_wait(smem_u32(&bars.empty_u[r]), static_cast<std::uint32_t>(((u / kURing) & 1) ^ 1));
        const int taken = atomicAdd(sched.counters + 4, 1);
        const int unit = taken < num_units ? taken : -1;
        bars.unit[r] = unit;
        mbar_arrive(smem_u32(&bars.full_u[r]));
        if (unit < 0) break;
        const WorkItem w = item_at(sched, heavy, unit / nchunks);
        const int segment = w.segment;
        const int f0 = (unit % nchunks) * kFc;
        const int b = u & 1;
        mbar_wait(empty_w + 8u * b, static_cast<std::uint32_t>(((u >> 1) & 1) ^ 1));
        const std::uint32_t bar = full_w + 8u * b;
        if (w.row_end == w.row_begin) {  // an empty segment: zero gradients, no weights to read
          mbar_arrive(bar);
          continue;
        }
        const std::uint32_t wb = smem_u32(wbufs + b * kWElems);
        mbar_expect_tx(bar, kWElems * 2);
        tma_load_2d(wb, &map_k, bar, 0, segment * p.f + f0, policy);
        tma_load_2d(wb + 2 * kAtom * 2, &map_k, bar, 64, segment * p.f + f0, policy);
        tma_load_2d(wb + 4 * kAtom * 2, &map_vt, bar, f0, segment * kH, policy);
        tma_load_2d(wb + 6 * kAtom * 2, &map_vt, bar, f0 + 64, segment * kH, policy);
      }
      return;
    }
    // Warps 1 and 2: rows 32 (pw - 1) .. 32 pw - 1 of every tile (X and dY); warp 3 has nothing to do.
    if (pw == 3) return;
    const float inv_k = 1.0f / static_cast<float>(p.k);
    int tc = 0;
    for (int u = 0;; ++u) {
      const int unit = next_unit(bars, u, lane);
      if (unit < 0) break;
      const WorkItem w = item_at(sched, heavy, unit / nchunks);
      const int l = w.segment / p.E;
      const int ntiles = tiles_of(w);
      for (int t = 0; t < ntiles; ++t, ++tc) {
        const int b = tc % kTBufs;
        mbar_wait(empty_t + 8u * b, static_cast<std::uint32_t>(((tc / kTBufs) & 1) ^ 1));
        __nv_bfloat16* ts = tbufs + b * kTElems;
        gather_x_dy_32(p, w.row_begin + t * kTile, w.row_end, 32 * (pw - 1), l, inv_k, ts, ts + 2 * kAtom, lane,
                       [](int r, int c) { return toff64(r, c); });
        cp_async_mbar_arrive(full_t + 8u * b);
      }
    }
    cp_async_wait<0>();
    return;
  }

  // ---- consumer warpgroups: hidden units f0 + 64 wg .. f0 + 64 wg + 63 of each unit ----
  consumer_registers<224>();  // dK, dV, S^T, dA^T: 192 of them
  const int wg = warpgroup_index(), ltid = tid % 128;
  const int g8 = lane / 4, t4 = lane % 4;
  const int frow = (warp % 4) * 16 + g8;  // accumulator rows frow and frow + 8 (hidden units of the warpgroup)
  const long long fh = static_cast<long long>(p.f) * kH;
  int tc = 0;
  for (int u = 0;; ++u) {
    const int unit = next_unit(bars, u, lane);
    if (unit < 0) break;
    const WorkItem w = item_at(sched, heavy, unit / nchunks);
    const int f0 = (unit % nchunks) * kFc;
    const int b = u & 1;
    __nv_bfloat16* wb = wbufs + b * kWElems;
    __nv_bfloat16* kreg = wb + wg * kAtom;                 // this warpgroup's K_c rows, h half 0 (h half 1 at + 2 atoms)
    __nv_bfloat16* vreg = wb + 4 * kAtom + wg * 2 * kAtom;  // this warpgroup's V^T_c columns [128 h][64]
    const std::uint64_t desc_k = wgmma_desc(kreg);
    const std::uint64_t desc_v = wgmma_desc_mn(vreg, 0);
    mbar_wait(full_w + 8u * b, static_cast<std::uint32_t>((u >> 1) & 1));
    if (w.row_end == w.row_begin) {
      // Zeros over a contiguous 16 KB of the segment's dK and of its dV^T, piece (unit's chunk,
      // warpgroup): the units of the segment cover both (whole DRAM pages stream faster than the
      // 128-byte rows of the dV^T columns); consecutive threads, consecutive 16 bytes.
      __syncwarp();
      if (lane == 0) mbar_arrive(empty_w + 8u * b);
      const long long at = static_cast<long long>(w.segment) * p.f * kH + static_cast<long long>(f0 + wg * 64) * kH;
      const uint4 zero = make_uint4(0u, 0u, 0u, 0u);
      uint4* zk = reinterpret_cast<uint4*>(p.dwk + at);
      uint4* zv = reinterpret_cast<uint4*>(p.dwv + at);
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        zk[ltid + 128 * i] = zero;
        zv[ltid + 128 * i] = zero;
      }
      continue;
    }

    float dk[64], dv[64];
#pragma unroll
    for (int i = 0; i < 64; ++i) dk[i] = dv[i] = 0.0f;
    std::uint32_t pa[4][4], pd[4][4];  // A^T and dS^T of the tile, as A operands
    const int ntiles = tiles_of(w);
    for (int t = 0; t < ntiles; ++t, ++tc) {
      const int tb = tc % kTBufs;
      mbar_wait(full_t + 8u * tb, static_cast<std::uint32_t>((tc / kTBufs) & 1));
      fence_proxy_async();
      const __nv_bfloat16* ts = tbufs + tb * kTElems;
      const std::uint64_t desc_x = wgmma_desc(ts), desc_dy = wgmma_desc(ts + 2 * kAtom);
      float s[32], da[32];  // written by the first k16 step (scale-d 0)
      wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < kH / 16; ++kk) {
        const std::uint32_t bo = (kk / 4) * kAtom * 2 + (kk % 4) * 32;
        wgmma_m64n64k16_ss(s, desc_add(desc_k, (kk / 4) * 2 * kAtom * 2 + (kk % 4) * 32), desc_add(desc_x, bo), kk > 0);
      }
#pragma unroll
      for (int kk = 0; kk < kH / 16; ++kk) {
        const std::uint32_t bo = (kk / 4) * kAtom * 2 + (kk % 4) * 32;
        wgmma_m64n64k16_ss<1, 0>(da, desc_add(desc_v, kk * kStepBytes), desc_add(desc_dy, bo), kk > 0);
      }
      wgmma_commit();
      wgmma_wait<0>();
      // A^T and dS^T pair by pair, so each S^T and dA^T register dies as soon as it is read.
      pack_a(pd, [&](int i) { return dgelu_bf16x2<true>(s[i], s[i + 1], da[i], da[i + 1], &pa[i / 8][(i % 8) / 2]); });
      const std::uint64_t desc_dyn = wgmma_desc_mn(ts + 2 * kAtom, kAtom * 2), desc_xn = wgmma_desc_mn(ts, kAtom * 2);
      wgmma_fence();
#pragma unroll
      for (int ks = 0; ks < kTile / 16; ++ks) wgmma_m64n128k16_rs<1>(dv, pa[ks], desc_add(desc_dyn, ks * kStepBytes), 1);
#pragma unroll
      for (int ks = 0; ks < kTile / 16; ++ks) wgmma_m64n128k16_rs<1>(dk, pd[ks], desc_add(desc_xn, ks * kStepBytes), 1);
      wgmma_commit();
      // Not kept in flight behind the next tile's S^T: dK, dV, S^T, dA^T and the A fragments would
      // need more than the 224 registers a consumer thread has; the other warpgroup fills the gap.
      wgmma_wait<0>();
      __syncwarp();
      if (lane == 0) mbar_arrive(empty_t + 8u * tb);
    }

    const int fbase = f0 + wg * 64;  // first hidden unit of this warpgroup
    if (w.slot >= 0) {
      // Part of a long segment: fp32 partial sums of dK [f][h] and dV^T [h][f] (the gradients'
      // layouts), added in slot order afterwards; straight from the accumulators (a rare path: it
      // keeps no staging registers). Eight lanes write 32 consecutive bytes of dV^T.
      float* part_k = p.partial + static_cast<long long>(w.slot) * 2 * fh + static_cast<long long>(fbase + frow) * kH + 2 * t4;
      float* part_v = p.partial + static_cast<long long>(w.slot) * 2 * fh + fh + static_cast<long long>(2 * t4) * p.f + fbase + frow;
#pragma unroll
      for (int i = 0; i < 16; ++i)
#pragma unroll
        for (int hh = 0; hh < 2; ++hh) {
          *reinterpret_cast<float2*>(part_k + hh * 8 * kH + 8 * i) = make_float2(dk[4 * i + 2 * hh], dk[4 * i + 2 * hh + 1]);
          float* at = part_v + static_cast<long long>(8 * i) * p.f + 8 * hh;
          at[0] = dv[4 * i + 2 * hh];
          at[p.f] = dv[4 * i + 2 * hh + 1];
        }
    } else {
      // dK_c rows and dV_c^T columns of this warpgroup, staged in its own K_c rows and V^T_c
      // columns (the layout the TMA loads wrote; all its products are complete and the other
      // warpgroup reads only its own), then stored by one thread with TMA.
#pragma unroll
      for (int i = 0; i < 16; ++i)
#pragma unroll
        for (int hh = 0; hh < 2; ++hh) {
          const int fr = frow + 8 * hh, h = 8 * i + 2 * t4;
          *reinterpret_cast<std::uint32_t*>(kreg + (h >> 6) * 2 * kAtom + sw64(fr, h & 63)) =
              pack_bf16x2(dk[4 * i + 2 * hh], dk[4 * i + 2 * hh + 1]);
          vreg[sw64(h, fr)] = __float2bfloat16_rn(dv[4 * i + 2 * hh]);
          vreg[sw64(h + 1, fr)] = __float2bfloat16_rn(dv[4 * i + 2 * hh + 1]);
        }
      fence_proxy_async();  // this thread's stores before the TMA unit reads them
      warpgroup_sync(wg);
      if (warp % 4 == 0 && lane == 0) {
        tma_store_2d(&map_dk, smem_u32(kreg), 0, w.segment * p.f + fbase);
        tma_store_2d(&map_dk, smem_u32(kreg + 2 * kAtom), 64, w.segment * p.f + fbase);
        tma_store_2d(&map_dvt, smem_u32(vreg), fbase, w.segment * kH);
        bulk_commit();
        bulk_wait_read();  // the buffer is released (below) once the stores have read it
      }
    }
    __syncwarp();
    if (lane == 0) mbar_arrive(empty_w + 8u * b);
  }
}

}  // namespace dw

}  // namespace

cudaError_t launch_expert_mlp_bwd_wgmma(const mlp::MlpParams& p, const Schedule& rows_sched, const Schedule& wg_sched,
                                        cudaStream_t stream) {
  if (rows_sched.tile_rows != dx::kRowsB || p.f % dw::kFc != 0) return cudaErrorInvalidValue;
  cudaError_t e = cudaFuncSetAttribute(dx::expert_mlp_dx_wgmma_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, dx::kSmemBytes);
  if (e == cudaSuccess) e = cudaFuncSetAttribute(dw::expert_mlp_dw_wgmma_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, dw::kSmemBytes);
  int device = 0, sms = 0;
  if (e == cudaSuccess) e = cudaGetDevice(&device);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  if (e != cudaSuccess) return e;
  const long long segments = static_cast<long long>(p.L) * p.E;
  CUtensorMap map_k64{}, map_k128{}, map_vt{}, map_dk{}, map_dvt{};
  e = make_map(&map_k64, p.wk, segments * p.f, kH, 64);      // K: [L E f][h], 64-row boxes
  if (e == cudaSuccess) e = make_map(&map_k128, p.wk, segments * p.f, kH, 128);
  if (e == cudaSuccess) e = make_map(&map_vt, p.wv, segments * kH, p.f, kH);  // V^T: [L E h][f]
  if (e == cudaSuccess) e = make_map(&map_dk, p.dwk, segments * p.f, kH, 64);   // the gradients, alike
  if (e == cudaSuccess) e = make_map(&map_dvt, p.dwv, segments * kH, p.f, kH);
  if (e != cudaSuccess) return e;
  const ScheduleBuild wg_build{wg_sched, /*item_for_empty=*/true, /*heavy_first=*/true};
  e = build_schedules(p.offsets, ScheduleBuild{rows_sched, /*item_for_empty=*/false}, &wg_build, stream);
  if (e != cudaSuccess) return e;
  if (rows_sched.max_items > 0) {
    const long long blocks = rows_sched.max_items < sms ? rows_sched.max_items : sms;
    e = launch_after(dx::expert_mlp_dx_wgmma_kernel, dim3(static_cast<unsigned>(blocks)), dim3(kThreadsB), dx::kSmemBytes, stream, p,
                     rows_sched, map_k64, map_vt);
    if (e != cudaSuccess) return e;
  }
  const long long units = wg_sched.max_items * (p.f / dw::kFc);
  if (units > 0) {
    const long long blocks = units < sms ? units : sms;
    e = launch_after(dw::expert_mlp_dw_wgmma_kernel, dim3(static_cast<unsigned>(blocks)), dim3(kThreadsB), dw::kSmemBytes, stream, p,
                     wg_sched, map_k128, map_vt, map_dk, map_dvt);
  }
  return e;
}

}  // namespace hpsim::kernels::device
