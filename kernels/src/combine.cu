// Combine (combine.h): weighted sum over the k slots and its backward with the softmax backward.
// Memory-bound: 16-byte accesses; the backward gives each (token, head) row a group of TPR
// lanes whose dot products are reduced by shuffles in a fixed order. Symbols as in combine.h.
#include "device_common.cuh"
#include "hpsim/kernels/combine.h"
#include "hpsim/kernels/cuda_check.h"

namespace hpsim::kernels {
namespace {

using namespace device;

struct Params {
  const __nv_bfloat16* y;
  const int* inverse;
  const float* gate;
  __nv_bfloat16* out;
  const __nv_bfloat16* d_out;
  __nv_bfloat16* d_y;
  float* d_gate;
  float* d_score;
  int L, N, k, width;
};

__global__ void __launch_bounds__(256) combine_fwd_kernel(Params p) {
  const int chunks = p.width / 8;
  const long long id = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (id >= static_cast<long long>(p.N) * p.L * chunks) return;
  const long long tl = id / chunks;  // t * L + l
  const int c = static_cast<int>(id % chunks);
  const int t = static_cast<int>(tl / p.L), l = static_cast<int>(tl % p.L);
  const long long slot0 = (static_cast<long long>(l) * p.N + t) * p.k;
  float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  for (int j = 0; j < p.k; ++j) {
    const float g = p.gate != nullptr ? p.gate[slot0 + j] : 1.0f;
    const long long row = p.inverse[slot0 + j];
    float v[8];
    unpack8(*reinterpret_cast<const uint4*>(p.y + row * p.width + c * 8), v);
#pragma unroll
    for (int q = 0; q < 8; ++q) acc[q] = fmaf(g, v[q], acc[q]);
  }
  *reinterpret_cast<uint4*>(p.out + tl * p.width + c * 8) = pack8(acc);
}

template <int TPR>
__global__ void __launch_bounds__(256) combine_bwd_kernel(Params p) {
  const int chunks = p.width / 8;
  const long long tl = (static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x) / TPR;
  const int sub = threadIdx.x % TPR;
  if (tl >= static_cast<long long>(p.N) * p.L) return;  // whole groups leave together
  const int t = static_cast<int>(tl / p.L), l = static_cast<int>(tl % p.L);
  const long long slot0 = (static_cast<long long>(l) * p.N + t) * p.k;
  const unsigned group_mask = TPR == 32 ? 0xffffffffu : (0xffffu << (threadIdx.x % 32 / 16 * 16));
  float dg[kMaxTopK];
  float weighted = 0.0f;
#pragma unroll
  for (int j = 0; j < kMaxTopK; ++j) {
    dg[j] = 0.0f;
    if (j < p.k) {
      const float g = p.gate[slot0 + j];
      const long long row = p.inverse[slot0 + j];
      float dot = 0.0f;
      for (int c = sub; c < chunks; c += TPR) {
        float d[8], v[8], gd[8];
        unpack8(*reinterpret_cast<const uint4*>(p.d_out + tl * p.width + c * 8), d);
        unpack8(*reinterpret_cast<const uint4*>(p.y + row * p.width + c * 8), v);
#pragma unroll
        for (int q = 0; q < 8; ++q) {
          dot = fmaf(d[q], v[q], dot);
          gd[q] = g * d[q];
        }
        *reinterpret_cast<uint4*>(p.d_y + row * p.width + c * 8) = pack8(gd);
      }
#pragma unroll
      for (int o = TPR / 2; o > 0; o /= 2) dot += __shfl_xor_sync(group_mask, dot, o);
      dg[j] = dot;
      weighted = fmaf(g, dot, weighted);
    }
  }
  if (sub == 0) {
#pragma unroll
    for (int j = 0; j < kMaxTopK; ++j) {
      if (j < p.k) {
        if (p.d_gate != nullptr) p.d_gate[slot0 + j] = dg[j];
        if (p.d_score != nullptr) p.d_score[slot0 + j] = p.gate[slot0 + j] * (dg[j] - weighted);
      }
    }
  }
}

Params make_params(std::int64_t L, std::int64_t N, std::int64_t k, std::int64_t width) {
  Params p{};
  p.L = static_cast<int>(L);
  p.N = static_cast<int>(N);
  p.k = static_cast<int>(k);
  p.width = static_cast<int>(width);
  return p;
}

}  // namespace

core::Status launch(const CombineForwardArgs& args, void*, Stream stream_handle) {
  HPSIM_TRY(can_implement(args));
  if (args.num_tokens == 0) return core::Status::ok();
  auto stream = static_cast<cudaStream_t>(stream_handle);
  Params p = make_params(args.num_heads, args.num_tokens, args.top_k, args.width);
  p.y = nv(args.y);
  p.inverse = args.inverse;
  p.gate = args.gate;
  p.out = nv(args.out);
  const long long threads = args.num_tokens * args.num_heads * (args.width / 8);
  combine_fwd_kernel<<<grid_1d(threads, 256), 256, 0, stream>>>(p);
  HPSIM_CUDA_TRY_LAUNCH("combine_fwd_kernel");
  return core::Status::ok();
}

core::Status launch(const CombineBackwardArgs& args, void*, Stream stream_handle) {
  HPSIM_TRY(can_implement(args));
  if (args.num_tokens == 0) return core::Status::ok();
  auto stream = static_cast<cudaStream_t>(stream_handle);
  Params p = make_params(args.num_heads, args.num_tokens, args.top_k, args.width);
  p.y = nv(args.y);
  p.inverse = args.inverse;
  p.gate = args.gate;
  p.d_out = nv(args.d_out);
  p.d_y = nv(args.d_y);
  p.d_gate = args.d_gate;
  p.d_score = args.d_score;
  const long long rows = args.num_tokens * args.num_heads;
  if (args.width / 8 <= 16) {
    combine_bwd_kernel<16><<<grid_1d(rows * 16, 256), 256, 0, stream>>>(p);
  } else {
    combine_bwd_kernel<32><<<grid_1d(rows * 32, 256), 256, 0, stream>>>(p);
  }
  HPSIM_CUDA_TRY_LAUNCH("combine_bwd_kernel");
  return core::Status::ok();
}

}  // namespace hpsim::kernels
