// EP grouped expert MLP (grouped_mlp.h): one grouped GEMM kernel (mma.sync m16n8k16 bf16, fp32
// accumulation, 128 x 128 x 64 tiles, 8 warps of 64 x 32, 3-stage cp.async pipeline, swizzled
// shared memory) in two modes:
//   rows mode:   C[rows of expert e][N] = A[rows][K] * B_e       (row tiles from a device-built
//                schedule; the per-expert row counts never go to the host)
//   wgrad mode:  C_e[M][N] = A[rows of e][M]^T * B[rows of e][N] (K = the expert's rows, cut into
//                work items of at most kGemmWgradRows rows: one block per (item, output tile);
//                an expert cut into several items writes fp32 partial sums, added in slot order
//                afterwards, so a skewed expert does not serialise and the sum is deterministic;
//                experts without rows get no items: extra blocks past the items write their
//                zeros, beside the long items of a skewed routing)
// Operand layouts are template flags (A: [m][k] or [k][m]; B: [n][k] or [k][n]); epilogues store
// C, store C and GELU(C), or multiply by GELU'(aux). Symbols as in grouped_mlp.h.
#include "device_common.cuh"
#include "hpsim/kernels/cuda_check.h"
#include "hpsim/kernels/grouped_mlp.h"
#include "kernel_limits.h"
#include "schedule.cuh"

