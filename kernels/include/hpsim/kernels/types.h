#pragma once
// Element types and stream handle shared by every kernel family's launcher header and by the CPU
// reference twins. Plain C++: no CUDA header is needed to include this (the twins build without
// CUDA). On the device a Bf16 is read as __nv_bfloat16 (same size and bit layout).

#include <cstdint>
#include <cstring>

struct CUstream_st;

namespace hpsim::kernels {

// A bfloat16 value: the upper 16 bits of an IEEE float32.
struct Bf16 {
  std::uint16_t bits = 0;
};
static_assert(sizeof(Bf16) == 2);

// float32 -> bf16, round to nearest even; NaN stays NaN.
inline Bf16 to_bf16(float value) {
  std::uint32_t u = 0;
  std::memcpy(&u, &value, sizeof(u));
  if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu) != 0) return Bf16{static_cast<std::uint16_t>((u >> 16) | 0x40u)};
  u += 0x7fffu + ((u >> 16) & 1u);
  return Bf16{static_cast<std::uint16_t>(u >> 16)};
}

inline float to_float(Bf16 value) {
  const std::uint32_t u = static_cast<std::uint32_t>(value.bits) << 16;
  float f = 0;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}

// The same type as cudaStream_t, named without including CUDA headers (CUstream_st is declared
// at global scope, as the CUDA headers declare it).
using Stream = ::CUstream_st*;

// Largest top-k the routing kernels accept.
inline constexpr std::int64_t kMaxTopK = 8;

}  // namespace hpsim::kernels
