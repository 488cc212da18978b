#pragma once
// Building blocks of the fused HP expert MLP kernels (expert_mlp_fwd.cu, expert_mlp_bwd.cu): a
// block owns up to kRows grouped rows of one segment, 8 warps x 16 rows, h = 128; K_e and V_e
// stream through shared memory in chunks of kFc hidden units. Tiles are row-major bf16 with
// 128-element rows, XOR-swizzled (device_common.cuh swz). Private.

#include "device_common.cuh"
#include "schedule.cuh"

namespace hpsim::kernels::device::mlp {

constexpr int kH = 128;        // head width h
constexpr int kRows = 128;     // rows per block
constexpr int kThreads = 256;  // 8 warps
constexpr int kFc = 32;        // hidden units per streamed chunk
constexpr int kChunkElems = 2 * kFc * kH;  // K_c and V_c

struct MlpParams {
  const __nv_bfloat16* x = nullptr;   // [N][L][h]
  const int* offsets = nullptr;
  const int* perm = nullptr;
  const __nv_bfloat16* wk = nullptr;  // [L][E][f][h]
  const __nv_bfloat16* wv = nullptr;
  __nv_bfloat16* y = nullptr;         // forward output [rows][h]
  const __nv_bfloat16* dy = nullptr;  // backward input [rows][h]
  __nv_bfloat16* dxg = nullptr;       // backward output [rows][h]
  __nv_bfloat16* dwk = nullptr;
  __nv_bfloat16* dwv = nullptr;
  float* partial = nullptr;           // [slots][2][f][h] weight-gradient partial sums
  int L = 0, N = 0, k = 0, E = 0, f = 0;
};

inline MlpParams make_mlp_params(const Bf16* x, const std::int32_t* offsets, const std::int32_t* perm, const Bf16* wk,
                                 const Bf16* wv, std::int64_t L, std::int64_t N, std::int64_t k, std::int64_t E,
                                 std::int64_t f) {
  MlpParams p;
  p.x = nv(x);
  p.offsets = offsets;
  p.perm = perm;
  p.wk = nv(wk);
  p.wv = nv(wv);
  p.L = static_cast<int>(L);
  p.N = static_cast<int>(N);
  p.k = static_cast<int>(k);
  p.E = static_cast<int>(E);
  p.f = static_cast<int>(f);
  return p;
}

// Sub-tokens of the item's rows (through perm) -> dst [kRows][128]; rows past the item or with
// perm = -1 are zero-filled. cp.async, not committed.
__device__ __forceinline__ void load_rows_gathered(const MlpParams& p, __nv_bfloat16* dst, const __nv_bfloat16* x,
                                                   const WorkItem& item, int l, int tid) {
  const int rows = item.row_end - item.row_begin;
#pragma unroll
  for (int i = 0; i < (kRows * kH / 8) / kThreads; ++i) {
    const int c = tid + i * kThreads;
    const int r = c / 16, col = (c % 16) * 8;
    int pair = -1;
    if (r < rows) pair = p.perm[item.row_begin + r];
    const bool valid = pair >= 0;
    const __nv_bfloat16* src = x + (valid ? ((static_cast<long long>(pair / p.k) * p.L + l) * kH + col) : 0);
    cp_async16(smem_u32(dst + swz(r, col, kH)), src, valid);
  }
}

// Grouped rows of `src` ([rows][128]) -> dst; rows past the item or with perm = -1 zero-filled.
__device__ __forceinline__ void load_rows_grouped(const MlpParams& p, __nv_bfloat16* dst, const __nv_bfloat16* src,
                                                  const WorkItem& item, int tid) {
  const int rows = item.row_end - item.row_begin;
#pragma unroll
  for (int i = 0; i < (kRows * kH / 8) / kThreads; ++i) {
    const int c = tid + i * kThreads;
    const int r = c / 16, col = (c % 16) * 8;
    bool valid = r < rows;
    if (valid) valid = p.perm[item.row_begin + r] >= 0;
    const __nv_bfloat16* s = src + (valid ? (static_cast<long long>(item.row_begin + r) * kH + col) : 0);
    cp_async16(smem_u32(dst + swz(r, col, kH)), s, valid);
  }
}

// Hidden units [j*kFc, (j+1)*kFc) of K_e and V_e -> dst [2][kFc][128]. cp.async, not committed.
__device__ __forceinline__ void load_weight_chunk(__nv_bfloat16* dst, const __nv_bfloat16* kp,
                                                  const __nv_bfloat16* vp, int j, int tid) {
#pragma unroll
  for (int i = 0; i < (2 * kFc * kH / 8) / kThreads; ++i) {
    const int c = tid + i * kThreads;
    const int which = c / (kFc * 16), rem = c % (kFc * 16);
    const int r = rem / 16, col = (rem % 16) * 8;
    const __nv_bfloat16* src = (which ? vp : kp) + static_cast<long long>(j * kFc + r) * kH + col;
    cp_async16(smem_u32(dst + which * kFc * kH + swz(r, col, kH)), src, true);
  }
}

// s = A_w C^T: A = the warp's 16 rows of `a` ([rows][128]), C = `c` ([kFc][128], hidden-major).
// s[nt] is the 16 x 8 tile of hidden units nt*8 .. nt*8+7.
__device__ __forceinline__ void rows_times_chunk_t(const __nv_bfloat16* a, const __nv_bfloat16* c, int warp, int lane,
                                                   float (&s)[4][4]) {
#pragma unroll
  for (int nt = 0; nt < 4; ++nt)
#pragma unroll
    for (int q = 0; q < 4; ++q) s[nt][q] = 0.0f;
#pragma unroll
  for (int kk = 0; kk < kH / 16; ++kk) {
    std::uint32_t af[4];
    ldmatrix_x4(af, smem_u32(a + swz(warp * 16 + (lane % 16), kk * 16 + (lane / 16) * 8, kH)));
#pragma unroll
    for (int np = 0; np < 2; ++np) {
      std::uint32_t b[4];
      ldmatrix_x4(b, smem_u32(c + swz(np * 16 + (lane % 8) + (lane / 16) * 8, kk * 16 + ((lane / 8) % 2) * 8, kH)));
      mma_bf16(s[2 * np], af, b[0], b[1]);
      mma_bf16(s[2 * np + 1], af, b[2], b[3]);
    }
  }
}

// out += P W_c: P = the warp's 16 x kFc activations as A fragments (pa[ks] for hidden units
// ks*16 .. ks*16+15), W_c = `w` ([kFc][128]); out[nt] is the 16 x 8 tile of columns nt*8 ...
__device__ __forceinline__ void chunk_times_weight(const std::uint32_t (&pa)[2][4], const __nv_bfloat16* w, int lane,
                                                   float (&out)[16][4]) {
#pragma unroll
  for (int ks = 0; ks < 2; ++ks)
#pragma unroll
    for (int np = 0; np < 8; ++np) {
      std::uint32_t b[4];
      ldmatrix_x4_trans(b, smem_u32(w + swz(ks * 16 + (lane % 8) + ((lane / 8) % 2) * 8, np * 16 + (lane / 16) * 8, kH)));
      mma_bf16(out[2 * np], pa[ks], b[0], b[1]);
      mma_bf16(out[2 * np + 1], pa[ks], b[2], b[3]);
    }
}

// The warp's 16 x 128 fp32 tile -> bf16 rows item.row_begin + warp*16 ... of `out`, staged
// through the warp's own rows of `stage` (which only this warp reads) for 16-byte stores.
__device__ __forceinline__ void store_rows(const float (&acc)[16][4], __nv_bfloat16* stage, __nv_bfloat16* out,
                                           const WorkItem& item, int warp, int lane) {
  const int g = lane / 4, t = lane % 4;
  __syncwarp();
#pragma unroll
  for (int nt = 0; nt < 16; ++nt) {
    const int col = nt * 8 + 2 * t;
    *reinterpret_cast<std::uint32_t*>(stage + swz(warp * 16 + g, col, kH)) = pack_bf16x2(acc[nt][0], acc[nt][1]);
    *reinterpret_cast<std::uint32_t*>(stage + swz(warp * 16 + g + 8, col, kH)) = pack_bf16x2(acc[nt][2], acc[nt][3]);
  }
  __syncwarp();
  const int rows = item.row_end - item.row_begin;
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const int r = warp * 16 + i * 2 + lane / 16, c = (lane % 16) * 8;
    if (r < rows)
      *reinterpret_cast<uint4*>(out + static_cast<long long>(item.row_begin + r) * kH + c) =
          *reinterpret_cast<const uint4*>(stage + swz(r, c, kH));
  }
}

}  // namespace hpsim::kernels::device::mlp