namespace hpsim::kernels {
namespace {

using namespace device;

constexpr int kTile = 128;
constexpr int kTileK = 64;
constexpr int kStages = 3;
constexpr int kThreads = 256;
constexpr int kTileElems = kTile * kTileK;  // one operand tile per stage

enum Mode { kRowsMode = 0, kWgradMode = 1 };
enum Epi { kEpiStore = 0, kEpiGelu = 1, kEpiGeluGrad = 2 };

struct GemmParams {
  const __nv_bfloat16* a;
  const __nv_bfloat16* b;
  __nv_bfloat16* c;
  __nv_bfloat16* c2;         // kEpiGelu: GELU(C)
  const __nv_bfloat16* aux;  // kEpiGeluGrad: pre-activation, same layout as C
  const int* offsets;
  int M, N, K;               // rows mode: N, K fixed (M = rows); wgrad mode: M, N fixed (K = rows)
  float* partial = nullptr;  // wgrad mode: [slot][2][M][N] partial sums of items of split experts
  int partial_half = 0;      // which [M][N] half of a slot this product fills
};

// Calls fn(row, col, v0, v1) for each pair of adjacent accumulator elements this thread holds:
// (row, col) and (row, col + 1) of the block's 128 x 128 tile (warp wm, wn; lane g, t).
template <typename F>
__device__ __forceinline__ void for_each_acc_pair(const float (&acc)[4][4][4], int wm, int wn, int g, int t, F fn) {
#pragma unroll
  for (int mt = 0; mt < 4; ++mt)
#pragma unroll
    for (int nt = 0; nt < 4; ++nt)
#pragma unroll
      for (int h = 0; h < 2; ++h)
        fn(wm * 64 + mt * 16 + g + 8 * h, wn * 32 + nt * 8 + 2 * t, acc[mt][nt][2 * h], acc[mt][nt][2 * h + 1]);
}

template <bool kATrans, bool kBTrans, int kMode, int kEpi>
__global__ void __launch_bounds__(kThreads, 2) grouped_gemm_kernel(GemmParams p, Schedule sched) {
  extern __shared__ __align__(128) unsigned char smem_raw[];
  __nv_bfloat16* sa = reinterpret_cast<__nv_bfloat16*>(smem_raw);  // [kStages][kTileElems]
  __nv_bfloat16* sb = sa + kStages * kTileElems;                    // [kStages][kTileElems]
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int g = lane / 4, t = lane % 4;
  const int wm = warp % 2, wn = warp / 2;

  int segment, row_base, m_rows, k_rows, m0, n0, num_k;
  int slot = -1;  // wgrad mode: the item's partial-sum slot, or -1 (the whole expert)
  if constexpr (kMode == kWgradMode) {
    if (blockIdx.x >= sched.max_items) {
      // A zero block (past the items): piece (y, z) of the [M][N] gradient of every expert
      // without rows among experts zb, zb + zero blocks, ...: a contiguous 32 KB each, so the
      // experts' zeros stream beside the few long GEMM items of a skewed routing.
      const int zb = static_cast<int>(blockIdx.x - sched.max_items), nzb = static_cast<int>(gridDim.x - sched.max_items);
      const long long piece = static_cast<long long>(blockIdx.y) * gridDim.z + blockIdx.z;
      for (int e = zb; e < sched.segments; e += nzb) {
        if (p.offsets[e + 1] != p.offsets[e]) continue;
        uint4* dst = reinterpret_cast<uint4*>(p.c + static_cast<long long>(e) * p.M * p.N + piece * kTile * kTile);
#pragma unroll
        for (int i = 0; i < kTile * kTile / 8 / kThreads; ++i) dst[tid + i * kThreads] = make_uint4(0u, 0u, 0u, 0u);  // 8
      }
      return;
    }
  }
  if (static_cast<int>(blockIdx.x) >= sched.counters[0]) return;
  const WorkItem item = sched.items[blockIdx.x];
  segment = item.segment;
  row_base = item.row_begin;
  if constexpr (kMode == kRowsMode) {
    m_rows = item.row_end - item.row_begin;
    k_rows = p.K;
    m0 = 0;
    n0 = blockIdx.y * kTile;
    num_k = p.K / kTileK;
  } else {
    k_rows = item.row_end - item.row_begin;
    slot = item.slot;
    m_rows = kTile;
    m0 = blockIdx.y * kTile;
    n0 = blockIdx.z * kTile;
    num_k = (k_rows + kTileK - 1) / kTileK;
  }
  const __nv_bfloat16* b_base =
      kMode == kRowsMode ? p.b + static_cast<long long>(segment) * p.N * p.K : p.b;

  auto load_stage = [&](int kt, int buf) {
    __nv_bfloat16* da = sa + buf * kTileElems;
    __nv_bfloat16* db = sb + buf * kTileElems;
    const int k0 = kt * kTileK;
#pragma unroll
    for (int i = 0; i < kTileElems / 8 / kThreads; ++i) {  // 4
      const int c = tid + i * kThreads;
      if constexpr (!kATrans) {  // rows mode: A [rows][K]
        const int r = c / 8, col = (c % 8) * 8;
        const bool valid = r < m_rows;
        const __nv_bfloat16* src = p.a + (valid ? static_cast<long long>(row_base + r) * p.K + k0 + col : 0);
        cp_async16(smem_u32(da + swz(r, col, kTileK)), src, valid);
      } else {  // wgrad mode: A [rows][M], the tile is [k][m]
        const int r = c / 16, col = (c % 16) * 8;
        const bool valid = k0 + r < k_rows;
        const __nv_bfloat16* src = p.a + (valid ? static_cast<long long>(row_base + k0 + r) * p.M + m0 + col : 0);
        cp_async16(smem_u32(da + swz(r, col, kTile)), src, valid);
      }
      if constexpr (!kBTrans) {  // B_e [N][K]
        const int r = c / 8, col = (c % 8) * 8;
        cp_async16(smem_u32(db + swz(r, col, kTileK)), b_base + static_cast<long long>(n0 + r) * p.K + k0 + col, true);
      } else if constexpr (kMode == kRowsMode) {  // B_e [K][N]
        const int r = c / 16, col = (c % 16) * 8;
        cp_async16(smem_u32(db + swz(r, col, kTile)), b_base + static_cast<long long>(k0 + r) * p.N + n0 + col, true);
      } else {  // B [rows][N]
        const int r = c / 16, col = (c % 16) * 8;
        const bool valid = k0 + r < k_rows;
        const __nv_bfloat16* src = b_base + (valid ? static_cast<long long>(row_base + k0 + r) * p.N + n0 + col : 0);
        cp_async16(smem_u32(db + swz(r, col, kTile)), src, valid);
      }
    }
  };

  float acc[4][4][4];
#pragma unroll
  for (int mt = 0; mt < 4; ++mt)
#pragma unroll
    for (int nt = 0; nt < 4; ++nt)
#pragma unroll
      for (int q = 0; q < 4; ++q) acc[mt][nt][q] = 0.0f;
  const bool active = wm * 64 < m_rows;

#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < num_k) load_stage(s, s);
    cp_async_commit();
  }
  for (int kt = 0; kt < num_k; ++kt) {
    cp_async_wait<kStages - 2>();
    __syncthreads();
    if (kt + kStages - 1 < num_k) load_stage(kt + kStages - 1, (kt + kStages - 1) % kStages);
    cp_async_commit();
    if (!active) continue;
    const __nv_bfloat16* ta = sa + (kt % kStages) * kTileElems;
    const __nv_bfloat16* tb = sb + (kt % kStages) * kTileElems;
#pragma unroll
    for (int kk = 0; kk < kTileK / 16; ++kk) {
      std::uint32_t af[4][4];
#pragma unroll
      for (int mt = 0; mt < 4; ++mt) {
        if constexpr (!kATrans)
          ldmatrix_x4(af[mt], smem_u32(ta + swz(wm * 64 + mt * 16 + (lane % 16), kk * 16 + (lane / 16) * 8, kTileK)));
        else
          ldmatrix_x4_trans(af[mt],
                            smem_u32(ta + swz(kk * 16 + (lane % 8) + (lane / 16) * 8, wm * 64 + mt * 16 + ((lane / 8) % 2) * 8, kTile)));
      }
#pragma unroll
      for (int np = 0; np < 2; ++np) {
        std::uint32_t bf[4];
        if constexpr (!kBTrans)
          ldmatrix_x4(bf, smem_u32(tb + swz(wn * 32 + np * 16 + (lane % 8) + (lane / 16) * 8, kk * 16 + ((lane / 8) % 2) * 8, kTileK)));
        else
          ldmatrix_x4_trans(bf, smem_u32(tb + swz(kk * 16 + (lane % 8) + ((lane / 8) % 2) * 8, wn * 32 + np * 16 + (lane / 16) * 8, kTile)));
#pragma unroll
        for (int mt = 0; mt < 4; ++mt) {
          mma_bf16(acc[mt][2 * np], af[mt], bf[0], bf[1]);
          mma_bf16(acc[mt][2 * np + 1], af[mt], bf[2], bf[3]);
        }
      }
    }
  }
  cp_async_wait<0>();
  if constexpr (kMode == kWgradMode) {
    if (slot >= 0) {  // part of a split expert: fp32 partial sums straight from the accumulators
      float* part = p.partial + (static_cast<long long>(slot) * 2 + p.partial_half) * p.M * p.N;
      for_each_acc_pair(acc, wm, wn, g, t, [&](int row, int col, float v0, float v1) {
        *reinterpret_cast<float2*>(part + static_cast<long long>(m0 + row) * p.N + n0 + col) = make_float2(v0, v1);
      });
      return;
    }
  }
  __syncthreads();

