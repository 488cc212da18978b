// Grouping (grouping.h): stable counting sort of the (token, slot) pairs by (head, expert), in
// four launches and no host synchronisation:
//   1. per chunk of kGroupChunk pairs, a histogram over experts (shared-memory integer atomics);
//   2. per (head, expert), an exclusive scan of the histograms over chunks -> chunk bases, counts;
//   3. one block: padded segment sizes -> offsets (exclusive scan), padding rows -> perm = -1;
//   4. per chunk, each warp walks its pairs in order and places them (match_any gives the rank
//      among equal experts inside 32 pairs): positions follow pair order, so the sort is stable.
// Integer atomics only: the output does not depend on scheduling.
#include <cub/block/block_scan.cuh>

#include "device_common.cuh"
#include "hpsim/kernels/cuda_check.h"
#include "hpsim/kernels/grouping.h"
#include "kernel_limits.h"

namespace hpsim::kernels {
namespace {

constexpr int kChunk = static_cast<int>(limits::kGroupChunk);
constexpr int kWarps = 8;
constexpr int kPairsPerWarp = kChunk / kWarps;

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

__global__ void __launch_bounds__(256) histogram_kernel(Params p) {
  extern __shared__ int hist[];
  const int c = blockIdx.x, l = blockIdx.y;
  for (int e = threadIdx.x; e < p.E; e += blockDim.x) hist[e] = 0;
  __syncthreads();
  const long long pairs = static_cast<long long>(p.N) * p.k;
  const long long begin = static_cast<long long>(c) * kChunk;
  const long long end = min(begin + kChunk, pairs);
  const int* topk = p.topk + static_cast<long long>(l) * pairs;
  for (long long i = begin + threadIdx.x; i < end; i += blockDim.x) atomicAdd(&hist[topk[i]], 1);
  __syncthreads();
  int* out = p.hist + (static_cast<long long>(l) * p.C + c) * p.E;
  for (int e = threadIdx.x; e < p.E; e += blockDim.x) out[e] = hist[e];
}

__global__ void __launch_bounds__(256) chunk_scan_kernel(Params p) {
  const int e = blockIdx.x * blockDim.x + threadIdx.x, l = blockIdx.y;
  if (e >= p.E) return;
  int running = 0;
  for (int c = 0; c < p.C; ++c) {
    int* h = p.hist + (static_cast<long long>(l) * p.C + c) * p.E + e;
    const int v = *h;
    *h = running;
    running += v;
  }
  p.counts[l * p.E + e] = running;
}

constexpr int kOffsetThreads = 1024;

__global__ void __launch_bounds__(kOffsetThreads) offsets_kernel(Params p) {
  using Scan = cub::BlockScan<int, kOffsetThreads>;
  __shared__ typename Scan::TempStorage storage;
  const int S = p.L * p.E;
  const int per_thread = (S + kOffsetThreads - 1) / kOffsetThreads;
  const int s_begin = min(S, static_cast<int>(threadIdx.x) * per_thread);
  const int s_end = min(S, s_begin + per_thread);
  int mine = 0;
  for (int s = s_begin; s < s_end; ++s) mine += (p.counts[s] + p.pad - 1) / p.pad * p.pad;
  int base = 0, total = 0;
  Scan(storage).ExclusiveSum(mine, base, total);
  for (int s = s_begin; s < s_end; ++s) {
    const int count = p.counts[s];
    const int padded = (count + p.pad - 1) / p.pad * p.pad;
    p.offsets[s] = base;
    if (p.counts_out != nullptr) p.counts_out[s] = count;
    for (int r = base + count; r < base + padded; ++r) p.perm[r] = -1;
    base += padded;
  }
  if (threadIdx.x == kOffsetThreads - 1) p.offsets[S] = total;
}

__global__ void __launch_bounds__(kWarps * 32) scatter_kernel(Params p) {
  extern __shared__ int next[];  // [kWarps][E]
  const int c = blockIdx.x, l = blockIdx.y;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const long long pairs = static_cast<long long>(p.N) * p.k;
  const int* topk = p.topk + static_cast<long long>(l) * pairs;
  const long long begin = static_cast<long long>(c) * kChunk + static_cast<long long>(warp) * kPairsPerWarp;
  const long long end = min(begin + kPairsPerWarp, pairs);
  int* mine = next + warp * p.E;
  for (int e = lane; e < p.E; e += 32) mine[e] = 0;
  __syncwarp();
  for (long long i = begin + lane; i < end; i += 32) atomicAdd(&mine[topk[i]], 1);
  __syncthreads();
  // Turn per-warp counts into absolute start rows: segment offset + chunk base + earlier warps.
  const int* chunk_base = p.hist + (static_cast<long long>(l) * p.C + c) * p.E;
  for (int e = threadIdx.x; e < p.E; e += blockDim.x) {
    int running = p.offsets[l * p.E + e] + chunk_base[e];
    for (int w = 0; w < kWarps; ++w) {
      const int v = next[w * p.E + e];
      next[w * p.E + e] = running;
      running += v;
    }
  }
  __syncthreads();
  const unsigned lanes_below = (1u << lane) - 1u;
  for (long long i0 = begin; i0 < end; i0 += 32) {
    const long long i = i0 + lane;
    const bool valid = i < end;
    const int e = valid ? topk[i] : -1;
    const unsigned peers = __match_any_sync(0xffffffffu, e);
    const int base = valid ? mine[e] : 0;
    __syncwarp();
    if (valid) {
      const int pos = base + __popc(peers & lanes_below);
      p.perm[pos] = static_cast<int>(i);
      p.inverse[static_cast<long long>(l) * pairs + i] = pos;
      if ((peers & lanes_below) == 0) mine[e] = base + __popc(peers);
    }
    __syncwarp();
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

  if (p.C > 0) {
    const int hist_smem = p.E * 4;
    HPSIM_CUDA_TRY(cudaFuncSetAttribute(histogram_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, hist_smem));
    histogram_kernel<<<dim3(p.C, p.L), 256, hist_smem, stream>>>(p);
    HPSIM_CUDA_TRY_LAUNCH("histogram_kernel");
  }
  chunk_scan_kernel<<<dim3(device::grid_1d(p.E, 256), p.L), 256, 0, stream>>>(p);
  HPSIM_CUDA_TRY_LAUNCH("chunk_scan_kernel");
  offsets_kernel<<<1, kOffsetThreads, 0, stream>>>(p);
  HPSIM_CUDA_TRY_LAUNCH("offsets_kernel");
  if (p.C > 0) {
    const int scatter_smem = kWarps * p.E * 4;
    HPSIM_CUDA_TRY(cudaFuncSetAttribute(scatter_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, scatter_smem));
    scatter_kernel<<<dim3(p.C, p.L), kWarps * 32, scatter_smem, stream>>>(p);
    HPSIM_CUDA_TRY_LAUNCH("scatter_kernel");
  }
  return core::Status::ok();
}

}  // namespace hpsim::kernels
