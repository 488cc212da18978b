// Router backward (router.h): dx over the k selected columns (one warp per token row) and
// d_weight summed per (head, expert) segment of the grouping in fixed-size work items whose
// partial sums are added in slot order: bitwise reproducible. Symbols as in router.h.
#include "device_common.cuh"
#include "hpsim/kernels/cuda_check.h"
#include "hpsim/kernels/router.h"
#include "kernel_limits.h"
#include "schedule.cuh"

namespace hpsim::kernels {
namespace {

using device::nv;

struct Params {
  const __nv_bfloat16* x;
  const float* weight;
  const int* topk;
  const float* d_score;
  const int* offsets;
  const int* perm;
  const __nv_bfloat16* dx_in;
  __nv_bfloat16* dx;
  float* d_weight;
  int L, N, dim, E, k;
};

__device__ __forceinline__ void load_bf16x4(const __nv_bfloat16* p, float (&f)[4]) {
  const uint2 v = *reinterpret_cast<const uint2*>(p);
  const float2 a = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&v.x));
  const float2 b = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&v.y));
  f[0] = a.x;
  f[1] = a.y;
  f[2] = b.x;
  f[3] = b.y;
}

// dx[t][l][:] = dx_in[t][l][:] + sum_j d_score[l][t][j] * weight[l][e_j][:]
__global__ void __launch_bounds__(256) router_dx_kernel(Params p) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const long long row = static_cast<long long>(blockIdx.x) * 8 + warp;  // = t * L + l
  if (row >= static_cast<long long>(p.N) * p.L) return;
  const int t = static_cast<int>(row / p.L), l = static_cast<int>(row % p.L);
  const long long slot0 = (static_cast<long long>(l) * p.N + t) * p.k;
  for (int c = lane * 4; c < p.dim; c += 128) {
    float acc[4] = {0.f, 0.f, 0.f, 0.f};
    if (p.dx_in != nullptr) load_bf16x4(p.dx_in + row * p.dim + c, acc);
    for (int j = 0; j < p.k; ++j) {
      const int e = p.topk[slot0 + j];
      const float ds = p.d_score[slot0 + j];
      const float4 w = *reinterpret_cast<const float4*>(p.weight + (static_cast<long long>(l) * p.E + e) * p.dim + c);
      acc[0] = fmaf(ds, w.x, acc[0]);
      acc[1] = fmaf(ds, w.y, acc[1]);
      acc[2] = fmaf(ds, w.z, acc[2]);
      acc[3] = fmaf(ds, w.w, acc[3]);
    }
    uint2 out;
    out.x = device::pack_bf16x2(acc[0], acc[1]);
    out.y = device::pack_bf16x2(acc[2], acc[3]);
    *reinterpret_cast<uint2*>(p.dx + row * p.dim + c) = out;
  }
}

// One work item (<= kRouterBwdRows grouped rows of one segment) x 128 columns per block.
__global__ void __launch_bounds__(256) router_dw_kernel(Params p, device::Schedule sched, float* partial) {
  __shared__ float red[8][128];
  if (static_cast<int>(blockIdx.x) >= sched.counters[0]) return;
  const device::WorkItem item = sched.items[blockIdx.x];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int col = blockIdx.y * 128 + lane * 4;
  const int l = item.segment / p.E;
  float acc[4] = {0.f, 0.f, 0.f, 0.f};
  for (int r = item.row_begin + warp; r < item.row_end; r += 8) {
    const int pair = p.perm[r];
    if (pair < 0) continue;
    const int t = pair / p.k;
    const float ds = p.d_score[static_cast<long long>(l) * p.N * p.k + pair];
    float xv[4];
    load_bf16x4(p.x + (static_cast<long long>(t) * p.L + l) * p.dim + col, xv);
#pragma unroll
    for (int q = 0; q < 4; ++q) acc[q] = fmaf(ds, xv[q], acc[q]);
  }
#pragma unroll
  for (int q = 0; q < 4; ++q) red[warp][lane * 4 + q] = acc[q];
  __syncthreads();
  if (threadIdx.x < 128) {
    float sum = 0.f;
#pragma unroll
    for (int w = 0; w < 8; ++w) sum += red[w][threadIdx.x];
    const int c = blockIdx.y * 128 + threadIdx.x;
    if (item.slot < 0)
      p.d_weight[static_cast<long long>(item.segment) * p.dim + c] = sum;
    else
      partial[static_cast<long long>(item.slot) * p.dim + c] = sum;
  }
}

struct StoreWeightGrad {
  float* d_weight;
  long long dim;
  __device__ void operator()(int s, long long i, float v) const { d_weight[s * dim + i] = v; }
};

}  // namespace

core::Status launch(const RouterBackwardArgs& args, void* workspace, Stream stream_handle) {
  HPSIM_TRY(can_implement(args));
  auto stream = static_cast<cudaStream_t>(stream_handle);
  Params p;
  p.x = nv(args.x);
  p.weight = args.weight;
  p.topk = args.topk_expert;
  p.d_score = args.d_score;
  p.offsets = args.group_offsets;
  p.perm = args.group_perm;
  p.dx_in = nv(args.dx_in);
  p.dx = nv(args.dx);
  p.d_weight = args.d_weight;
  p.L = static_cast<int>(args.num_heads);
  p.N = static_cast<int>(args.num_tokens);
  p.dim = static_cast<int>(args.dim);
  p.E = static_cast<int>(args.num_experts);
  p.k = static_cast<int>(args.top_k);

  if (args.num_tokens > 0) {
    router_dx_kernel<<<device::grid_1d(args.num_tokens * args.num_heads, 8), 256, 0, stream>>>(p);
    HPSIM_CUDA_TRY_LAUNCH("router_dx_kernel");
  }
  const long long segments = args.num_heads * args.num_experts;
  char* cursor = static_cast<char*>(workspace);
  const device::Schedule sched = device::carve_schedule(cursor, args.group_rows, segments, limits::kRouterBwdRows);
  auto* partial = reinterpret_cast<float*>(cursor);
  HPSIM_CUDA_TRY(device::build_schedule(args.group_offsets, sched, /*item_for_empty=*/true, stream));
  router_dw_kernel<<<dim3(static_cast<unsigned>(sched.max_items), static_cast<unsigned>(args.dim / 128)), 256, 0, stream>>>(
      p, sched, partial);
  HPSIM_CUDA_TRY_LAUNCH("router_dw_kernel");
  HPSIM_CUDA_TRY(device::reduce_slots(partial, sched, args.dim, StoreWeightGrad{args.d_weight, args.dim}, stream));
  return core::Status::ok();
}

}  // namespace hpsim::kernels