  // Epilogue: stage the 128 x 128 tile(s) in shared memory, then 16-byte stores.
  __nv_bfloat16* st = sa;               // [128][128]
  __nv_bfloat16* st2 = sa + kTile * kTile;
  const long long c_base = kMode == kRowsMode ? static_cast<long long>(row_base) * p.N + n0
                                              : static_cast<long long>(segment) * p.M * p.N + static_cast<long long>(m0) * p.N + n0;
  for_each_acc_pair(acc, wm, wn, g, t, [&](int row, int col, float v0, float v1) {
    if constexpr (kEpi == kEpiGeluGrad) {
      if (row < m_rows) {
        const __nv_bfloat162 pre =
            *reinterpret_cast<const __nv_bfloat162*>(p.aux + c_base + static_cast<long long>(row) * p.N + col);
        const float2 pf = __bfloat1622float2(pre);
        v0 *= gelu_grad(pf.x);
        v1 *= gelu_grad(pf.y);
      }
    }
    *reinterpret_cast<std::uint32_t*>(st + swz(row, col, kTile)) = pack_bf16x2(v0, v1);
    if constexpr (kEpi == kEpiGelu)
      *reinterpret_cast<std::uint32_t*>(st2 + swz(row, col, kTile)) = pack_bf16x2(gelu(v0), gelu(v1));
  });
  __syncthreads();
#pragma unroll
  for (int i = 0; i < kTile * kTile / 8 / kThreads; ++i) {  // 8
    const int c = tid + i * kThreads;
    const int r = c / 16, col = (c % 16) * 8;
    if (r < m_rows) {
      const long long at = c_base + static_cast<long long>(r) * p.N + col;
      *reinterpret_cast<uint4*>(p.c + at) = *reinterpret_cast<const uint4*>(st + swz(r, col, kTile));
      if constexpr (kEpi == kEpiGelu)
        *reinterpret_cast<uint4*>(p.c2 + at) = *reinterpret_cast<const uint4*>(st2 + swz(r, col, kTile));
    }
  }
}

constexpr int kSmem = 2 * kStages * kTileElems * 2;  // 96 KB
constexpr unsigned kZeroBlocks = 64;                  // per output tile of a weight-gradient launch

template <bool kATrans, bool kBTrans, int kMode, int kEpi>
core::Status run_gemm(const GemmParams& p, const Schedule& sched, dim3 grid, cudaStream_t stream) {
  auto kernel = grouped_gemm_kernel<kATrans, kBTrans, kMode, kEpi>;
  HPSIM_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem));
  if (grid.x == 0) return core::Status::ok();
  kernel<<<grid, kThreads, kSmem, stream>>>(p, sched);
  HPSIM_CUDA_TRY_LAUNCH("grouped_gemm_kernel");
  return core::Status::ok();
}

}  // namespace

