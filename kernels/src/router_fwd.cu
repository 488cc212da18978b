// Router forward (router.h), fp32 FFMA algorithm: a block takes 64 tokens of one head and walks
// the E experts in chunks of 128, K = dim in steps of 16 through double-buffered shared memory.
// Each thread keeps a 4 tokens x 8 experts score tile in registers and, per token, a sorted list
// of its best KMAX (biased score, expert); the 16 threads that share a token merge their lists at
// the end. The scores never leave registers. When the token blocks cannot fill the GPU (EP at a
// few thousand tokens: one head), the expert chunks are split between blocks
// (limits::router_chunks_per_split); each writes its tokens' top-k and a merge kernel picks the
// final top-k from the splits' lists. Symbols as in router.h.
#include <cfloat>

#include "device_common.cuh"
#include "hpsim/kernels/cuda_check.h"
#include "hpsim/kernels/router.h"
#include "kernel_limits.h"
#include "router_select.cuh"
#include "router_tc.cuh"

namespace hpsim::kernels {
namespace {

using device::nv;

constexpr int kTokens = static_cast<int>(limits::kRouterTokens);  // 64
constexpr int kChunk = static_cast<int>(limits::kRouterChunk);     // experts per chunk: 128
constexpr int kStep = 16;                                          // K per stage
constexpr int kThreads = 256;
constexpr int kXStride = kTokens + 4;  // xs[k][token], padded rows
constexpr int kWStride = kChunk + 4;   // ws[k][expert], padded rows

// The bf16x3 kernels' parameters (w_parts unused) and the FFMA kernel's own.
struct Params : device::RouterTcParams {
  int cps, splits;  // expert chunks per split, splits (blockIdx.z)
  float* cand_v;    // splits > 1: [L][N][splits][k] each split's top-k (biased score, expert)
  int* cand_e;
};

using device::router_select::finish_token;
using device::router_select::insert_sorted;
using device::router_select::merge_sorted_lists;
using device::router_select::reset_lists;

template <int KMAX>
__global__ void __launch_bounds__(kThreads, KMAX == 8 ? 1 : 2) router_ffma_kernel(Params p) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  float* xs = reinterpret_cast<float*>(smem_raw);   // [2][kStep][kXStride]
  float* ws = xs + 2 * kStep * kXStride;            // [2][kStep][kWStride]

  const int tid = threadIdx.x;
  const int tx = tid % 16, ty = tid / 16;
  const int l = blockIdx.y;
  const int t0 = blockIdx.x * kTokens;
  const int num_chunks = (p.E + kChunk - 1) / kChunk;
  const int c_begin = static_cast<int>(blockIdx.z) * p.cps;  // this block's expert chunks
  const int c_end = min(num_chunks, c_begin + p.cps);
  const int k_steps = p.dim / kStep;
  const int total_steps = (c_end - c_begin) * k_steps;

  float lv[4][KMAX];
  int li[4][KMAX];
  float thr[4];
  float bufv[4][8];  // per token, this chunk's candidates at or above thr
  int bufe[4][8];
  reset_lists(lv, li, thr);
  float acc[4][8];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[i][j] = 0.0f;

