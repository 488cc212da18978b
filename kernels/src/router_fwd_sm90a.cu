// Router forward, bf16x3 scheme (router.h RouterAlgo::kBf16x3) on wgmma (sm_90a). The scores are
// those of router_tc.cuh: x is exact in bf16, each fp32 weight is split into three bf16 parts
// (hi + mid + lo), and score = x.lo + x.mid + x.hi, accumulated in fp32 (smallest part first).
// A persistent block of two consumer warpgroups and a producer warpgroup takes units of 256 tokens of
// one head; each warpgroup owns 128 of them (two m64 tiles) with their x rows resident in shared
// memory. The producer streams the head's weight parts by TMA, one stage per 64 experts and 64
// columns of dim (three 128-byte-swizzled [64][64] atoms, 24 KB), through a ring shared by both
// warpgroups and running on across units. Per chunk of 64 experts a warpgroup issues
// 3 parts x dim/16 k-steps x 2 tiles of wgmma m64n64k16 (A = x, B = weight part, both from shared
// memory) and then selects from its accumulators in registers: the scores never leave them. For
// dim <= 128 the two warpgroups take turns to issue (named barriers), so that one warpgroup's
// products run while the other selects instead of both products and both selections coinciding.
//
// Selection, per thread (4 tokens x 16 experts of each chunk, the wgmma accumulator layout): a
// sorted list of the best KMAX (biased score, expert) per token, and a threshold below which no
// score can reach the token's top KMAX (the best of the four lists' KMAX-th entries, shared by the
// quad of threads that holds the token). Per token and chunk, the scores at or above it are
// appended to a queue in shared memory by predicated stores and then inserted; the warp runs as
// many insertions as its busiest lane needs (a branch per score ran one for every score any of its
// 32 lanes passed: 540 us against 248 us at the 4.2B shape, docs/kernels.md). At the end of a unit
// the four lists of each token are merged as in the other router kernels (router_select.cuh).
// Compiled for sm_90a only.
#include <cfloat>

#include "router_select.cuh"
#include "router_wgmma.h"
#include "sm90.cuh"

