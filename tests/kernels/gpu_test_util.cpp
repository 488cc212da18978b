#include "gpu_test_util.h"

#include <cstring>

namespace hpsim::kernels::testing {

int gpu_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky-free error so later calls start clean
    return 0;
  }
  return n;
}

std::vector<double> to_double(const std::vector<Bf16>& v) {
  std::vector<double> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = static_cast<double>(to_float(v[i]));
  return out;
}

std::vector<double> to_double(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

double rel_l2(const std::vector<double>& got, const std::vector<double>& ref, std::int64_t count) {
  const std::size_t n = count < 0 ? ref.size() : static_cast<std::size_t>(count);
  HPSIM_ASSERT(got.size() >= n && ref.size() >= n, "rel_l2 sizes {} {} {}", got.size(), ref.size(), n);
  double num = 0, den = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    num += (got[i] - ref[i]) * (got[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

std::int64_t count_nonfinite(const std::vector<double>& v, std::int64_t count) {
  const std::size_t n = count < 0 ? v.size() : static_cast<std::size_t>(count);
  std::int64_t bad = 0;
  for (std::size_t i = 0; i < n; ++i) bad += std::isfinite(v[i]) ? 0 : 1;
  return bad;
}

}  // namespace hpsim::kernels::testing
