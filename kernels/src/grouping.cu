// Grouping (grouping.h): stable counting sort of the (token, slot) pairs by (head, expert), in one
// cooperative launch (every block resident; grid-wide barriers between the phases) and no host
// synchronisation. A task is one chunk of kGroupChunk pairs of one head; blocks loop over tasks.
//   1. per task, each warp counts its share of the chunk's experts (shared-memory integer
//      atomics); the block sums the warps' counts -> hist[l][c][:];
//   -- grid barrier --
//   2. per (head, expert) column, a warp scans the histograms over chunks (32 at a time, warp
//      shuffles, four columns per load round) -> chunk bases in place, the column total -> counts;
//   -- grid barrier --
//   3. per task, the block scans every segment's padded count (12 KB at L E = 3072, from L2) for
//      its head's segment offsets (block 0 also writes offsets, counts and the padding rows); the
//      per-warp start rows follow from the segment offset, the chunk base and the earlier warps'
//      counts (kept from step 1 when a block has one task, else counted again); each warp then
//      walks its pairs in order and places them (match_any gives the rank among equal experts
//      inside 32 pairs): positions follow pair order, so the sort is stable.
// Integer atomics only: the output does not depend on scheduling.
#include <algorithm>

#include <cooperative_groups.h>
#include <cub/block/block_scan.cuh>

#include "device_common.cuh"
#include "hpsim/kernels/cuda_check.h"
#include "hpsim/kernels/grouping.h"
#include "kernel_limits.h"