core::Status launch(const GroupedMlpForwardArgs& args, void* workspace, Stream stream_handle) {
  HPSIM_TRY(can_implement(args));
  auto stream = static_cast<cudaStream_t>(stream_handle);
  char* cursor = static_cast<char*>(workspace);
  const Schedule sched = carve_schedule(cursor, args.rows, args.num_experts, kTile);
  HPSIM_CUDA_TRY(build_schedule(args.offsets, sched, /*item_for_empty=*/false, stream));
  const int d = static_cast<int>(args.dim), f = static_cast<int>(args.hidden);
  GemmParams up{nv(args.x), nv(args.w1), nv(args.pre_act), nv(args.act), nullptr, args.offsets, 0, f, d};
  HPSIM_TRY((run_gemm<false, false, kRowsMode, kEpiGelu>(up, sched, dim3(static_cast<unsigned>(sched.max_items), f / kTile),
                                                         stream)));
  GemmParams down{nv(args.act), nv(args.w2), nv(args.y), nullptr, nullptr, args.offsets, 0, d, f};
  return run_gemm<false, true, kRowsMode, kEpiStore>(down, sched, dim3(static_cast<unsigned>(sched.max_items), d / kTile),
                                                     stream);
}

core::Status launch(const GroupedMlpBackwardArgs& args, void* workspace, Stream stream_handle) {
  HPSIM_TRY(can_implement(args));
  auto stream = static_cast<cudaStream_t>(stream_handle);
  char* cursor = static_cast<char*>(workspace);
  const Schedule sched = carve_schedule(cursor, args.rows, args.num_experts, kTile);
  const Schedule wsched = carve_schedule(cursor, args.rows, args.num_experts, limits::kGemmWgradRows);
  auto* d_pre = reinterpret_cast<__nv_bfloat16*>(cursor);
  cursor += limits::round_up(args.rows * args.hidden * 2, limits::kAlign);
  auto* partial = reinterpret_cast<float*>(cursor);
  const ScheduleBuild wbuild{wsched, /*item_for_empty=*/false};
  HPSIM_CUDA_TRY(build_schedules(args.offsets, ScheduleBuild{sched, /*item_for_empty=*/false}, &wbuild, stream));
  const int d = static_cast<int>(args.dim), f = static_cast<int>(args.hidden);
  const unsigned items = static_cast<unsigned>(sched.max_items);
  // d_pre = (dY W2^T) * GELU'(pre)
  GemmParams g1{nv(args.dy), nv(args.w2), d_pre, nullptr, nv(args.pre_act), args.offsets, 0, f, d};
  HPSIM_TRY((run_gemm<false, false, kRowsMode, kEpiGeluGrad>(g1, sched, dim3(items, f / kTile), stream)));
  // dX = d_pre W1
  GemmParams g2{d_pre, nv(args.w1), nv(args.dx), nullptr, nullptr, args.offsets, 0, d, f};
  HPSIM_TRY((run_gemm<false, true, kRowsMode, kEpiStore>(g2, sched, dim3(items, d / kTile), stream)));
  // dW2 = act^T dY, dW1 = d_pre^T X, per weight-gradient item; split experts through the slots;
  // the experts without rows get zeros from kZeroBlocks extra blocks of each launch.
  const unsigned wg_items = static_cast<unsigned>(wsched.max_items) + kZeroBlocks;
  GemmParams g3{nv(args.act), nv(args.dy), nv(args.d_w2), nullptr, nullptr, args.offsets, f, d, 0, partial, 0};
  HPSIM_TRY((run_gemm<true, true, kWgradMode, kEpiStore>(g3, wsched, dim3(wg_items, f / kTile, d / kTile), stream)));
  GemmParams g4{d_pre, nv(args.x), nv(args.d_w1), nullptr, nullptr, args.offsets, f, d, 0, partial, 1};
  HPSIM_TRY((run_gemm<true, true, kWgradMode, kEpiStore>(g4, wsched, dim3(wg_items, f / kTile, d / kTile), stream)));
  const long long fd = static_cast<long long>(f) * d;
  // A partial-sum slot holds dW2 [f][d], then dW1 [f][d].
  HPSIM_CUDA_TRY(reduce_slots(partial, wsched, 2 * fd, StoreBf16Pair{nv(args.d_w2), nv(args.d_w1), fd}, stream));
  return core::Status::ok();
}

}  // namespace hpsim::kernels
