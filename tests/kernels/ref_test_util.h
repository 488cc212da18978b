#pragma once
// Helpers for the CPU tests of the kernel twins: bf16 vectors from doubles and seeded random data.
#include <cstdint>
#include <vector>

#include "hpsim/core/rng.h"
#include "hpsim/kernels/types.h"

namespace hpsim::kernels::testing {

inline std::vector<Bf16> bf16_vector(const std::vector<double>& v) {
  std::vector<Bf16> out;
  out.reserve(v.size());
  for (double x : v) out.push_back(to_bf16(static_cast<float>(x)));
  return out;
}

inline std::vector<Bf16> random_bf16(core::Rng& rng, std::size_t n, double scale) {
  std::vector<Bf16> out(n);
  for (auto& x : out) x = to_bf16(static_cast<float>(rng.normal() * scale));
  return out;
}

inline std::vector<float> random_float(core::Rng& rng, std::size_t n, double scale) {
  std::vector<float> out(n);
  for (auto& x : out) x = static_cast<float>(rng.normal() * scale);
  return out;
}

// k distinct experts per (head, token), uniformly drawn.
inline std::vector<std::int32_t> random_topk(core::Rng& rng, std::int64_t heads, std::int64_t tokens, std::int64_t k,
                                             std::int64_t experts) {
  std::vector<std::int32_t> out(static_cast<std::size_t>(heads * tokens * k));
  for (std::int64_t lt = 0; lt < heads * tokens; ++lt) {
    for (std::int64_t j = 0; j < k; ++j) {
      std::int32_t e = 0;
      bool fresh = false;
      while (!fresh) {
        e = static_cast<std::int32_t>(rng.below(static_cast<std::uint64_t>(experts)));
        fresh = true;
        for (std::int64_t q = 0; q < j; ++q) fresh &= out[static_cast<std::size_t>(lt * k + q)] != e;
      }
      out[static_cast<std::size_t>(lt * k + j)] = e;
    }
  }
  return out;
}

inline double bf(Bf16 v) { return static_cast<double>(to_float(v)); }

}  // namespace hpsim::kernels::testing