namespace hpsim::kernels {
namespace {

namespace cg = cooperative_groups;

constexpr int kChunk = static_cast<int>(limits::kGroupChunk);
constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
constexpr int kPairsPerWarp = kChunk / kWarps;
constexpr int kPairsPerLane = kPairsPerWarp / 32;

struct Params {
  const int* topk;
  int* offsets;
  int* perm;
  int* inverse;
  int* counts_out;
  int* hist;    // [L][C][E] workspace: histograms, then chunk bases
  int* counts;  // [L][E] workspace
  int L, N, k, E, pad, C;
};

__device__ __forceinline__ int padded(int count, int pad) { return (count + pad - 1) / pad * pad; }

constexpr int kRun = 8;  // segments per thread and round of the segment scan

// Segment offsets: an exclusive scan of every segment's padded count, in rounds of kThreads x kRun
// segments (each thread loads its run of kRun at once, then one block scan). Writes head l's
// offsets to seg_off[0 .. E) (l < 0: none) and, when `global`, every segment's offset and count
// and the padding rows.
__device__ void segment_offsets(const Params& p, int l, int* seg_off, bool global) {
  using Scan = cub::BlockScan<int, kThreads>;
  __shared__ typename Scan::TempStorage storage;
  const int S = p.L * p.E;
  int carry = 0;
  for (int r0 = 0; r0 < S; r0 += kThreads * kRun) {
    const int s0 = r0 + static_cast<int>(threadIdx.x) * kRun;
    int count[kRun], mine = 0;
#pragma unroll
    for (int i = 0; i < kRun; ++i) count[i] = s0 + i < S ? p.counts[s0 + i] : 0;
#pragma unroll
    for (int i = 0; i < kRun; ++i) mine += padded(count[i], p.pad);
    int base = 0, total = 0;
    Scan(storage).ExclusiveSum(mine, base, total);
    base += carry;
#pragma unroll
    for (int i = 0; i < kRun; ++i) {
      const int s = s0 + i;
      if (s >= S) break;
      const int rows = padded(count[i], p.pad);
      if (s / p.E == l) seg_off[s - l * p.E] = base;
      if (global) {
        p.offsets[s] = base;
        if (p.counts_out != nullptr) p.counts_out[s] = count[i];
        for (int r = base + count[i]; r < base + rows; ++r) p.perm[r] = -1;
      }
      base += rows;
    }
    carry += total;
    __syncthreads();  // the scan storage is reused
  }
  if (global && threadIdx.x == 0) p.offsets[S] = carry;
  __syncthreads();  // seg_off complete
}

// This warp's share of task t (kPairsPerWarp pairs of one chunk): its experts into ev (-1 past the
// end) and their counts into mine[0 .. E).
__device__ __forceinline__ void warp_counts(const Params& p, int t, int (&ev)[kPairsPerLane], int* mine) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int l = t / p.C, c = t % p.C;
  const long long pairs = static_cast<long long>(p.N) * p.k;
  const int* topk = p.topk + static_cast<long long>(l) * pairs;
  const long long begin = static_cast<long long>(c) * kChunk + static_cast<long long>(warp) * kPairsPerWarp;
  const long long end = min(begin + kPairsPerWarp, pairs);
#pragma unroll
  for (int j = 0; j < kPairsPerLane; ++j) {
    const long long i = begin + 32 * j + lane;
    ev[j] = i < end ? topk[i] : -1;
  }
  for (int e = lane; e < p.E; e += 32) mine[e] = 0;
  __syncwarp();
#pragma unroll
  for (int j = 0; j < kPairsPerLane; ++j) {
    if (ev[j] >= 0) atomicAdd(&mine[ev[j]], 1);
  }
}

__global__ void __launch_bounds__(kThreads) grouping_kernel(Params p) {
  extern __shared__ int smem[];  // [kWarps][E] per-warp counters, then [E] segment offsets
  cg::grid_group grid = cg::this_grid();
  const int tasks = p.L * p.C;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const long long pairs = static_cast<long long>(p.N) * p.k;

  // 1. Histograms: per-warp counts, summed over the warps. A block with one task keeps its experts
  // (ev) and counters for step 3.
  const bool single = tasks <= static_cast<int>(gridDim.x);
  int* mine = smem + warp * p.E;
  int ev[kPairsPerLane];
  for (int t = blockIdx.x; t < tasks; t += gridDim.x) {
    warp_counts(p, t, ev, mine);
    __syncthreads();
    int* out = p.hist + static_cast<long long>(t) * p.E;
    for (int e = threadIdx.x; e < p.E; e += kThreads) {
      int sum = 0;
      for (int w = 0; w < kWarps; ++w) sum += smem[w * p.E + e];
      out[e] = sum;
    }
    __syncthreads();
  }
  grid.sync();

  // 2. Column scans over chunks: one warp per (head, expert), kCols columns per load round.
  constexpr int kCols = 4;
  const int warps = gridDim.x * kWarps, columns = p.L * p.E;
  for (int col0 = (blockIdx.x * kWarps + warp) * kCols; col0 < columns; col0 += warps * kCols) {
    int* h[kCols];
    int running[kCols];
#pragma unroll
    for (int j = 0; j < kCols; ++j) {
      const int col = min(col0 + j, columns - 1);  // a repeated last column is scanned but not stored
      h[j] = p.hist + static_cast<long long>(col / p.E) * p.C * p.E + col % p.E;
      running[j] = 0;
    }
    for (int c0 = 0; c0 < p.C; c0 += 32) {
      const int c = c0 + lane;
      int v[kCols], incl[kCols];
#pragma unroll
      for (int j = 0; j < kCols; ++j) v[j] = incl[j] = c < p.C ? h[j][static_cast<long long>(c) * p.E] : 0;
#pragma unroll
      for (int d = 1; d < 32; d *= 2) {
#pragma unroll
        for (int j = 0; j < kCols; ++j) {
          const int up = __shfl_up_sync(0xffffffffu, incl[j], d);
          if (lane >= d) incl[j] += up;
        }
      }
#pragma unroll
      for (int j = 0; j < kCols; ++j) {
        if (c < p.C && col0 + j < columns) h[j][static_cast<long long>(c) * p.E] = running[j] + incl[j] - v[j];
        running[j] += __shfl_sync(0xffffffffu, incl[j], 31);
      }
    }
    if (lane == 0) {
#pragma unroll
      for (int j = 0; j < kCols; ++j) {
        if (col0 + j < columns) p.counts[col0 + j] = running[j];
      }
    }
  }
  grid.sync();

  // 3. Offsets and the stable scatter, task by task.
  int* seg_off = smem + kWarps * p.E;
  if (blockIdx.x == 0 && tasks == 0) segment_offsets(p, -1, seg_off, true);
  const unsigned lanes_below = (1u << lane) - 1u;
  for (int t = blockIdx.x; t < tasks; t += gridDim.x) {
    const int l = t / p.C;
    segment_offsets(p, l, seg_off, blockIdx.x == 0 && t == 0);
    const long long begin = static_cast<long long>(t % p.C) * kChunk + static_cast<long long>(warp) * kPairsPerWarp;
    if (!single) {
      warp_counts(p, t, ev, mine);
      __syncthreads();
    }
    // Per-warp start rows: segment offset + chunk base + earlier warps.
    const int* chunk_base = p.hist + static_cast<long long>(t) * p.E;
    for (int e = threadIdx.x; e < p.E; e += kThreads) {
      int running = seg_off[e] + chunk_base[e];
      for (int w = 0; w < kWarps; ++w) {
        const int v = smem[w * p.E + e];
        smem[w * p.E + e] = running;
        running += v;
      }
    }
    __syncthreads();
#pragma unroll
    for (int j = 0; j < kPairsPerLane; ++j) {
      const long long i = begin + 32 * j + lane;
      const int e = ev[j];
      const unsigned peers = __match_any_sync(0xffffffffu, e);
      const int base = e >= 0 ? mine[e] : 0;
      __syncwarp();
      if (e >= 0) {
        const int pos = base + __popc(peers & lanes_below);
        p.perm[pos] = static_cast<int>(i);
        p.inverse[static_cast<long long>(l) * pairs + i] = pos;
        if ((peers & lanes_below) == 0) mine[e] = base + __popc(peers);
      }
      __syncwarp();
    }
    __syncthreads();  // the counters are reused by the next task
  }
}

}  // namespace