  // Global -> register staging of one (chunk, k-step) stage.
  uint4 xr = make_uint4(0, 0, 0, 0);
  float4 wr[2];
  const int x_token = tid / 2, x_part = tid % 2;  // threads < 128: 8 dims of one token
  auto load_stage = [&](int step) {
    const int chunk = c_begin + step / k_steps, k0 = (step % k_steps) * kStep;
    if (tid < 2 * kTokens) {
      const int t = t0 + x_token;
      xr = make_uint4(0, 0, 0, 0);
      if (t < p.N)
        xr = *reinterpret_cast<const uint4*>(p.x + (static_cast<long long>(t) * p.L + l) * p.dim + k0 + x_part * 8);
    }
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int c = tid + kThreads * i;
      const int e = chunk * kChunk + c / 4, part = c % 4;
      wr[i] = make_float4(0.f, 0.f, 0.f, 0.f);
      if (e < p.E)
        wr[i] = *reinterpret_cast<const float4*>(p.weight + (static_cast<long long>(l) * p.E + e) * p.dim + k0 + part * 4);
    }
  };
  auto store_stage = [&](int buf) {
    float* xb = xs + buf * kStep * kXStride;
    float* wb = ws + buf * kStep * kWStride;
    if (tid < 2 * kTokens) {
      float f[8];
      device::unpack8(xr, f);
#pragma unroll
      for (int q = 0; q < 8; ++q) xb[(x_part * 8 + q) * kXStride + x_token] = f[q];
    }
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int c = tid + kThreads * i;
      const int e = c / 4, part = c % 4;
      wb[(part * 4 + 0) * kWStride + e] = wr[i].x;
      wb[(part * 4 + 1) * kWStride + e] = wr[i].y;
      wb[(part * 4 + 2) * kWStride + e] = wr[i].z;
      wb[(part * 4 + 3) * kWStride + e] = wr[i].w;
    }
  };

  load_stage(0);
  store_stage(0);
  __syncthreads();
  for (int step = 0; step < total_steps; ++step) {
    const int buf = step & 1;
    if (step + 1 < total_steps) load_stage(step + 1);
    const float* xb = xs + buf * kStep * kXStride;
    const float* wb = ws + buf * kStep * kWStride;
#pragma unroll
    for (int kk = 0; kk < kStep; ++kk) {
      const float4 a = *reinterpret_cast<const float4*>(xb + kk * kXStride + ty * 4);
      const float4 b0 = *reinterpret_cast<const float4*>(wb + kk * kWStride + tx * 4);
      const float4 b1 = *reinterpret_cast<const float4*>(wb + kk * kWStride + 64 + tx * 4);
      const float av[4] = {a.x, a.y, a.z, a.w};
      const float bv[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
    if (step % k_steps == k_steps - 1) {
      // End of an expert chunk: candidates at or above the token's threshold go to a small
      // buffer (predicated stores), the buffer is merged into the sorted lists, and the threshold
      // is raised to the best KMAX-th score of the 16 threads sharing the token (a lower bound of
      // its k-th best: no candidate of the final top-k is dropped).
      const int chunk = c_begin + step / k_steps;
      int cnt[4] = {0, 0, 0, 0};
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        const int e = chunk * kChunk + (j < 4 ? tx * 4 + j : 64 + tx * 4 + (j - 4));
        if (e < p.E) {
          const float b = p.bias != nullptr ? __ldg(p.bias + static_cast<long long>(l) * p.E + e) : 0.0f;
#pragma unroll
          for (int i = 0; i < 4; ++i) {
            const float v = acc[i][j] + b;
            if (v >= thr[i]) {
              bufv[i][cnt[i]] = v;
              bufe[i][cnt[i]] = e;
              ++cnt[i];
            }
          }
        }
#pragma unroll
        for (int i = 0; i < 4; ++i) acc[i][j] = 0.0f;
      }
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        for (int q = 0; q < cnt[i]; ++q) insert_sorted<KMAX>(lv[i], li[i], bufv[i][q], bufe[i][q]);
        float th = lv[i][KMAX - 1];
#pragma unroll
        for (int o = 1; o < 16; o *= 2) th = fmaxf(th, __shfl_xor_sync(0xffffffffu, th, o));
        thr[i] = th;
      }
    }
    if (step + 1 < total_steps) store_stage(buf ^ 1);
    __syncthreads();
  }

  // Merge: the 16 lists of each token (one per tx) live in shared memory; one thread per token
  // walks them like a 16-way merge of sorted lists.
  float* cand_v = reinterpret_cast<float*>(smem_raw);           // [64][16][KMAX]
  int* cand_e = reinterpret_cast<int*>(cand_v + kTokens * 16 * KMAX);
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int q = 0; q < KMAX; ++q) {
      const int at = ((ty * 4 + i) * 16 + tx) * KMAX + q;
      cand_v[at] = lv[i][q];
      cand_e[at] = li[i][q];
    }
  __syncthreads();
  if (tid < kTokens && t0 + tid < p.N) {
    const int t = t0 + tid;
    float sel_v[KMAX];
    int sel_e[KMAX];
    merge_sorted_lists<KMAX, 16>(cand_v + tid * 16 * KMAX, cand_e + tid * 16 * KMAX, 16, KMAX, sel_v, sel_e);
    if (p.splits == 1) {
      finish_token<KMAX>(p, l, t, sel_v, sel_e);
    } else {
      const long long at = ((static_cast<long long>(l) * p.N + t) * p.splits + blockIdx.z) * p.k;
#pragma unroll
      for (int j = 0; j < KMAX; ++j) {
        if (j < p.k) {
          p.cand_v[at + j] = sel_v[j];
          p.cand_e[at + j] = sel_e[j];
        }
      }
    }
  }
}

// Split experts: the final top-k of each (head, token) from its splits' lists.
template <int KMAX>
__global__ void __launch_bounds__(256) router_split_merge_kernel(Params p) {
  const long long id = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (id >= static_cast<long long>(p.L) * p.N) return;
  float sel_v[KMAX];
  int sel_e[KMAX];
  const long long at = id * p.splits * p.k;
  merge_sorted_lists<KMAX, 16>(p.cand_v + at, p.cand_e + at, p.splits, p.k, sel_v, sel_e);  // splits <= kRouterMaxSplits
  finish_token<KMAX>(p, static_cast<int>(id / p.N), static_cast<int>(id % p.N), sel_v, sel_e);
}

