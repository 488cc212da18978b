// HP expert MLP forward on wgmma (sm_90a). A block of three warpgroups owns up to 192 grouped rows
// of one (head, expert) segment (64 rows per warpgroup), so a typical segment streams its expert's
// weights once rather than once per 64 rows. Per chunk of 64 hidden units (5-stage
// cp.async pipeline, all of f = 256 in flight, of K_e rows and V_e^T columns, 128-byte swizzled,
// K-major, shared by the three warpgroups):
//   S = X K_c^T      wgmma m64n64k16 x 8, A and B from shared memory (each read once per block)
//   P = GELU(S)      in registers, repacked as the A operand of the next wgmma
//   Y += P V_c       wgmma m64n128k16 x 4, A from registers, B from shared memory
// The rows x f activation never leaves registers. Symbols as in expert_mlp.h. Compiled for
// sm_90a only (wgmma).
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
constexpr int kStagesW = 5;  // four chunks ahead: all of f = 256 in flight at once
constexpr int kStageElems = 4 * kAtom;   // K chunk [64][128] (2 atoms) + V^T chunk [128][64] (2 atoms)
constexpr int kXElems = 2 * kGroups * kAtom;  // X tile: 2 atoms (h 0-63, 64-127) of kRowsW rows
constexpr int kSmemBytes = (kXElems + kStagesW * kStageElems) * 2 + 1024;  // + alignment slack

// Element offset of (r, c) in a swizzled tile of 64-element rows (atoms stacked along rows).
__device__ __forceinline__ int sw64(int r, int c) { return r * 64 + ((((c >> 3) ^ (r & 7))) << 3) + (c & 7); }