namespace hpsim::kernels::device {
namespace {

constexpr int kGroupsR = 2;                           // consumer warpgroups
constexpr int kGroupTokens = 128;                     // tokens per consumer warpgroup (two m64 tiles)
constexpr int kUnitTokens = kGroupsR * kGroupTokens;  // 256
constexpr int kChunkE = 64;                           // experts per chunk (wgmma N)
constexpr int kThreadsR = kGroupsR * 128 + 128;       // + the producer warpgroup (one thread issues the loads)
constexpr int kStageBytesR = 3 * kAtom * 2;           // the three parts of 64 experts x 64 columns: 24 KB
constexpr int kStageBytesS = kStageBytesR + 4 * kAtom * 2;  // streamed x: + the unit's 256 tokens x 64 columns (56 KB)
constexpr int kMaxStagesR = 8;
constexpr int kSmemCapR = 227 * 1024;  // the opt-in shared memory of an sm_90 block

// Bytes of a warpgroup's region: with x resident (dim <= 256), its x rows (128 x dim bf16) and, at
// the end of a unit, its tokens' four candidate lists (128 x 4 x KMAX x (float, int)); with x
// streamed, none (the lists are merged in registers). A multiple of 1024 (atom alignment).
constexpr int region_bytes(int dim, int kmax, bool stream) {
  const int x = kGroupTokens * dim * 2, lists = kGroupTokens * 4 * kmax * 8;
  return stream ? 0 : x > lists ? x : lists;
}

constexpr int kQueueBytes = 16 * kGroupsR * 128 * 8;  // a 16-entry candidate queue per consumer thread: 32 KB

struct RouterBarriers {
  std::uint64_t full[kMaxStagesR];   // stage filled (TMA bytes)
  std::uint64_t empty[kMaxStagesR];  // stage released by the 8 consumer warps
};

using router_select::reset_lists;

// A candidate of this thread is inserted into its list in ascending expert order (chunk after
// chunk, column after column), so an equal score never displaces an entry: "better" is ">".
template <int KMAX>
__device__ __forceinline__ void insert_ascending(float (&lv)[KMAX], int (&li)[KMAX], float v, int e) {
#pragma unroll
  for (int j = 0; j < KMAX; ++j) {
    const bool better = v > lv[j];
    const float tv = lv[j];
    const int te = li[j];
    lv[j] = better ? v : tv;
    li[j] = better ? e : te;
    v = better ? tv : v;
    e = better ? te : e;
  }
}

// One chunk's selection for one token row of this thread: its 16 biased scores v (column j is
// expert e_lane + 8 (j / 2) + j % 2; experts past E are -inf). Scores at or above the threshold are
// appended (predicated stores, no branch per score) to the thread's queue in shared memory
// (entry n at queue[n * kQueueStride]), then inserted: the warp runs as many insertions as its
// busiest lane has candidates, where a branch per score would run one for every score that any
// lane passes.
constexpr int kQueueStride = kGroupsR * 128;  // entries of one queue slot, one per consumer thread
template <int KMAX>
__device__ __forceinline__ void select_row(const float (&v)[16], float (&lv)[KMAX], int (&li)[KMAX], float& thr,
                                           int e_lane, float2* queue) {
  float vmax = v[0];
#pragma unroll
  for (int j = 1; j < 16; ++j) vmax = fmaxf(vmax, v[j]);
  if (vmax < thr) return;
  int cnt = 0;
#pragma unroll
  for (int j = 0; j < 16; ++j) {
    const bool pass = v[j] >= thr;
    if (pass) queue[cnt * kQueueStride] = make_float2(v[j], __int_as_float(e_lane + 8 * (j / 2) + (j % 2)));
    cnt += pass ? 1 : 0;
  }
  for (int n = 0; n < cnt; ++n) {
    const float2 c = queue[n * kQueueStride];
    insert_ascending<KMAX>(lv, li, c.x, __float_as_int(c.y));
  }
  thr = fmaxf(thr, lv[KMAX - 1]);
}

// Named barriers 3 and 4 order the two consumer warpgroups' products (1 and 2 are warpgroup_sync):
// warpgroup w waits on 3 + w before issuing and, once issued, arrives on the other's.
__device__ __forceinline__ void named_sync(int id) { asm volatile("bar.sync %0, 256;\n" ::"r"(id) : "memory"); }
__device__ __forceinline__ void named_arrive(int id) { asm volatile("bar.arrive %0, 256;\n" ::"r"(id) : "memory"); }

// The best KMAX of the four lists of a token held by a quad (lanes 4 g .. 4 g + 3), in every lane
// of the quad, sorted as router_select orders them: two rounds of exchanging lists with a partner
// lane, keeping the better of a[j] and b[KMAX - 1 - j] (a bitonic sequence holding the best KMAX
// of both) and sorting it with half-cleaners. Registers only.
template <int KMAX>
__device__ __forceinline__ void quad_merge(float (&lv)[KMAX], int (&li)[KMAX]) {
  const auto better = [](float v, int e, float w, int f) { return v > w || (v == w && e < f); };
#pragma unroll
  for (int m = 1; m <= 2; m *= 2) {
    float bv[KMAX];
    int be[KMAX];
#pragma unroll
    for (int j = 0; j < KMAX; ++j) {
      bv[j] = __shfl_xor_sync(0xffffffffu, lv[j], m);
      be[j] = __shfl_xor_sync(0xffffffffu, li[j], m);
    }
#pragma unroll
    for (int j = 0; j < KMAX; ++j) {
      if (better(bv[KMAX - 1 - j], be[KMAX - 1 - j], lv[j], li[j])) {
        lv[j] = bv[KMAX - 1 - j];
        li[j] = be[KMAX - 1 - j];
      }
    }
#pragma unroll
    for (int h = KMAX / 2; h >= 1; h /= 2)
#pragma unroll
      for (int j = 0; j < KMAX; ++j)
        if ((j & h) == 0 && better(lv[j + h], li[j + h], lv[j], li[j])) {
          const float tv = lv[j];
          const int te = li[j];
          lv[j] = lv[j + h];
          li[j] = li[j + h];
          lv[j + h] = tv;
          li[j + h] = te;
        }
  }
}

// Box (c0, c1, c2) of a 3-D tensor map into shared memory at `dst`, completing on `bar`.
__device__ __forceinline__ void tma_load_3d(std::uint32_t dst, const CUtensorMap* map, std::uint32_t bar, int c0, int c1,
                                            int c2, std::uint64_t policy) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint [%0], [%1, {%3, %4, "
      "%5}], [%2], %6;\n" ::"r"(dst),
      "l"(reinterpret_cast<std::uint64_t>(map)), "r"(bar), "r"(c0), "r"(c1), "r"(c2), "l"(policy)
      : "memory");
}

struct WalkParams {
  int stages;          // ring slots
  RouterSplit split;   // expert splits (1 and all chunks: no split) and, above one, their lists
};

// Block b walks items b, b + gridDim.x, ... (item w: unit w / splits and its expert chunks of split
// w % splits; unit u: head u / tiles, tokens 256 (u % tiles) ..); stage g of the walk (a chunk's
// columns 64 ka ..) uses ring slot g % stages. STREAM: x is not resident but streamed with the
// weights, 64 columns of the unit's 256 tokens per stage (dim > 256; KATOMS unused).
template <int KMAX, int KATOMS, bool STREAM>
__global__ void __launch_bounds__(kThreadsR, 1)
    router_bf16x3_wgmma_kernel(RouterTcParams p, WalkParams wp, const __grid_constant__ CUtensorMap map_w,
                               const __grid_constant__ CUtensorMap map_x) {
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  __shared__ RouterBarriers bars;
  const std::uint32_t misalign = smem_u32(smem_raw) & 1023u;
  unsigned char* base = smem_raw + (misalign ? 1024u - misalign : 0u);
  const int region = region_bytes(p.dim, KMAX, STREAM);
  float2* queues = reinterpret_cast<float2*>(base + kGroupsR * region);  // [16][kQueueStride]
  unsigned char* stage_mem = base + kGroupsR * region + kQueueBytes;
  constexpr int kStageBytes = STREAM ? kStageBytesS : kStageBytesR;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  // dim / 64; resident, the k loop unrolls, so no wgmma fence is needed inside it
  const int katoms = STREAM ? p.dim / 64 : KATOMS;
  // The warpgroups take turns to issue a chunk's products where the ring holds two chunks' stages
  // (x resident, dim <= 128: 4 or more); with fewer, both must hold stages of one chunk at once.
  constexpr bool pingpong = !STREAM && KATOMS <= 2;
  const int stages = wp.stages;
  const int tiles = (p.N + kUnitTokens - 1) / kUnitTokens;
  const int items = p.L * tiles * wp.split.splits;
  const int nchunks = (p.E + kChunkE - 1) / kChunkE;
  const int first = static_cast<int>(blockIdx.x), stride = static_cast<int>(gridDim.x);
  if (first >= items) return;
  const int nloc = (items - 1 - first) / stride + 1;
  // Item q of this block: head, first token, chunk range.
  struct Item {
    int l, t0, split, c_begin, c_end;
  };
  const auto item = [&](int q) {
    const int w = first + q * stride, u = w / wp.split.splits, split = w % wp.split.splits;
    const int c_begin = split * wp.split.chunks_per_split, c_end = min(nchunks, c_begin + wp.split.chunks_per_split);
    return Item{u / tiles, (u % tiles) * kUnitTokens, split, c_begin, c_end};
  };
  const std::uint32_t full = smem_u32(bars.full), empty = smem_u32(bars.empty);
  if (tid == 0) {
    init_ring(full, empty, stages, 1, kGroupsR * 4);
    fence_barrier_init();
  }
  __syncthreads();

  // Launched at 168 registers per thread (three warps per scheduler); the producer gives registers
  // back so that the consumers can hold accumulators (64), lists (up to 64) and the chunk's scores
  // and biases (32): 2 x 232 + 40 <= 3 x 168.
  if (warp >= kGroupsR * 4) {  // ---- producer warpgroup: one thread issues the TMA loads ----
    asm volatile("setmaxnreg.dec.sync.aligned.u32 40;\n" ::: "memory");
    if (warp != kGroupsR * 4 || lane != 0) return;
    std::uint64_t policy = 0;  // every unit of a head reads its parts again (and x per chunk): keep them in L2
    asm volatile("createpolicy.fractional.L2::evict_last.b64 %0, 1.0;\n" : "=l"(policy));
    const int part_rows = p.L * p.E;
    int g = 0;
    for (int q = 0; q < nloc; ++q) {
      const Item it = item(q);
      for (int c = it.c_begin; c < it.c_end; ++c)
        for (int ka = 0; ka < katoms; ++ka, ++g) {
          const int st = g % stages;
          // The producer is mostly ahead: it backs off instead of taking issue slots from the
          // consumer warps of its scheduler.
          while (!mbar_try_wait(empty + 8u * st, static_cast<std::uint32_t>(((g / stages) & 1) ^ 1))) __nanosleep(64);
          const std::uint32_t bar = full + 8u * st;
          const std::uint32_t dst = smem_u32(stage_mem) + static_cast<std::uint32_t>(st * kStageBytes);
          mbar_expect_tx(bar, kStageBytes);
#pragma unroll
          for (int part = 0; part < 3; ++part)
            tma_load_2d(dst + part * kAtom * 2, &map_w, bar, ka * 64, part * part_rows + it.l * p.E + c * kChunkE, policy);
          if constexpr (STREAM) {
#pragma unroll
            for (int tile = 0; tile < 4; ++tile)  // tokens t0 + 64 tile .., tile = 2 wg + mt (past N: zero)
              tma_load_3d(dst + (3 + tile) * kAtom * 2, &map_x, bar, ka * 64, it.l, it.t0 + 64 * tile, policy);
          }
        }
    }
    return;
  }

  // ---- consumer warpgroups ----
  asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n" ::: "memory");
  const int wg = warpgroup_index(), ltid = tid % 128, wwarp = warp % 4;
  const int g8 = lane / 4, tq = lane % 4;
  unsigned char* my_region = base + wg * region;
  __nv_bfloat16* xs = reinterpret_cast<__nv_bfloat16*>(my_region);  // resident: [tile 2][katoms][64][64] atoms
  const std::uint64_t desc_x0 = wgmma_desc(xs);
  const std::uint64_t desc_s0 = wgmma_desc(stage_mem);
  // Token (in the unit's warpgroup half) of this thread's row 2 mt + rh.
  const auto row_token = [&](int mt, int rh) { return mt * 64 + wwarp * 16 + rh * 8 + g8; };
  // The selected (biased score, expert) of token t of head l: the routing, or split's candidates.
  const auto emit = [&](int l, int t, int split, const float(&sel_v)[KMAX], const int(&sel_e)[KMAX]) {
    if (wp.split.splits == 1) {
      router_select::finish_token<KMAX>(p, l, t, sel_v, sel_e);
      return;
    }
    const long long at = ((static_cast<long long>(l) * p.N + t) * wp.split.splits + split) * p.k;
#pragma unroll
    for (int j = 0; j < KMAX; ++j)
      if (j < p.k) {
        wp.split.cand_v[at + j] = sel_v[j];
        wp.split.cand_e[at + j] = sel_e[j];
      }
  };
  int g = 0;
  if constexpr (pingpong)
    if (wg == 1) named_arrive(3);  // warpgroup 0 issues first
  for (int q = 0; q < nloc; ++q) {
    const Item it = item(q);
    const int l = it.l;
    const int t0 = it.t0 + wg * kGroupTokens;
    if constexpr (!STREAM) {  // this warpgroup's x rows (missing tokens zero)
      const int per_row = p.dim / 8;
      for (int c = ltid; c < kGroupTokens * per_row; c += 128) {
        const int r = c / per_row, col = (c % per_row) * 8;
        const int t = t0 + r;
        const __nv_bfloat16* src = p.x + (static_cast<long long>(t < p.N ? t : 0) * p.L + l) * p.dim + col;
        cp_async16(smem_u32(xs + ((r / 64) * katoms + col / 64) * kAtom + sw64(r % 64, col % 64)), src, t < p.N);
      }
      cp_async_commit();
      cp_async_wait<0>();
      fence_proxy_async();  // cp.async wrote them (generic proxy); wgmma reads them (async proxy)
      warpgroup_sync(wg);
    }

    float lv[4][KMAX];
    int li[4][KMAX];
    float thr[4];
    reset_lists(lv, li, thr);
    const float* bias_l = p.bias != nullptr ? p.bias + static_cast<long long>(l) * p.E : nullptr;

    for (int c = it.c_begin; c < it.c_end; ++c, g += katoms) {
      float acc[2][32];  // written by the chunk's first products (scale-d false), so never zeroed
      if constexpr (pingpong) named_sync(3 + wg);  // this warpgroup's turn to issue (the other one has issued)
      wgmma_fence();
      // The products of one stage: resident x from this warpgroup's region, streamed x from the stage.
      const auto issue = [&](int ka, bool first_stage) {
        const int st = (g + ka) % stages;
        mbar_wait(full + 8u * st, static_cast<std::uint32_t>(((g + ka) / stages) & 1));
        const std::uint64_t desc_s = desc_s0 + static_cast<std::uint64_t>((st * kStageBytes) >> 4);
#pragma unroll
        for (int part = 2; part >= 0; --part)  // smallest part first
#pragma unroll
          for (int kk = 0; kk < 4; ++kk)
#pragma unroll
            for (int mt = 0; mt < 2; ++mt) {
              const std::uint64_t da =
                  STREAM ? desc_s + static_cast<std::uint64_t>((((3 + wg * 2 + mt) * kAtom) * 2 + kk * 32) >> 4)
                         : desc_x0 + static_cast<std::uint64_t>((((mt * katoms + ka) * kAtom) * 2 + kk * 32) >> 4);
              const std::uint64_t db = desc_s + static_cast<std::uint64_t>((part * kAtom * 2 + kk * 32) >> 4);
              if (first_stage && part == 2 && kk == 0)
                wgmma_m64n64k16_ss_first(acc[mt], da, db);
              else
                wgmma_m64n64k16_ss(acc[mt], da, db, 1);
            }
        wgmma_commit();
        if (ka > 0) {  // the products of stage ka - 1 have read it: release it
          wgmma_wait<1>();
          __syncwarp();
          if (lane == 0) mbar_arrive(empty + 8u * ((g + ka - 1) % stages));
        }
      };
      issue(0, true);
      if constexpr (STREAM) {
#pragma unroll 1
        for (int ka = 1; ka < katoms; ++ka) issue(ka, false);
      } else {
#pragma unroll
        for (int ka = 1; ka < KATOMS; ++ka) issue(ka, false);
      }
      // The other warpgroup's turn: its products run after these, and its selection overlaps them.
      // Its last turn of the block needs no signal.
      if constexpr (pingpong)
        if (!(wg == 1 && q == nloc - 1 && c == it.c_end - 1)) named_arrive(3 + (wg ^ 1));
      // The chunk's biases (experts past E: -inf, never selected) load while the products run.
      const int e_lane = c * kChunkE + 2 * tq;
      float b[16];
#pragma unroll
      for (int j = 0; j < 16; ++j) {
        const int e = e_lane + 8 * (j / 2) + (j % 2);
        b[j] = e < p.E ? (bias_l != nullptr ? __ldg(bias_l + e) : 0.0f) : -INFINITY;
      }
      wgmma_wait<0>();
      __syncwarp();
      if (lane == 0) mbar_arrive(empty + 8u * ((g + katoms - 1) % stages));  // this warp is done with the chunk

      float v[4][16];  // row mt * 2 + rh
#pragma unroll
      for (int mt = 0; mt < 2; ++mt)
#pragma unroll
        for (int rh = 0; rh < 2; ++rh)
#pragma unroll
          for (int j = 0; j < 16; ++j) v[mt * 2 + rh][j] = acc[mt][4 * (j / 2) + 2 * rh + (j % 2)] + b[j];
#pragma unroll
      for (int i = 0; i < 4; ++i) select_row<KMAX>(v[i], lv[i], li[i], thr[i], e_lane, queues + tid);
#pragma unroll
      for (int i = 0; i < 4; ++i) {  // the quad's best KMAX-th score bounds the token's KMAX-th from below
        float th = fmaxf(thr[i], lv[i][KMAX - 1]);
        th = fmaxf(th, __shfl_xor_sync(0xffffffffu, th, 1));
        th = fmaxf(th, __shfl_xor_sync(0xffffffffu, th, 2));
        thr[i] = th;
      }
    }

    if constexpr (STREAM) {
      // Each quad merges its four lists in registers; lane tq of the quad emits row tq's token.
      float sel_v[KMAX];
      int sel_e[KMAX];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        quad_merge<KMAX>(lv[i], li[i]);
#pragma unroll
        for (int j = 0; j < KMAX; ++j)
          if (i == tq) {
            sel_v[j] = lv[i][j];
            sel_e[j] = li[i][j];
          }
      }
      const int t = t0 + row_token(tq / 2, tq % 2);
      if (t < p.N) emit(l, t, it.split, sel_v, sel_e);
    } else {
      // Merge the four lists of each token (the quad's threads) through the warpgroup's region.
      warpgroup_sync(wg);                                   // every warp's products have read x
      float* cand_v = reinterpret_cast<float*>(my_region);  // [128][4][KMAX]
      int* cand_e = reinterpret_cast<int*>(cand_v + kGroupTokens * 4 * KMAX);
      router_select::store_quad_lists<KMAX>(cand_v, cand_e, lv, li, tq, row_token);
      warpgroup_sync(wg);
      const int t = t0 + ltid;
      if (t < p.N) {
        float sel_v[KMAX];
        int sel_e[KMAX];
        router_select::merge_sorted_lists<KMAX, 4>(cand_v + ltid * 4 * KMAX, cand_e + ltid * 4 * KMAX, 4, KMAX, sel_v,
                                                   sel_e);
        emit(l, t, it.split, sel_v, sel_e);
      }
      warpgroup_sync(wg);  // the lists are read before the next unit's x rows land
    }
  }
}

template <int KMAX, int KATOMS, bool STREAM>
cudaError_t launch_kmax(const RouterTcParams& p, WalkParams wp, const CUtensorMap& map_w, const CUtensorMap& map_x,
                        cudaStream_t stream) {
  const int regions = kGroupsR * region_bytes(p.dim, KMAX, STREAM) + kQueueBytes;
  const int stage_bytes = STREAM ? kStageBytesS : kStageBytesR;
  int stages = (kSmemCapR - 1024 - regions) / stage_bytes;  // resident dim 256: 2, dim 128: 5; streamed: 3
  stages = stages > kMaxStagesR ? kMaxStagesR : stages;
  if (stages < 2) return cudaErrorInvalidConfiguration;
  wp.stages = stages;
  const int smem = regions + stages * stage_bytes + 1024;  // + alignment slack
  auto* kernel = router_bf16x3_wgmma_kernel<KMAX, KATOMS, STREAM>;
  cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  int device = 0, sms = 0;
  if (e == cudaSuccess) e = cudaGetDevice(&device);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  if (e != cudaSuccess) return e;
  const long long items = static_cast<long long>(p.L) * ((p.N + kUnitTokens - 1) / kUnitTokens) * wp.split.splits;
  const long long blocks = items < sms ? items : sms;
  kernel<<<static_cast<unsigned>(blocks), kThreadsR, smem, stream>>>(p, wp, map_w, map_x);
  return cudaGetLastError();
}

template <int KATOMS, bool STREAM>
cudaError_t launch_dim(const RouterTcParams& p, const WalkParams& wp, const CUtensorMap& map_w, const CUtensorMap& map_x,
                       cudaStream_t stream) {
  if (p.k <= 2) return launch_kmax<2, KATOMS, STREAM>(p, wp, map_w, map_x, stream);
  if (p.k <= 4) return launch_kmax<4, KATOMS, STREAM>(p, wp, map_w, map_x, stream);
  return launch_kmax<8, KATOMS, STREAM>(p, wp, map_w, map_x, stream);
}

// x [N][L][dim] as a 3-D tensor (dim, L, N), read in boxes of 64 columns x 1 head x 64 tokens,
// 128-byte swizzled (tokens past N read as zero).
cudaError_t make_x_map(CUtensorMap* map, const RouterTcParams& p) {
  const EncodeTiled encode = encode_tiled();
  if (encode == nullptr) return cudaErrorNotSupported;
  const cuuint64_t dims[3] = {static_cast<cuuint64_t>(p.dim), static_cast<cuuint64_t>(p.L), static_cast<cuuint64_t>(p.N)};
  const cuuint64_t strides[2] = {static_cast<cuuint64_t>(p.dim) * 2, static_cast<cuuint64_t>(p.L) * p.dim * 2};
  const cuuint32_t box[3] = {64, 1, 64};
  const cuuint32_t elem_strides[3] = {1, 1, 1};
  const CUresult r = encode(map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 3, const_cast<__nv_bfloat16*>(p.x), dims, strides, box,
                            elem_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                            CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  return r == CUDA_SUCCESS ? cudaSuccess : cudaErrorInvalidValue;
}

}  // namespace

cudaError_t launch_router_bf16x3_wgmma(const RouterTcParams& p, const RouterSplit& split, cudaStream_t stream) {
  if (p.N == 0) return cudaSuccess;
  CUtensorMap map_w{}, map_x{};
  // The parts as one [3 L E][dim] matrix; rows past a head's E are masked in the selection (and past
  // the last part zero-filled by TMA).
  cudaError_t e = make_map(&map_w, p.w_parts, 3LL * p.L * p.E, p.dim, 64);
  if (e != cudaSuccess) return e;
  const WalkParams wp{0, split};
  switch (p.dim) {
    case 64:
      return launch_dim<1, false>(p, wp, map_w, map_x, stream);
    case 128:
      return launch_dim<2, false>(p, wp, map_w, map_x, stream);
    case 192:
      return launch_dim<3, false>(p, wp, map_w, map_x, stream);
    case 256:
      return launch_dim<4, false>(p, wp, map_w, map_x, stream);
    default:  // a multiple of 64 (router_bf16x3_takes_dim)
      e = make_x_map(&map_x, p);
      if (e != cudaSuccess) return e;
      return launch_dim<0, true>(p, wp, map_w, map_x, stream);
  }
}

}  // namespace hpsim::kernels::device
