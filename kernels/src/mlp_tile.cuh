#pragma once
// Building blocks of the fused HP expert MLP kernels on mma.sync (expert_mlp_fwd.cu,
// expert_mlp_bwd.cu): a block owns up to kRows grouped rows of one segment, 8 warps x 16 rows,
// h = 128; K_e ([f][h]) and V_e^T ([h][f]) stream through shared memory in chunks of kFc hidden
// units. Tiles are row-major bf16 with rows padded by 8 elements (16 bytes): ldmatrix reads 8 rows
// at a 16-byte offset from each other, so no bank conflicts, and every fragment address is one
// base register plus an immediate. Private.

#include "device_common.cuh"
#include "schedule.cuh"

namespace hpsim::kernels::device::mlp {

constexpr int kH = 128;          // head width h
constexpr int kRows = 128;       // rows per block
constexpr int kThreads = 256;    // 8 warps
constexpr int kFc = 32;          // hidden units per streamed chunk
constexpr int kXS = kH + 8;      // row stride of [rows][h] tiles
constexpr int kKS = kH + 8;      // row stride of K chunks [kFc][h]
constexpr int kVS = kFc + 8;     // row stride of V^T chunks [h][kFc]
constexpr int kChunkElems = kFc * kKS + kH * kVS;  // one K chunk and one V^T chunk

struct MlpParams {
  const __nv_bfloat16* x = nullptr;   // [N][L][h]
  const int* offsets = nullptr;
  const int* perm = nullptr;
  const __nv_bfloat16* wk = nullptr;  // [L][E][f][h]
  const __nv_bfloat16* wv = nullptr;  // [L][E][h][f]  (V_e^T)
  __nv_bfloat16* y = nullptr;         // forward output [rows][h]
  const __nv_bfloat16* dy = nullptr;  // backward input [rows][h]
  __nv_bfloat16* dxg = nullptr;       // backward output [rows][h]
  __nv_bfloat16* dwk = nullptr;       // [L][E][f][h]
  __nv_bfloat16* dwv = nullptr;       // [L][E][h][f]
  float* partial = nullptr;           // [slots][dK f*h | dV^T h*f] weight-gradient partial sums
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

// Sub-tokens of the item's rows (through perm) -> dst [kRows][kXS]; rows past the item or with
// perm = -1 are zero-filled. cp.async, not committed.
__device__ __forceinline__ void load_rows_gathered(const MlpParams& p, __nv_bfloat16* dst, const WorkItem& item, int l,
                                                   int tid) {
  const int rows = item.row_end - item.row_begin;
#pragma unroll
  for (int i = 0; i < (kRows * kH / 8) / kThreads; ++i) {
    const int c = tid + i * kThreads;
    const int r = c / 16, col = (c % 16) * 8;
    int pair = -1;
    if (r < rows) pair = p.perm[item.row_begin + r];
    const bool valid = pair >= 0;
    const __nv_bfloat16* src = p.x + (valid ? ((static_cast<long long>(pair / p.k) * p.L + l) * kH + col) : 0);
    cp_async16(smem_u32(dst + r * kXS + col), src, valid);
  }
}

// Grouped rows of `src` ([rows][128]) -> dst [kRows][kXS]; rows past the item or with perm = -1
// zero-filled.
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
    cp_async16(smem_u32(dst + r * kXS + col), s, valid);
  }
}

// Hidden units [j*kFc, (j+1)*kFc): K_e rows -> dst [kFc][kKS], V_e^T columns -> dst + kFc*kKS
// ([h][kVS]). cp.async, not committed.
__device__ __forceinline__ void load_weight_chunk(__nv_bfloat16* dst, const __nv_bfloat16* kp, const __nv_bfloat16* vtp,
                                                  int f, int j, int tid) {
#pragma unroll
  for (int i = 0; i < (2 * kFc * kH / 8) / kThreads; ++i) {  // 4
    const int c = tid + i * kThreads;
    if (c < kFc * 16) {
      const int r = c / 16, col = (c % 16) * 8;
      cp_async16(smem_u32(dst + r * kKS + col), kp + static_cast<long long>(j * kFc + r) * kH + col, true);
    } else {
      const int cv = c - kFc * 16;
      const int r = cv / 4, col = (cv % 4) * 8;
      cp_async16(smem_u32(dst + kFc * kKS + r * kVS + col), vtp + static_cast<long long>(r) * f + j * kFc + col, true);
    }
  }
}

// A Stages-deep cp.async ring of weight chunks in `wbuf` (Stages x kChunkElems). The prologue
// issues chunks 0 .. Stages-2, one commit group each (empty groups past nchunks); the caller's
// earlier cp.async copies travel in chunk 0's group.
template <int Stages>
__device__ __forceinline__ void weight_ring_prologue(__nv_bfloat16* wbuf, const __nv_bfloat16* kp,
                                                     const __nv_bfloat16* vtp, int f, int nchunks, int tid) {
  load_weight_chunk(wbuf, kp, vtp, f, 0, tid);
  cp_async_commit();
#pragma unroll
  for (int s = 1; s < Stages - 1; ++s) {
    if (s < nchunks) load_weight_chunk(wbuf + s * kChunkElems, kp, vtp, f, s, tid);
    cp_async_commit();
  }
}