core::Status launch(const GroupingArgs& args, void* workspace, Stream stream_handle) {
  HPSIM_TRY(can_implement(args));
  auto stream = static_cast<cudaStream_t>(stream_handle);
  Params p;
  p.topk = args.topk_expert;
  p.offsets = args.offsets;
  p.perm = args.perm;
  p.inverse = args.inverse;
  p.counts_out = args.counts;
  p.L = static_cast<int>(args.num_heads);
  p.N = static_cast<int>(args.num_tokens);
  p.k = static_cast<int>(args.top_k);
  p.E = static_cast<int>(args.num_experts);
  p.pad = static_cast<int>(args.pad_to);
  p.C = static_cast<int>(limits::ceil_div(args.num_tokens * args.top_k, limits::kGroupChunk));
  const long long chunks_alloc = p.C > 0 ? p.C : 1;
  p.hist = static_cast<int*>(workspace);
  p.counts = p.hist + limits::round_up(args.num_heads * chunks_alloc * args.num_experts * 4, limits::kAlign) / 4;

  // Every block must be resident for the grid barriers: at most the occupancy times the SMs. The
  // device queries cost microseconds of host time, so the last answer is kept per host thread; the
  // shared-memory limit is the kernel's on the device, so every thread sets the same (largest)
  // value and no thread can lower it under another.
  const int smem = (kWarps + 1) * p.E * 4;
  constexpr int kMaxSmem = (kWarps + 1) * static_cast<int>(limits::kGroupMaxExperts) * 4;
  struct Fit {
    int device = -1, smem = -1, resident = 0;
  };
  thread_local Fit fit;
  int device = 0;
  HPSIM_CUDA_TRY(cudaGetDevice(&device));
  if (fit.device != device || fit.smem != smem) {
    int sms = 0, per_sm = 0;
    HPSIM_CUDA_TRY(cudaFuncSetAttribute(grouping_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kMaxSmem));
    HPSIM_CUDA_TRY(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    HPSIM_CUDA_TRY(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, grouping_kernel, kThreads, smem));
    if (per_sm < 1) return core::Error{core::ErrorCode::kUnsupported, "grouping: the kernel does not fit on an SM"};
    fit = {device, smem, per_sm * sms};
  }
  const long long tasks = static_cast<long long>(p.L) * p.C;
  const long long blocks = std::max(1LL, std::min(tasks, static_cast<long long>(fit.resident)));
  void* kernel_args[] = {&p};
  HPSIM_CUDA_TRY(cudaLaunchCooperativeKernel(reinterpret_cast<const void*>(grouping_kernel), dim3(static_cast<unsigned>(blocks)),
                                             dim3(kThreads), kernel_args, static_cast<std::size_t>(smem), stream));
  HPSIM_CUDA_TRY_LAUNCH("grouping_kernel");
  return core::Status::ok();
}

}  // namespace hpsim::kernels
