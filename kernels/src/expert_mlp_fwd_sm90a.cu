// HP expert MLP forward on wgmma (sm_90a). A block of three consumer warpgroups owns up to 192
// grouped rows of one (head, expert) segment (64 rows per warpgroup), so a typical segment streams
// its expert's weights once rather than once per 64 rows. The block is persistent and
// warp-specialised: a producer warpgroup streams the weight chunks (one thread, TMA, four stages)
// and gathers each item's X rows (three warps, cp.async, two buffers), item after item; the consumer
// warpgroups wait on mbarriers, not on each other, so one warpgroup's GELU and epilogue overlap
// the others' tensor work. Per chunk of 64 hidden units (K_e rows and V_e^T columns, 128-byte
// swizzled, K-major, shared by the three consumer warpgroups):
//   S = X K_c^T      wgmma m64n64k16 x 8, A and B from shared memory
//   P = GELU(S)      in registers, repacked as the A operand of the next wgmma
//   Y += P V_c       wgmma m64n128k16 x 4, A from registers, B from shared memory
// The rows x f activation never leaves registers; Y is staged in shared memory and stored by TMA
// (a warpgroup's last rows % 8 by its threads). Symbols as in expert_mlp.h. Compiled for sm_90a
// only (wgmma).
#include "expert_mlp_wgmma.h"
#include "sm90.cuh"