// Step j of the ring: waits for chunk j, synchronises the block (every warp is done with chunk
// j - 1), refills that stage with chunk j + Stages - 1, and returns chunk j's buffer.
template <int Stages>
__device__ __forceinline__ const __nv_bfloat16* weight_ring_step(__nv_bfloat16* wbuf, const __nv_bfloat16* kp,
                                                                 const __nv_bfloat16* vtp, int f, int nchunks, int j,
                                                                 int tid) {
  cp_async_wait<Stages - 2>();
  __syncthreads();
  if (j + Stages - 1 < nchunks)
    load_weight_chunk(wbuf + ((j + Stages - 1) % Stages) * kChunkElems, kp, vtp, f, j + Stages - 1, tid);
  cp_async_commit();
  return wbuf + (j % Stages) * kChunkElems;
}

// s = A_w B over h: A = the warp's 16 rows of `a` ([rows][kXS]); B is the chunk `b`, stored
// [n][k] ([32][kKS], kTransB false: s = A_w B^T in the stored order) or [k][n] ([128][kVS], kTransB
// true).
template <bool kTransB>
__device__ __forceinline__ void rows_times_chunk(const __nv_bfloat16* a, const __nv_bfloat16* b, int warp, int lane,
                                                 float (&s)[4][4]) {
#pragma unroll
  for (int nt = 0; nt < 4; ++nt)
#pragma unroll
    for (int q = 0; q < 4; ++q) s[nt][q] = 0.0f;
  const __nv_bfloat16* arow = a + (warp * 16 + (lane % 16)) * kXS + (lane / 16) * 8;
  const __nv_bfloat16* brow = kTransB ? b + ((lane % 8) + ((lane / 8) % 2) * 8) * kVS + (lane / 16) * 8
                                      : b + ((lane % 8) + (lane / 16) * 8) * kKS + ((lane / 8) % 2) * 8;
#pragma unroll
  for (int kk = 0; kk < kH / 16; ++kk) {
    std::uint32_t af[4];
    ldmatrix_x4(af, smem_u32(arow + kk * 16));
#pragma unroll
    for (int np = 0; np < 2; ++np) {
      std::uint32_t bf[4];
      if constexpr (kTransB)
        ldmatrix_x4_trans(bf, smem_u32(brow + kk * 16 * kVS + np * 16));
      else
        ldmatrix_x4(bf, smem_u32(brow + np * 16 * kKS + kk * 16));
      mma_bf16(s[2 * np], af, bf[0], bf[1]);
      mma_bf16(s[2 * np + 1], af, bf[2], bf[3]);
    }
  }
}

// out += P W: P = the warp's 16 x kFc values as A fragments (pa[ks]: hidden units ks*16 ...);
// W stored [n = h][k = hidden] = `w` ([128][kVS], kTransW false) or [k = hidden][n = h]
// ([kFc][kKS], kTransW true).
template <bool kTransW>
__device__ __forceinline__ void p_times_chunk(const std::uint32_t (&pa)[2][4], const __nv_bfloat16* w, int lane,
                                              float (&out)[16][4]) {
  const __nv_bfloat16* brow = kTransW ? w + ((lane % 8) + ((lane / 8) % 2) * 8) * kKS + (lane / 16) * 8
                                      : w + ((lane % 8) + (lane / 16) * 8) * kVS + ((lane / 8) % 2) * 8;
#pragma unroll
  for (int ks = 0; ks < 2; ++ks)
#pragma unroll
    for (int np = 0; np < 8; ++np) {
      std::uint32_t b[4];
      if constexpr (kTransW)
        ldmatrix_x4_trans(b, smem_u32(brow + ks * 16 * kKS + np * 16));
      else
        ldmatrix_x4(b, smem_u32(brow + np * 16 * kVS + ks * 16));
      mma_bf16(out[2 * np], pa[ks], b[0], b[1]);
      mma_bf16(out[2 * np + 1], pa[ks], b[2], b[3]);
    }
}

// The warp's 16 x 128 fp32 tile -> bf16 rows item.row_begin + warp*16 ... of `out`, staged
// through the warp's own rows of `stage` ([rows][kXS], only this warp reads them).
__device__ __forceinline__ void store_rows(const float (&acc)[16][4], __nv_bfloat16* stage, __nv_bfloat16* out,
                                           const WorkItem& item, int warp, int lane) {
  const int g = lane / 4, t = lane % 4;
  __syncwarp();
#pragma unroll
  for (int nt = 0; nt < 16; ++nt) {
    const int col = nt * 8 + 2 * t;
    *reinterpret_cast<std::uint32_t*>(stage + (warp * 16 + g) * kXS + col) = pack_bf16x2(acc[nt][0], acc[nt][1]);
    *reinterpret_cast<std::uint32_t*>(stage + (warp * 16 + g + 8) * kXS + col) = pack_bf16x2(acc[nt][2], acc[nt][3]);
  }
  __syncwarp();
  const int rows = item.row_end - item.row_begin;
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const int r = warp * 16 + i * 2 + lane / 16, c = (lane % 16) * 8;
    if (r < rows)
      *reinterpret_cast<uint4*>(out + static_cast<long long>(item.row_begin + r) * kH + c) =
          *reinterpret_cast<const uint4*>(stage + r * kXS + c);
  }
}

}  // namespace hpsim::kernels::device::mlp
