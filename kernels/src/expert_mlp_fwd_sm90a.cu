// HP expert MLP forward on wgmma (sm_90a). A block of three warpgroups owns up to 192 grouped rows
// of one (head, expert) segment (64 rows per warpgroup), so a typical segment streams its expert's
// weights once rather than once per 64 rows. The block is persistent and streams its items' chunks
// without a break between items (4-stage cp.async ring, two X buffers). Per chunk of 64 hidden
// units (of K_e rows and V_e^T columns, 128-byte swizzled, K-major, shared by the three warpgroups):
//   S = X K_c^T      wgmma m64n64k16 x 8, A and B from shared memory (each read once per block)
//   P = GELU(S)      in registers, repacked as the A operand of the next wgmma
//   Y += P V_c       wgmma m64n128k16 x 4, A from registers, B from shared memory
// The rows x f activation never leaves registers. Symbols as in expert_mlp.h. Compiled for
// sm_90a only (wgmma).
#include <cuda_fp16.h>

#include "expert_mlp_wgmma.h"
#include "wgmma.cuh"

namespace hpsim::kernels::device {
namespace {

using namespace mlp;

constexpr int kRowsW = kWgmmaRows;       // 192
constexpr int kGroups = kRowsW / 64;     // warpgroups
constexpr int kThreadsW = kGroups * 128;
constexpr int kFw = 64;                  // hidden units per chunk
constexpr int kAtom = 64 * 64;           // elements of one [64][64] 128-byte-swizzle atom (8 KB)
constexpr int kStagesW = 4;  // three chunks ahead of the one computing, across item boundaries
constexpr int kStageElems = 4 * kAtom;   // K chunk [64][128] (2 atoms) + V^T chunk [128][64] (2 atoms)
constexpr int kXElems = 2 * kGroups * kAtom;  // X tile: 2 atoms (h 0-63, 64-127) of kRowsW rows
constexpr int kXBufs = 2;                     // item q computes from one while item q + 1's rows load
constexpr int kSmemBytes = (kXBufs * kXElems + kStagesW * kStageElems) * 2 + 1024;  // + alignment slack (225 KB)

// Element offset of (r, c) in a swizzled tile of 64-element rows (atoms stacked along rows).
__device__ __forceinline__ int sw64(int r, int c) { return r * 64 + ((((c >> 3) ^ (r & 7))) << 3) + (c & 7); }

// GELU (tanh form) of two values in f16x2 arithmetic (half the instructions of fp32; f16 keeps
// 11 significant bits, more than the bf16 the result is rounded to), packed as bf16x2.
__device__ __forceinline__ std::uint32_t gelu_bf16x2(float a, float b) {
  const __half2 s = __floats2half2_rn(a, b);
  const __half2 inner = __hfma2(__hmul2(__hmul2(s, s), __float2half2_rn(kGeluCubic)), s, s);
  const __half2 u = __hmul2(inner, __float2half2_rn(kSqrt2OverPi));
  std::uint32_t t_bits;
  asm("tanh.approx.f16x2 %0, %1;" : "=r"(t_bits) : "r"(*reinterpret_cast<const std::uint32_t*>(&u)));
  const __half2 t = *reinterpret_cast<const __half2*>(&t_bits);
  const __half2 hs = __hmul2(s, __float2half2_rn(0.5f));
  const float2 g = __half22float2(__hfma2(hs, t, hs));
  return pack_bf16x2(g.x, g.y);
}

// pair / k for 0 <= pair < 2^24 and 1 <= k <= 8, without an integer division.
__device__ __forceinline__ int div_small(int pair, int k, float inv_k) {
  int t = __float2int_rz(__int2float_rn(pair) * inv_k);
  t += (t + 1) * k <= pair ? 1 : 0;
  t -= t * k > pair ? 1 : 0;
  return t;
}

// cp.async.wait_group with a run-time count (0 .. kStagesW - 1 groups still pending).
__device__ __forceinline__ void cp_async_wait_upto(int pending) {
  if (pending <= 0) {
    cp_async_wait<0>();
  } else if (pending == 1) {
    cp_async_wait<1>();
  } else if (pending == 2) {
    cp_async_wait<2>();
  } else {
    cp_async_wait<3>();
  }
}
static_assert(kStagesW - 1 <= 3, "cp_async_wait_upto covers up to three pending groups");

// Persistent: each block walks its work items (grid stride) as one stream of weight chunks, item
// after item, so the next item's X rows and first chunks load while the current item computes.
// Chunk c of the block's stream (item c / nchunks) sits in stage c % kStagesW; item q's X rows in
// X buffer q % 2 and travel in the same cp.async group as its first chunk.
__global__ void __launch_bounds__(kThreadsW, 1) expert_mlp_fwd_wgmma_kernel(MlpParams p, Schedule sched) {
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  const std::uint32_t misalign = smem_u32(smem_raw) & 1023u;
  __nv_bfloat16* base = reinterpret_cast<__nv_bfloat16*>(smem_raw + (misalign ? 1024u - misalign : 0u));
  __nv_bfloat16* xbufs = base;                       // [2][2][kRowsW][64]: per buffer h 0-63, then h 64-127
  __nv_bfloat16* stages = base + kXBufs * kXElems;   // kStagesW x (K chunk 2 atoms, V^T chunk 2 atoms)
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int wg = warp / 4;  // this thread's warpgroup: rows 64 wg .. 64 wg + 63
  const int nchunks = p.f / kFw;
  const float inv_k = 1.0f / static_cast<float>(p.k);
  // Descriptors of the first k16 step; later steps add constant byte offsets (>> 4) to them.
  const std::uint64_t desc_x0 = wgmma_desc(xbufs + wg * kAtom);
  const std::uint64_t desc_stage0 = wgmma_desc(stages);
  const int num_items = sched.counters[0];
  const int first = static_cast<int>(blockIdx.x), stride = static_cast<int>(gridDim.x);
  if (first >= num_items) return;
  const int nloc = (num_items - 1 - first) / stride + 1;  // this block's items
  const int total = nloc * nchunks;                        // this block's chunks

  WorkItem cur = sched.items[first];                            // item q
  WorkItem nxt = nloc > 1 ? sched.items[first + stride] : cur;  // item q + 1
  int issued = 0;  // chunks of the stream issued so far

  // Issues the stream's chunks below `limit` that belong to items up to q + 1 (`cur` is item q).
  auto issue_upto = [&](int limit, int q) {
    while (issued < total && issued < limit) {
      const int iq = issued / nchunks;
      if (iq > q + 1) break;
      const int j = issued - iq * nchunks;
      const WorkItem w = iq == q ? cur : nxt;
      if (j == 0) {  // X rows, gathered through perm; missing rows zero
        __nv_bfloat16* xs = xbufs + (iq & 1) * kXElems;
        const int rows = w.row_end - w.row_begin;
        const int l = w.segment / p.E;
#pragma unroll
        for (int i = 0; i < (kRowsW * kH / 8) / kThreadsW; ++i) {  // 8
          const int c = tid + i * kThreadsW;
          const int r = c / 16, cc = c % 16;
          int pair = -1;
          if (r < rows) pair = p.perm[w.row_begin + r];
          const bool valid = pair >= 0;
          const __nv_bfloat16* src =
              p.x + (valid ? ((static_cast<long long>(div_small(pair, p.k, inv_k)) * p.L + l) * kH + cc * 8) : 0);
          cp_async16(smem_u32(xs + (cc / 8) * kGroups * kAtom + sw64(r, (cc % 8) * 8)), src, valid);
        }
      }
      const __nv_bfloat16* kp = p.wk + static_cast<long long>(w.segment) * p.f * kH;
      const __nv_bfloat16* vtp = p.wv + static_cast<long long>(w.segment) * kH * p.f;
      __nv_bfloat16* kb = stages + (issued % kStagesW) * kStageElems;
      __nv_bfloat16* vb = kb + 2 * kAtom;
      for (int c = tid; c < kFw * kH / 8; c += kThreadsW) {  // K rows j*64 .. j*64+63
        const int r = c / 16, cc = c % 16;
        cp_async16(smem_u32(kb + (cc / 8) * kAtom + sw64(r, (cc % 8) * 8)),
                   kp + static_cast<long long>(j * kFw + r) * kH + cc * 8, true);
      }
      for (int c = tid; c < kH * kFw / 8; c += kThreadsW) {  // V^T rows h 0..127, columns j*64 ..
        const int r = c / 8, cc = c % 8;
        cp_async16(smem_u32(vb + sw64(r, cc * 8)), vtp + static_cast<long long>(r) * p.f + j * kFw + cc * 8, true);
      }
      cp_async_commit();
      ++issued;
    }
  };

  issue_upto(kStagesW - 1, 0);
  for (int q = 0; q < nloc; ++q) {
    const int rows = cur.row_end - cur.row_begin;
    const bool active = wg * 64 < rows;
    __nv_bfloat16* xs = xbufs + (q & 1) * kXElems;
    const std::uint64_t desc_x = desc_x0 + static_cast<std::uint64_t>(((q & 1) * kXElems * 2) >> 4);

    float y[64];
#pragma unroll
    for (int i = 0; i < 64; ++i) y[i] = 0.0f;

    for (int j = 0; j < nchunks; ++j) {
      const int g = q * nchunks + j;
      cp_async_wait_upto(issued - (g + 1));  // chunk g (and, for j = 0, the item's X) has landed
      fence_proxy_async();
      __syncthreads();  // ... for every thread; and every warpgroup is done with chunk g - 1
      issue_upto(g + kStagesW, q);  // refill the stage chunk g - 1 used
      if (!active) continue;
      const std::uint64_t desc_k = desc_stage0 + static_cast<std::uint64_t>(((g % kStagesW) * kStageElems * 2) >> 4);
      const std::uint64_t desc_v = desc_k + static_cast<std::uint64_t>((2 * kAtom * 2) >> 4);

      float s[32];
#pragma unroll
      for (int i = 0; i < 32; ++i) s[i] = 0.0f;
      wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < kH / 16; ++kk)
        wgmma_m64n64k16_ss(s, desc_x + static_cast<std::uint64_t>(((kk / 4) * kGroups * kAtom * 2 + (kk % 4) * 32) >> 4),
                           desc_k + static_cast<std::uint64_t>(((kk / 4) * kAtom * 2 + (kk % 4) * 32) >> 4), 1);
      wgmma_commit();
      wgmma_wait<0>();

      std::uint32_t pa[4][4];
#pragma unroll
      for (int ks = 0; ks < 4; ++ks) {
        const int i0 = 2 * ks, i1 = 2 * ks + 1;
        pa[ks][0] = gelu_bf16x2(s[4 * i0 + 0], s[4 * i0 + 1]);
        pa[ks][1] = gelu_bf16x2(s[4 * i0 + 2], s[4 * i0 + 3]);
        pa[ks][2] = gelu_bf16x2(s[4 * i1 + 0], s[4 * i1 + 1]);
        pa[ks][3] = gelu_bf16x2(s[4 * i1 + 2], s[4 * i1 + 3]);
      }
      wgmma_fence();
#pragma unroll
      for (int ks = 0; ks < kFw / 16; ++ks)
        wgmma_m64n128k16_rs(y, pa[ks], desc_v + static_cast<std::uint64_t>((ks * 32) >> 4), 1);
      wgmma_commit();
      wgmma_wait<0>();
    }
    __syncthreads();  // every warpgroup's last S is done: the X buffer becomes Y's staging area

    // Epilogue: stage Y as bf16 in the X buffer, then 16-byte stores of the valid rows. The next
    // item's loads stay in flight meanwhile.
    const int g8 = lane / 4, t = lane % 4;
    if (active) {
#pragma unroll
      for (int i = 0; i < 16; ++i) {
        const int col = i * 8 + 2 * t;
        *reinterpret_cast<std::uint32_t*>(xs + swz(warp * 16 + g8, col, kH)) = pack_bf16x2(y[4 * i + 0], y[4 * i + 1]);
        *reinterpret_cast<std::uint32_t*>(xs + swz(warp * 16 + g8 + 8, col, kH)) = pack_bf16x2(y[4 * i + 2], y[4 * i + 3]);
      }
    }
    __syncthreads();
#pragma unroll
    for (int i = 0; i < (kRowsW * kH / 8) / kThreadsW; ++i) {
      const int c = tid + i * kThreadsW;
      const int r = c / 16, col = (c % 16) * 8;
      if (r < rows)
        *reinterpret_cast<uint4*>(p.y + static_cast<long long>(cur.row_begin + r) * kH + col) =
            *reinterpret_cast<const uint4*>(xs + swz(r, col, kH));
    }
    // No barrier here: this buffer is next written by item q + 2's X loads, issued after the
    // barrier of item q + 1's first chunk.
    cur = nxt;
    if (q + 2 < nloc) nxt = sched.items[first + (q + 2) * stride];
  }
  cp_async_wait<0>();
}

}  // namespace

bool wgmma_supported() {
  int device = 0, major = 0, minor = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return false;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess) return false;
  if (cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess) return false;
  return major == 9 && minor == 0;
}

cudaError_t launch_expert_mlp_fwd_wgmma(const mlp::MlpParams& p, const Schedule& sched, cudaStream_t stream) {
  const cudaError_t attr =
      cudaFuncSetAttribute(expert_mlp_fwd_wgmma_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemBytes);
  if (attr != cudaSuccess) return attr;
  if (sched.max_items == 0) return cudaSuccess;
  int device = 0, sms = 0;
  cudaError_t e = cudaGetDevice(&device);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  if (e != cudaSuccess) return e;
  const long long blocks = sched.max_items < sms ? sched.max_items : sms;
  expert_mlp_fwd_wgmma_kernel<<<static_cast<unsigned>(blocks), kThreadsW, kSmemBytes, stream>>>(p, sched);
  return cudaGetLastError();
}

}  // namespace hpsim::kernels::device
