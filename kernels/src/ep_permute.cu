// EP permute (ep_permute.h): the grouping of one head (stable counting sort by expert), a k-fold
// gather of the token rows into the send buffer, and the per-rank split sizes.
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

}  // namespace

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