__global__ void __launch_bounds__(kThreadsW, 1) expert_mlp_fwd_wgmma_kernel(MlpParams p, Schedule sched) {
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  const std::uint32_t misalign = smem_u32(smem_raw) & 1023u;
  __nv_bfloat16* base = reinterpret_cast<__nv_bfloat16*>(smem_raw + (misalign ? 1024u - misalign : 0u));
  __nv_bfloat16* xs = base;                // [2][kRowsW][64]: h 0-63, then h 64-127
  __nv_bfloat16* stages = base + kXElems;  // kStagesW x (K chunk 2 atoms, V^T chunk 2 atoms)
  if (static_cast<int>(blockIdx.x) >= sched.counters[0]) return;
  const WorkItem item = sched.items[blockIdx.x];
  const int rows = item.row_end - item.row_begin;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int wg = warp / 4;                 // this thread's warpgroup: rows 64 wg .. 64 wg + 63
  const bool active = wg * 64 < rows;
  const int l = item.segment / p.E;
  const __nv_bfloat16* kp = p.wk + static_cast<long long>(item.segment) * p.f * kH;
  const __nv_bfloat16* vtp = p.wv + static_cast<long long>(item.segment) * kH * p.f;
  const int nchunks = p.f / kFw;

  // X rows (gathered through perm; missing rows zero).
#pragma unroll
  for (int i = 0; i < (kRowsW * kH / 8) / kThreadsW; ++i) {  // 8
    const int c = tid + i * kThreadsW;
    const int r = c / 16, cc = c % 16;
    int pair = -1;
    if (r < rows) pair = p.perm[item.row_begin + r];
    const bool valid = pair >= 0;
    const __nv_bfloat16* src = p.x + (valid ? ((static_cast<long long>(pair / p.k) * p.L + l) * kH + cc * 8) : 0);
    cp_async16(smem_u32(xs + (cc / 8) * kGroups * kAtom + sw64(r, (cc % 8) * 8)), src, valid);
  }
  auto load_chunk = [&](int j, int buf) {
    __nv_bfloat16* kb = stages + buf * kStageElems;
    __nv_bfloat16* vb = kb + 2 * kAtom;
    for (int c = tid; c < kFw * kH / 8; c += kThreadsW) {  // K rows j*64 .. j*64+63
      const int r = c / 16, cc = c % 16;
      cp_async16(smem_u32(kb + (cc / 8) * kAtom + sw64(r, (cc % 8) * 8)), kp + static_cast<long long>(j * kFw + r) * kH + cc * 8,
                 true);
    }
    for (int c = tid; c < kH * kFw / 8; c += kThreadsW) {  // V^T rows h 0..127, columns j*64 ..
      const int r = c / 8, cc = c % 8;
      cp_async16(smem_u32(vb + sw64(r, cc * 8)), vtp + static_cast<long long>(r) * p.f + j * kFw + cc * 8, true);
    }
  };
  load_chunk(0, 0);
  cp_async_commit();
#pragma unroll
  for (int st = 1; st < kStagesW - 1; ++st) {
    if (st < nchunks) load_chunk(st, st);
    cp_async_commit();
  }

  float y[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) y[i] = 0.0f;

  for (int j = 0; j < nchunks; ++j) {
    cp_async_wait<kStagesW - 2>();
    fence_proxy_async();
    __syncthreads();
    if (j + kStagesW - 1 < nchunks) load_chunk(j + kStagesW - 1, (j + kStagesW - 1) % kStagesW);
    cp_async_commit();
    if (!active) continue;
    const __nv_bfloat16* kb = stages + (j % kStagesW) * kStageElems;
    const __nv_bfloat16* vb = kb + 2 * kAtom;

    float s[32];
#pragma unroll
    for (int i = 0; i < 32; ++i) s[i] = 0.0f;
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kH / 16; ++kk)
      wgmma_m64n64k16_ss(s, wgmma_desc(xs + (kk / 4) * kGroups * kAtom + wg * kAtom + (kk % 4) * 16),
                         wgmma_desc(kb + (kk / 4) * kAtom + (kk % 4) * 16), 1);
    wgmma_commit();
    wgmma_wait<0>();

    std::uint32_t pa[4][4];
#pragma unroll
    for (int ks = 0; ks < 4; ++ks) {
      const int i0 = 2 * ks, i1 = 2 * ks + 1;
      pa[ks][0] = pack_bf16x2(gelu(s[4 * i0 + 0]), gelu(s[4 * i0 + 1]));
      pa[ks][1] = pack_bf16x2(gelu(s[4 * i0 + 2]), gelu(s[4 * i0 + 3]));
      pa[ks][2] = pack_bf16x2(gelu(s[4 * i1 + 0]), gelu(s[4 * i1 + 1]));
      pa[ks][3] = pack_bf16x2(gelu(s[4 * i1 + 2]), gelu(s[4 * i1 + 3]));
    }
    wgmma_fence();
#pragma unroll
    for (int ks = 0; ks < kFw / 16; ++ks) wgmma_m64n128k16_rs(y, pa[ks], wgmma_desc(vb + ks * 16), 1);
    wgmma_commit();
    wgmma_wait<0>();
  }
  cp_async_wait<0>();
  __syncthreads();

  // Epilogue: stage Y as bf16 in the X tile's space, then 16-byte stores of the valid rows.
  const int g = lane / 4, t = lane % 4;
  if (active) {
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const int col = i * 8 + 2 * t;
      *reinterpret_cast<std::uint32_t*>(xs + swz(warp * 16 + g, col, kH)) = pack_bf16x2(y[4 * i + 0], y[4 * i + 1]);
      *reinterpret_cast<std::uint32_t*>(xs + swz(warp * 16 + g + 8, col, kH)) = pack_bf16x2(y[4 * i + 2], y[4 * i + 3]);
    }
  }
  __syncthreads();
#pragma unroll
  for (int i = 0; i < (kRowsW * kH / 8) / kThreadsW; ++i) {
    const int c = tid + i * kThreadsW;
    const int r = c / 16, col = (c % 16) * 8;
    if (r < rows)
      *reinterpret_cast<uint4*>(p.y + static_cast<long long>(item.row_begin + r) * kH + col) =
          *reinterpret_cast<const uint4*>(xs + swz(r, col, kH));
  }
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
  expert_mlp_fwd_wgmma_kernel<<<static_cast<unsigned>(sched.max_items), kThreadsW, kSmemBytes, stream>>>(p, sched);
  return cudaGetLastError();
}

}  // namespace hpsim::kernels::device