namespace hpsim::kernels::device {
namespace {

using namespace mlp;

constexpr int kRowsW = kWgmmaRows;       // 192
constexpr int kGroups = kRowsW / 64;     // consumer warpgroups
constexpr int kConsumerThreads = kGroups * 128;
constexpr int kThreadsW = kConsumerThreads + 128;  // + the producer warpgroup
constexpr int kFw = 64;                  // hidden units per chunk
constexpr int kStagesW = 4;  // weight chunks in flight, across item boundaries
constexpr int kStageElems = 4 * kAtom;   // K chunk [64][128] (2 atoms) + V^T chunk [128][64] (2 atoms)
constexpr int kXElems = 2 * kGroups * kAtom;  // X tile: 2 atoms (h 0-63, 64-127) of kRowsW rows
constexpr int kXBufs = 2;                     // item q computes from one while item q + 1's rows load
constexpr int kSmemBytes = (kXBufs * kXElems + kStagesW * kStageElems) * 2 + 1024;  // + alignment slack (225 KB)

// Element offset of (r, c), c < 128, in an X buffer: two column halves of kRowsW swizzled rows.
__device__ __forceinline__ int xoff(int r, int c) { return (c >> 6) * kGroups * kAtom + sw64(r, c & 63); }

struct Barriers {
  std::uint64_t full_w[kStagesW];   // stage filled (TMA bytes)
  std::uint64_t empty_w[kStagesW];  // stage released by the 12 consumer warps
  std::uint64_t full_x[kXBufs];     // X rows landed (the gathering producer lanes, cp.async)
  std::uint64_t empty_x[kXBufs];    // X buffer (and Y staging) released by the 12 consumer warps
};

// Persistent: block b walks items b, b + gridDim.x, ...; item q of the walk uses X buffer q % 2,
// chunk c of the walk (item c / nchunks) weight stage c % kStagesW.
// Launched at 128 registers per thread; the producer warpgroup gives registers back (56) so the
// consumers can hold their accumulators (64 + 32 + 16 fragments) in 152: 3 x 152 + 56 = 4 x 128.
__global__ void __launch_bounds__(kThreadsW, 1)
    expert_mlp_fwd_wgmma_kernel(MlpParams p, Schedule sched, const __grid_constant__ CUtensorMap map_k,
                                const __grid_constant__ CUtensorMap map_vt, const __grid_constant__ CUtensorMap map_y,
                                const __grid_constant__ CUtensorMap map_y8) {
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  __shared__ Barriers bars;
  const std::uint32_t misalign = smem_u32(smem_raw) & 1023u;
  __nv_bfloat16* base = reinterpret_cast<__nv_bfloat16*>(smem_raw + (misalign ? 1024u - misalign : 0u));
  __nv_bfloat16* xbufs = base;                       // [2][2][kRowsW][64]: per buffer h 0-63, then h 64-127
  __nv_bfloat16* stages = base + kXBufs * kXElems;   // kStagesW x (K chunk 2 atoms, V^T chunk 2 atoms)
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int nchunks = p.f / kFw;
  griddep_wait();  // launched while the schedule build runs
  const int num_items = sched.counters[0];
  const int first = static_cast<int>(blockIdx.x), stride = static_cast<int>(gridDim.x);
  if (first >= num_items) return;
  const int nloc = (num_items - 1 - first) / stride + 1;  // this block's items
  const std::uint32_t full_w = smem_u32(bars.full_w), empty_w = smem_u32(bars.empty_w);
  const std::uint32_t full_x = smem_u32(bars.full_x), empty_x = smem_u32(bars.empty_x);
  if (tid == 0) {
    init_ring(full_w, empty_w, kStagesW, 1, kGroups * 4);
    init_ring(full_x, empty_x, kXBufs, kGroups * 32, kGroups * 4);
    fence_barrier_init();
  }
  __syncthreads();

  if (warp >= kGroups * 4) {  // ---- producer warpgroup ----
    asm volatile("setmaxnreg.dec.sync.aligned.u32 56;\n" ::: "memory");
    const int pw = warp - kGroups * 4;
    if (pw == 0) {  // weight chunks: K_e rows j*64 .. j*64+63 (two 64-column atoms), V^T_e columns j*64 .. (one)
      if (lane != 0) return;
      std::uint64_t policy = 0;
      asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;\n" : "=l"(policy));
      int g = 0;  // chunk of the walk
      for (int q = 0; q < nloc; ++q) {
        const int segment = sched.items[first + q * stride].segment;
        for (int j = 0; j < nchunks; ++j, ++g)
          load_weight_chunk<kStagesW>(smem_u32(stages), g, full_w, empty_w, &map_k, &map_vt, segment, j, p.f, policy);
      }
      return;
    }
    // Warps 1 .. kGroups of the producer: X rows 64 (pw - 1) .. 64 pw - 1 of every item, gathered
    // through perm (missing rows zero). Lane i fetches the sub-token of rows i and i + 32; each
    // cp.async then covers two whole rows (16 lanes x 16 bytes each).
    const int row0 = 64 * (pw - 1);
    const float inv_k = 1.0f / static_cast<float>(p.k);
    for (int q = 0; q < nloc; ++q) {
      const WorkItem w = sched.items[first + q * stride];
      const int rows = w.row_end - w.row_begin;
      const int l = w.segment / p.E;
      const int b = q & 1;
      int tok[2];
#pragma unroll
      for (int m = 0; m < 2; ++m) {
        const int r = row0 + lane + 32 * m;
        const int pair = r < rows ? p.perm[w.row_begin + r] : -1;
        tok[m] = pair >= 0 ? div_small(pair, p.k, inv_k) : -1;
      }
      mbar_wait(empty_x + 8u * b, static_cast<std::uint32_t>(((q >> 1) & 1) ^ 1));
      __nv_bfloat16* xs = xbufs + b * kXElems;
#pragma unroll
      for (int m = 0; m < 2; ++m) {
#pragma unroll 2
        for (int half = 0; half < 16; ++half) {
          const int r = row0 + 32 * m + 2 * half + lane / 16, cc = lane % 16;
          const int t = __shfl_sync(0xffffffffu, tok[m], 2 * half + lane / 16);
          const __nv_bfloat16* src = p.x + (t >= 0 ? ((static_cast<long long>(t) * p.L + l) * kH + cc * 8) : 0);
          cp_async16(smem_u32(xs + xoff(r, cc * 8)), src, t >= 0);
        }
      }
      cp_async_mbar_arrive(full_x + 8u * b);
    }
    cp_async_wait<0>();  // the last gathers land before the warp exits
    return;
  }

  // ---- consumer warpgroups: rows 64 wg .. 64 wg + 63 of each item ----
  asm volatile("setmaxnreg.inc.sync.aligned.u32 152;\n" ::: "memory");
  const int wg = warpgroup_index(), ltid = tid % 128;
  // Descriptors of the first k16 step; later steps add constant byte offsets (>> 4) to them.
  const std::uint64_t desc_x0 = wgmma_desc(xbufs + wg * kAtom);
  const std::uint64_t desc_stage0 = wgmma_desc(stages);
  WorkItem nxt = sched.items[first];
  int g = 0;
  int pending_x = -1;  // the first warp of the warpgroup: the X buffer its Y stores may still be reading
  for (int q = 0; q < nloc; ++q) {
    const WorkItem cur = nxt;
    if (q + 1 < nloc) nxt = sched.items[first + (q + 1) * stride];
    const int rows = cur.row_end - cur.row_begin;
    const bool active = wg * 64 < rows;
    const int b = q & 1;
    __nv_bfloat16* xs = xbufs + b * kXElems;
    const std::uint64_t desc_x = desc_x0 + static_cast<std::uint64_t>((b * kXElems * 2) >> 4);
    mbar_wait(full_x + 8u * b, static_cast<std::uint32_t>((q >> 1) & 1));
    fence_proxy_async();  // the rows landed through cp.async (generic proxy); wgmma reads them (async proxy)

    float y[64];
#pragma unroll
    for (int i = 0; i < 64; ++i) y[i] = 0.0f;
    if (!active) {  // no rows of this item: pass the weight chunks on without tensor work
      if (pending_x >= 0) {
        if (lane == 0) {
          bulk_wait_read();
          mbar_arrive(empty_x + 8u * pending_x);
        }
        pending_x = -1;
      }
      for (int j = 0; j < nchunks; ++j, ++g) {
        const int st = g % kStagesW;
        mbar_wait(full_w + 8u * st, static_cast<std::uint32_t>((g / kStagesW) & 1));
        __syncwarp();
        if (lane == 0) mbar_arrive(empty_w + 8u * st);
      }
      __syncwarp();
      if (lane == 0) mbar_arrive(empty_x + 8u * b);
      continue;
    }
    std::uint32_t pa[4][4];  // GELU(S) of the chunk whose Y product is in flight (read by wgmma)

    // Y += P V_c of chunk j - 1 stays in flight while S of chunk j is issued behind it; the
    // stage of chunk j - 1 (and the registers of its P) are released once both completed. A
    // warpgroup with any rows of the item computes all 64 (zero-filled past its end): a wgmma kept
    // in flight across a branch would be serialised by the compiler; one with none skipped above.
    int prev_st = -1;
    for (int j = 0; j < nchunks; ++j, ++g) {
      const int st = g % kStagesW;
      mbar_wait(full_w + 8u * st, static_cast<std::uint32_t>((g / kStagesW) & 1));
      const std::uint64_t desc_k = desc_stage0 + static_cast<std::uint64_t>((st * kStageElems * 2) >> 4);
      float s[32];
      {
#pragma unroll
        for (int i = 0; i < 32; ++i) s[i] = 0.0f;
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < kH / 16; ++kk)
          wgmma_m64n64k16_ss(s, desc_x + static_cast<std::uint64_t>(((kk / 4) * kGroups * kAtom * 2 + (kk % 4) * 32) >> 4),
                             desc_k + static_cast<std::uint64_t>(((kk / 4) * kAtom * 2 + (kk % 4) * 32) >> 4), 1);
        wgmma_commit();
        if (pending_x >= 0) {  // the previous item's Y stores have left its buffer: release it
          if (lane == 0) {
            bulk_wait_read();
            mbar_arrive(empty_x + 8u * pending_x);
          }
          pending_x = -1;
        }
        wgmma_wait<0>();  // S of chunk j, and Y of chunk j - 1 before it
      }
      __syncwarp();
      if (prev_st >= 0 && lane == 0) mbar_arrive(empty_w + 8u * prev_st);  // this warp is done with chunk j - 1
      {
#pragma unroll
        for (int ks = 0; ks < 4; ++ks) {
          const int i0 = 2 * ks, i1 = 2 * ks + 1;
          pa[ks][0] = gelu_bf16x2(s[4 * i0 + 0], s[4 * i0 + 1]);
          pa[ks][1] = gelu_bf16x2(s[4 * i0 + 2], s[4 * i0 + 3]);
          pa[ks][2] = gelu_bf16x2(s[4 * i1 + 0], s[4 * i1 + 1]);
          pa[ks][3] = gelu_bf16x2(s[4 * i1 + 2], s[4 * i1 + 3]);
        }
        const std::uint64_t desc_v = desc_k + static_cast<std::uint64_t>((2 * kAtom * 2) >> 4);
        wgmma_fence();
#pragma unroll
        for (int ks = 0; ks < kFw / 16; ++ks)
          wgmma_m64n128k16_rs(y, pa[ks], desc_v + static_cast<std::uint64_t>((ks * 32) >> 4), 1);
        wgmma_commit();
      }
      prev_st = st;
    }
    wgmma_wait<0>();  // the last Y
    __syncwarp();
    if (lane == 0) mbar_arrive(empty_w + 8u * prev_st);

    // Epilogue: stage this warpgroup's Y rows as bf16 in its own rows of the X buffer (its S
    // products are done; the other warpgroups read only their own rows), then store them by TMA
    // (a 64-row box, or 8-row boxes) and the last rows % 8 by 16-byte stores, so the warpgroup
    // goes on to the next item while the stores drain. The first warp releases the buffer once
    // the TMA stores have read it (behind the next item's first S product, or before its weight
    // waits when the warpgroup has no rows in it), the others at once.
    const int valid = min(64, rows - 64 * wg);  // >= 1: a warpgroup without rows skipped the item
    stage_accumulator_rows(y, xs, [](int r, int c) { return xoff(r, c); }, 64 * wg, warp, lane);
    fence_proxy_async();  // the staged rows before the TMA stores read them
    warpgroup_sync(wg);
    const int valid8 = valid & ~7;
    if (ltid == 0 && valid8 > 0) {
      const int row0 = cur.row_begin + 64 * wg;
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        const __nv_bfloat16* src = xs + hh * kGroups * kAtom + 64 * wg * 64;
        if (valid8 == 64) {
          tma_store_2d(&map_y, smem_u32(src), 64 * hh, row0);
        } else {
          for (int r8 = 0; r8 < valid8; r8 += 8) tma_store_2d(&map_y8, smem_u32(src + r8 * 64), 64 * hh, row0 + r8);
        }
      }
      bulk_commit();
    }
    if (ltid < (valid - valid8) * 16) {
      const int r = 64 * wg + valid8 + ltid / 16, col = (ltid % 16) * 8;
      *reinterpret_cast<uint4*>(p.y + static_cast<long long>(cur.row_begin + r) * kH + col) =
          *reinterpret_cast<const uint4*>(xs + xoff(r, col));
    }
    __syncwarp();
    if (warp % 4 == 0 && valid8 > 0)
      pending_x = b;
    else if (lane == 0)
      mbar_arrive(empty_x + 8u * b);  // this warp is done with the buffer
  }
  if (pending_x >= 0 && lane == 0) bulk_wait_read();  // shared memory stays until the last stores have read it
}

}  // namespace

