#pragma once
// The top-k selection shared by both router forward kernels (router.h): sorted per-thread lists of
// (biased score, expert), their merge, and the softmax over the k clean scores with the outputs.
// Order everywhere: value descending, then expert ascending (ties go to the lower expert).
// Private to router_fwd.cu.

#include <cfloat>

#include "device_common.cuh"

namespace hpsim::kernels::device::router_select {

constexpr int kNoExpert = 0x7fffffff;

// Empties the sorted lists of a thread's four tokens (no expert, value -FLT_MAX) and their
// admission thresholds.
template <int KMAX>
__device__ __forceinline__ void reset_lists(float (&lv)[4][KMAX], int (&li)[4][KMAX], float (&thr)[4]) {
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    thr[i] = -FLT_MAX;
#pragma unroll
    for (int q = 0; q < KMAX; ++q) {
      lv[i][q] = -FLT_MAX;
      li[i][q] = kNoExpert;
    }
  }
}

// Inserts (v, e) into a list sorted by (value desc, expert asc), dropping the last entry.
template <int KMAX>
__device__ __forceinline__ void insert_sorted(float (&lv)[KMAX], int (&li)[KMAX], float v, int e) {
  float cv = v;
  int ce = e;
#pragma unroll
  for (int q = 0; q < KMAX; ++q) {
    const bool better = cv > lv[q] || (cv == lv[q] && ce < li[q]);
    if (better) {
      const float tv = lv[q];
      const int ti = li[q];
      lv[q] = cv;
      li[q] = ce;
      cv = tv;
      ce = ti;
    }
  }
}

// The best KMAX of `lists` (<= MAXLISTS) lists of `len` entries each, each sorted as above, merged
// by walking their heads.
template <int KMAX, int MAXLISTS>
__device__ __forceinline__ void merge_sorted_lists(const float* cv, const int* ce, int lists, int len, float (&sel_v)[KMAX],
                                                   int (&sel_e)[KMAX]) {
  int head[MAXLISTS];
#pragma unroll
  for (int s = 0; s < MAXLISTS; ++s) head[s] = 0;
#pragma unroll
  for (int j = 0; j < KMAX; ++j) {
    float best_v = -FLT_MAX;
    int best_e = kNoExpert, best_s = 0;
#pragma unroll
    for (int s = 0; s < MAXLISTS; ++s) {
      if (s < lists && head[s] < len) {
        const float v = cv[s * len + head[s]];
        const int e = ce[s * len + head[s]];
        if (v > best_v || (v == best_v && e < best_e)) {
          best_v = v;
          best_e = e;
          best_s = s;
        }
      }
    }
#pragma unroll
    for (int s = 0; s < MAXLISTS; ++s) head[s] += (s == best_s) ? 1 : 0;
    sel_v[j] = best_v;
    sel_e[j] = best_e;
  }
}

// Stores a thread's sorted lists of its four token rows (row 2 mt + rh, the mma accumulator layout)
// as list tq of each token's four in candidate arrays [token][4][KMAX]; token_of(mt, rh) names the
// token. The four lists of a token are then merged by merge_sorted_lists<KMAX, 4>.
template <int KMAX, typename TokenOf>
__device__ __forceinline__ void store_quad_lists(float* cand_v, int* cand_e, const float (&lv)[4][KMAX],
                                                 const int (&li)[4][KMAX], int tq, TokenOf token_of) {
#pragma unroll
  for (int mt = 0; mt < 2; ++mt)
#pragma unroll
    for (int rh = 0; rh < 2; ++rh)
#pragma unroll
      for (int j = 0; j < KMAX; ++j) {
        const int at = (token_of(mt, rh) * 4 + tq) * KMAX + j;
        cand_v[at] = lv[mt * 2 + rh][j];
        cand_e[at] = li[mt * 2 + rh][j];
      }
}

// Softmax over the k clean scores (biased minus bias) of token t of head l; writes its slots and
// counts them. P: either kernel's parameters (bias, topk_expert, topk_gate, counts, N, E, k).
template <int KMAX, typename P>
__device__ __forceinline__ void finish_token(const P& p, int l, int t, const float (&sel_v)[KMAX], const int (&sel_e)[KMAX]) {
  float clean[KMAX];
  float max_clean = -FLT_MAX;
#pragma unroll
  for (int j = 0; j < KMAX; ++j) {
    if (j < p.k) {
      const float b = p.bias != nullptr ? __ldg(p.bias + static_cast<long long>(l) * p.E + sel_e[j]) : 0.0f;
      clean[j] = sel_v[j] - b;
      max_clean = fmaxf(max_clean, clean[j]);
    }
  }
  float sum = 0.0f;
#pragma unroll
  for (int j = 0; j < KMAX; ++j) {
    if (j < p.k) {
      clean[j] = __expf(clean[j] - max_clean);
      sum += clean[j];
    }
  }
  const float inv = 1.0f / sum;
  const long long out = (static_cast<long long>(l) * p.N + t) * p.k;
#pragma unroll
  for (int j = 0; j < KMAX; ++j) {
    if (j < p.k) {
      p.topk_expert[out + j] = sel_e[j];
      p.topk_gate[out + j] = clean[j] * inv;
      if (p.counts != nullptr) atomicAdd(p.counts + static_cast<long long>(l) * p.E + sel_e[j], 1);
    }
  }
}

}  // namespace hpsim::kernels::device::router_select
