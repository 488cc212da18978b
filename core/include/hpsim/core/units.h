#pragma once
// Units. Decimal prefixes for bandwidth and sizes (GB = 1e9 bytes, as datasheets and
// nccl-tests use them); binary ones only where named (GiB).

#include <cstdint>

namespace hpsim::core {

inline constexpr double kKB = 1e3;
inline constexpr double kMB = 1e6;
inline constexpr double kGB = 1e9;
inline constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
inline constexpr double kNsPerUs = 1e3;
inline constexpr double kNsPerS = 1e9;
inline constexpr double kUsPerS = 1e6;

// Seconds for `bytes` at `gbps` GB/s.
inline constexpr double transfer_us(double bytes, double gbps) { return gbps > 0 ? bytes / (gbps * kGB) * kUsPerS : 0.0; }

}  // namespace hpsim::core