bool wgmma_supported() {
  int device = 0, major = 0, minor = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return false;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess) return false;
  if (cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess) return false;
  return major == 9 && minor == 0;
}

cudaError_t launch_expert_mlp_fwd_wgmma(const mlp::MlpParams& p, const Schedule& sched, long long rows,
                                        cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;  // no grouped rows, nothing to store (and no tensor map spans zero rows)
  // Host work first (attributes, tensor maps), so the device does not wait for it between the
  // schedule build and the kernel.
  const cudaError_t attr =  // per device: not cached
      cudaFuncSetAttribute(expert_mlp_fwd_wgmma_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemBytes);
  if (attr != cudaSuccess) return attr;
  int device = 0, sms = 0;
  cudaError_t e = cudaGetDevice(&device);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  if (e != cudaSuccess) return e;
  CUtensorMap map_k{}, map_vt{}, map_y{}, map_y8{};
  const long long segments = static_cast<long long>(p.L) * p.E;
  if (sched.max_items > 0) {
    e = make_map(&map_k, p.wk, segments * p.f, kH, 64);  // K: [L E f][h]
    if (e == cudaSuccess) e = make_map(&map_vt, p.wv, segments * kH, p.f, kH);  // V^T: [L E h][f]
    if (e == cudaSuccess) e = make_map(&map_y, p.y, rows, kH, 64);              // Y: [rows][h], 64-row boxes
    if (e == cudaSuccess) e = make_map(&map_y8, p.y, rows, kH, 8);              // and 8-row boxes
    if (e != cudaSuccess) return e;
  }
  e = build_schedule(p.offsets, sched, /*item_for_empty=*/false, stream);
  if (e != cudaSuccess || sched.max_items == 0) return e;
  const long long blocks = sched.max_items < sms ? sched.max_items : sms;
  return launch_after(expert_mlp_fwd_wgmma_kernel, dim3(static_cast<unsigned>(blocks)), dim3(kThreadsW), kSmemBytes,
                      stream, p, sched, map_k, map_vt, map_y, map_y8);
}

}  // namespace hpsim::kernels::device
