// EP permute (ep_permute.h): the grouping of one head (stable counting sort by expert), a k-fold
// gather of the token rows into the send buffer, and the per-rank split sizes. EP regroup: the
// received rows' order by local expert, from the received counts in one launch.
#include <cub/block/block_scan.cuh>

#include "device_common.cuh"
#include "hpsim/kernels/cuda_check.h"
#include "hpsim/kernels/ep_permute.h"
#include "hpsim/kernels/grouping.h"

namespace hpsim::kernels {
namespace {

using namespace device;

__global__ void __launch_bounds__(256) gather_rows_kernel(const __nv_bfloat16* __restrict__ x,
                                                          const int* __restrict__ perm,
                                                          __nv_bfloat16* __restrict__ send,
                                                          long long rows,
                                                          int chunks,
                                                          int k) {
  const long long id = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (id >= rows * chunks) return;
  const long long row = id / chunks;
  const int c = static_cast<int>(id % chunks);
  const long long token = perm[row] / k;
  *reinterpret_cast<uint4*>(send + row * chunks * 8 + c * 8) =
      *reinterpret_cast<const uint4*>(x + token * chunks * 8 + c * 8);
}

__global__ void rank_counts_kernel(const int* __restrict__ expert_counts, int experts_per_rank, int ranks,
                                   int* __restrict__ rank_counts) {
  for (int w = threadIdx.x; w < ranks; w += blockDim.x) {
    int sum = 0;
    for (int e = w * experts_per_rank; e < (w + 1) * experts_per_rank; ++e) sum += expert_counts[e];
    rank_counts[w] = sum;
  }
}

constexpr int kRegroupThreads = 512;
constexpr int kRegroupRowsPerThread = 8;

// Every block scans the W x E_l counts in shared memory (first[]: first received row of block
// (p, e) in arrival order; dest[]: its first grouped row), then places its own rows: received row
// r lies in the last block whose first row is <= r (binary search; empty blocks share their
// successor's first row, so the search lands on a non-empty one).
__global__ void __launch_bounds__(kRegroupThreads) regroup_kernel(const int* __restrict__ counts, int W, int El, int rows,
                                                                  int* __restrict__ offsets, int* __restrict__ perm,
                                                                  int* __restrict__ inverse) {
  using Scan = cub::BlockScan<int, kRegroupThreads>;
  __shared__ typename Scan::TempStorage storage;
  extern __shared__ int scans[];
  const int S = W * El;
  int* first = scans;        // [S + 1]
  int* dest = scans + S + 1;  // [S]
  const int tid = static_cast<int>(threadIdx.x);

  // Arrival order: (p, e) blocks p-major, each thread a run of consecutive blocks.
  const int per = (S + kRegroupThreads - 1) / kRegroupThreads;
  const int b0 = min(S, tid * per), b1 = min(S, b0 + per);
  int run = 0;
  for (int i = b0; i < b1; ++i) run += counts[i];
  int total = 0, base = 0;
  Scan(storage).ExclusiveSum(run, base, total);
  for (int i = b0; i < b1; ++i) {
    first[i] = base;
    base += counts[i];
  }
  if (tid == 0) first[S] = total;
  HPSIM_DEVICE_ASSERT(total == rows);
  __syncthreads();  // the scan storage is reused

  // Grouped order: experts, then ranks. A thread takes a run of experts; its base is the rows of
  // all earlier experts.
  const int per_e = (El + kRegroupThreads - 1) / kRegroupThreads;
  const int e0 = min(El, tid * per_e), e1 = min(El, e0 + per_e);
  run = 0;
  for (int e = e0; e < e1; ++e) {
    for (int p = 0; p < W; ++p) run += counts[p * El + e];
  }
  Scan(storage).ExclusiveSum(run, base, total);
  for (int e = e0; e < e1; ++e) {
    if (blockIdx.x == 0) offsets[e] = base;
    for (int p = 0; p < W; ++p) {
      dest[p * El + e] = base;
      base += counts[p * El + e];
    }
  }
  if (blockIdx.x == 0 && tid == 0) offsets[El] = total;
  __syncthreads();

  const int end = min(rows, first[S]);
  const int r0 = static_cast<int>(blockIdx.x) * kRegroupThreads * kRegroupRowsPerThread;
  for (int r = r0 + tid; r < min(end, r0 + kRegroupThreads * kRegroupRowsPerThread); r += kRegroupThreads) {
    int lo = 0, hi = S;  // first[lo] <= r < first[hi]
    while (hi - lo > 1) {
      const int mid = (lo + hi) / 2;
      if (first[mid] <= r) lo = mid; else hi = mid;
    }
    const int g = dest[lo] + (r - first[lo]);
    perm[g] = r;
    inverse[r] = g;
  }
}

}  // namespace

core::Status launch(const RegroupArgs& args, void*, Stream stream_handle) {
  HPSIM_TRY(can_implement(args));
  const int W = static_cast<int>(args.num_ranks), El = static_cast<int>(args.local_experts);
  const int rows = static_cast<int>(args.rows);
  const int smem = (2 * W * El + 1) * 4;
  const unsigned blocks = grid_1d(rows, kRegroupThreads * kRegroupRowsPerThread);
  regroup_kernel<<<blocks, kRegroupThreads, smem, static_cast<cudaStream_t>(stream_handle)>>>(
      args.counts, W, El, rows, args.offsets, args.perm, args.inverse);
  HPSIM_CUDA_TRY_LAUNCH("regroup_kernel");
  return core::Status::ok();
}

core::Status launch(const PermuteArgs& args, void* workspace, Stream stream_handle) {
  HPSIM_TRY(can_implement(args));
  auto stream = static_cast<cudaStream_t>(stream_handle);
  GroupingArgs g;
  g.topk_expert = args.topk_expert;
  g.offsets = args.offsets;
  g.perm = args.perm;
  g.inverse = args.inverse;
  g.counts = args.expert_counts;
  g.num_heads = 1;
  g.num_tokens = args.num_tokens;
  g.top_k = args.top_k;
  g.num_experts = args.num_experts;
  g.pad_to = 1;
  HPSIM_TRY(launch(g, workspace, stream_handle));
  const long long rows = args.num_tokens * args.top_k;
  const int chunks = static_cast<int>(args.dim / 8);
  if (rows > 0) {
    gather_rows_kernel<<<grid_1d(rows * chunks, 256), 256, 0, stream>>>(nv(args.x), args.perm, nv(args.send), rows, chunks,
                                                                       static_cast<int>(args.top_k));
    HPSIM_CUDA_TRY_LAUNCH("gather_rows_kernel");
  }
  rank_counts_kernel<<<1, 256, 0, stream>>>(args.expert_counts, static_cast<int>(args.num_experts / args.num_ranks),
                                            static_cast<int>(args.num_ranks), args.rank_counts);
  HPSIM_CUDA_TRY_LAUNCH("rank_counts_kernel");
  return core::Status::ok();
}

}  // namespace hpsim::kernels
