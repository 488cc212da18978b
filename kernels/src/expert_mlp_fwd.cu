// HP expert MLP forward (expert_mlp.h), fused. Two algorithms:
//  - wgmma (sm_90a, expert_mlp_fwd_sm90a.cu), the default on Hopper;
//  - mma.sync (any sm_90 build), here: a block takes up to 128 grouped rows of one (head, expert)
//    segment (8 warps x 16 rows), gathers their sub-tokens through perm into shared memory once,
//    then streams K_e and V_e^T in chunks of 32 hidden units (4-stage cp.async pipeline):
//      S = X K_c^T (16 x 32 per warp, registers) -> P = GELU(S) as bf16 A fragments (registers)
//      -> Y += P V_c (16 x 128 per warp, registers).
// The rows x f activation never leaves registers. bf16 operands, fp32 accumulation. Symbols as in
// expert_mlp.h.
#include "device_common.cuh"
#include "hpsim/kernels/cuda_check.h"
#include "hpsim/kernels/expert_mlp.h"
#include "kernel_limits.h"
#include "expert_mlp_wgmma.h"
#include "mlp_tile.cuh"
#include "schedule.cuh"

namespace hpsim::kernels {
namespace {

using namespace device;
using namespace device::mlp;

constexpr int kStages = 4;

__global__ void __launch_bounds__(kThreads, 2) expert_mlp_fwd_kernel(MlpParams p, Schedule sched) {
  extern __shared__ __align__(128) unsigned char smem_raw[];
  __nv_bfloat16* xs = reinterpret_cast<__nv_bfloat16*>(smem_raw);  // [128][kXS]
  __nv_bfloat16* wbuf = xs + kRows * kXS;                           // [kStages][kChunkElems]
  if (static_cast<int>(blockIdx.x) >= sched.counters[0]) return;
  const WorkItem item = sched.items[blockIdx.x];
  const int rows = item.row_end - item.row_begin;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int l = item.segment / p.E;
  const long long wofs = static_cast<long long>(item.segment) * p.f * kH;
  const __nv_bfloat16* kp = p.wk + wofs;
  const __nv_bfloat16* vp = p.wv + wofs;
  const int nchunks = p.f / kFc;

  load_rows_gathered(p, xs, item, l, tid);
  weight_ring_prologue<kStages>(wbuf, kp, vp, p.f, nchunks, tid);

  const bool active = warp * 16 < rows;
  float y[16][4];
#pragma unroll
  for (int nt = 0; nt < 16; ++nt)
#pragma unroll
    for (int c = 0; c < 4; ++c) y[nt][c] = 0.0f;

  for (int j = 0; j < nchunks; ++j) {
    const __nv_bfloat16* kc = weight_ring_step<kStages>(wbuf, kp, vp, p.f, nchunks, j, tid);
    if (!active) continue;
    const __nv_bfloat16* vc = kc + kFc * kKS;
    float s[4][4];
    rows_times_chunk<false>(xs, kc, warp, lane, s);  // S = X K_c^T
    std::uint32_t pa[2][4];
#pragma unroll
    for (int ks = 0; ks < 2; ++ks) {
      pa[ks][0] = pack_bf16x2(gelu(s[2 * ks][0]), gelu(s[2 * ks][1]));
      pa[ks][1] = pack_bf16x2(gelu(s[2 * ks][2]), gelu(s[2 * ks][3]));
      pa[ks][2] = pack_bf16x2(gelu(s[2 * ks + 1][0]), gelu(s[2 * ks + 1][1]));
      pa[ks][3] = pack_bf16x2(gelu(s[2 * ks + 1][2]), gelu(s[2 * ks + 1][3]));
    }
    p_times_chunk<false>(pa, vc, lane, y);  // Y += P V_c (V_c^T stored [h][hidden])
  }
  cp_async_wait<0>();
  if (active) store_rows(y, xs, p.y, item, warp, lane);
}

}  // namespace

core::Status launch(const ExpertMlpForwardArgs& args, void* workspace, Stream stream_handle) {
  HPSIM_TRY(can_implement(args));
  auto stream = static_cast<cudaStream_t>(stream_handle);
  MlpParams p = make_mlp_params(args.x, args.offsets, args.perm, args.w_k, args.w_v, args.num_heads, args.num_tokens,
                                args.top_k, args.num_experts, args.hidden);
  p.y = nv(args.y);
  char* cursor = static_cast<char*>(workspace);
  bool use_wgmma = args.algo == ExpertMlpAlgo::kWgmma;
  // The wgmma kernel divides pair indices by k in fp32: exact below 2^24 pairs per head.
  const bool small_enough = args.num_tokens * args.top_k < (1ll << 24);
  if (use_wgmma && !small_enough)
    return core::Error{core::ErrorCode::kUnsupported,
                       "ExpertMlpForwardArgs.num_tokens: the wgmma forward takes num_tokens * top_k < 2^24"};
  if (args.algo == ExpertMlpAlgo::kAuto) use_wgmma = small_enough && wgmma_supported();
  if (use_wgmma) {
    const Schedule sched = carve_schedule(cursor, args.rows, args.num_heads * args.num_experts, kWgmmaRows);
    HPSIM_CUDA_TRY(launch_expert_mlp_fwd_wgmma(p, sched, args.rows, stream));  // builds the schedule too
    return core::Status::ok();
  }
  const Schedule sched = carve_schedule(cursor, args.rows, args.num_heads * args.num_experts, kRows);
  HPSIM_CUDA_TRY(build_schedule(args.offsets, sched, /*item_for_empty=*/false, stream));
  const int smem = (kRows * kXS + kStages * kChunkElems) * 2;
  HPSIM_CUDA_TRY(cudaFuncSetAttribute(expert_mlp_fwd_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  if (sched.max_items > 0) {
    expert_mlp_fwd_kernel<<<static_cast<unsigned>(sched.max_items), kThreads, smem, stream>>>(p, sched);
    HPSIM_CUDA_TRY_LAUNCH("expert_mlp_fwd_kernel");
  }
  return core::Status::ok();
}

}  // namespace hpsim::kernels