// The final top-k of every token from p.splits lists of p.k (either kernel's splits).
core::Status launch_split_merge(const Params& p, cudaStream_t stream) {
  const unsigned blocks = device::grid_1d(static_cast<long long>(p.L) * p.N, 256);
  if (p.k <= 2)
    router_split_merge_kernel<2><<<blocks, 256, 0, stream>>>(p);
  else if (p.k <= 4)
    router_split_merge_kernel<4><<<blocks, 256, 0, stream>>>(p);
  else
    router_split_merge_kernel<8><<<blocks, 256, 0, stream>>>(p);
  HPSIM_CUDA_TRY_LAUNCH("router_split_merge_kernel");
  return core::Status::ok();
}

template <int KMAX>
core::Status launch_ffma(Params p, void* workspace, cudaStream_t stream) {
  const int stage_bytes = 2 * kStep * (kXStride + kWStride) * 4;
  const int merge_bytes = kTokens * 16 * KMAX * 8;
  const int smem = stage_bytes > merge_bytes ? stage_bytes : merge_bytes;
  p.cps = static_cast<int>(limits::router_chunks_per_split(p.L, p.N, p.E, p.k));
  p.splits = static_cast<int>(limits::router_splits(p.L, p.N, p.E, p.k));
  p.cand_v = p.splits > 1 ? static_cast<float*>(workspace) : nullptr;  // workspace_bytes() is 0 without a split
  p.cand_e = p.splits > 1 ? reinterpret_cast<int*>(p.cand_v + static_cast<long long>(p.L) * p.N * p.splits * p.k) : nullptr;
  HPSIM_CUDA_TRY(cudaFuncSetAttribute(router_ffma_kernel<KMAX>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  const dim3 grid((p.N + kTokens - 1) / kTokens, p.L, p.splits);
  router_ffma_kernel<KMAX><<<grid, kThreads, smem, stream>>>(p);
  HPSIM_CUDA_TRY_LAUNCH("router_ffma_kernel");
  if (p.splits > 1) return launch_split_merge(p, stream);
  return core::Status::ok();
}

}  // namespace

bool router_bf16x3_runs(std::int64_t dim) {
  return router_bf16x3_takes_dim(dim) || (dim % 64 == 0 && dim > 256 && device::wgmma_supported());
}

core::Status launch(const RouterForwardArgs& args, void* workspace, Stream stream_handle) {
  HPSIM_TRY(can_implement(args));
  auto stream = static_cast<cudaStream_t>(stream_handle);
  if (args.expert_counts != nullptr)
    HPSIM_CUDA_TRY(cudaMemsetAsync(args.expert_counts, 0, static_cast<size_t>(args.num_heads * args.num_experts) * 4, stream));
  if (args.num_tokens == 0) return core::Status::ok();
  Params p;
  p.x = nv(args.x);
  p.weight = args.weight;
  p.bias = args.bias;
  p.topk_expert = args.topk_expert;
  p.topk_gate = args.topk_gate;
  p.counts = args.expert_counts;
  p.L = static_cast<int>(args.num_heads);
  p.N = static_cast<int>(args.num_tokens);
  p.dim = static_cast<int>(args.dim);
  p.E = static_cast<int>(args.num_experts);
  p.k = static_cast<int>(args.top_k);
  if (args.algo == RouterAlgo::kBf16x3 || args.algo == RouterAlgo::kBf16x3MmaSync) {
    const bool wgmma = args.algo == RouterAlgo::kBf16x3 && device::wgmma_supported();
    if (!wgmma && p.dim > 256)
      return core::Error{core::ErrorCode::kUnsupported,
                         fmt::format("RouterForwardArgs.dim: the bf16x3 algorithm takes dim > 256 only on its wgmma "
                                     "kernel, which needs an sm_90 GPU (got dim {})",
                                     p.dim)};
    HPSIM_TRY(device::split_weight_parts(p, workspace, stream));
    if (!wgmma) return device::launch_router_bf16x3_mma(p, stream);
    // The splits' candidates after the parts (workspace_bytes() counts them).
    device::RouterSplit split;
    split.chunks_per_split = static_cast<int>(limits::router_wgmma_chunks_per_split(p.L, p.N, p.E));
    split.splits = static_cast<int>(limits::router_wgmma_splits(p.L, p.N, p.E));
    if (split.splits > 1) {
      char* after_parts = static_cast<char*>(workspace) + limits::router_bf16x3_parts_bytes(p.L, p.E, p.dim);
      split.cand_v = reinterpret_cast<float*>(after_parts);
      split.cand_e = reinterpret_cast<int*>(split.cand_v + static_cast<long long>(p.L) * p.N * split.splits * p.k);
    }
    HPSIM_CUDA_TRY(device::launch_router_bf16x3_wgmma(p, split, stream));
    if (split.splits == 1) return core::Status::ok();
    p.splits = split.splits;
    p.cand_v = split.cand_v;
    p.cand_e = split.cand_e;
    return launch_split_merge(p, stream);
  }
  if (p.k <= 2) return launch_ffma<2>(p, workspace, stream);
  if (p.k <= 4) return launch_ffma<4>(p, workspace, stream);
  return launch_ffma<8>(p, workspace, stream);
}

}  // namespace hpsim::kernels
