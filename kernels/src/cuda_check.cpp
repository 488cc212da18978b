#include "hpsim/kernels/cuda_check.h"

#include <cstdio>
#include <cstdlib>

#include <fmt/format.h>

namespace hpsim::kernels {
namespace {
std::string describe(cudaError_t result, const char* statement, const char* file, int line) {
  int device = -1;
  if (cudaGetDevice(&device) != cudaSuccess) device = -1;
  return fmt::format("{} failed on device {}: {} ({}) at {}:{}", statement, device, cudaGetErrorString(result),
                     cudaGetErrorName(result), file, line);
}
}  // namespace

core::Error cuda_error(cudaError_t result, const char* statement, const char* file, int line) {
  const auto code = result == cudaErrorMemoryAllocation ? core::ErrorCode::kOutOfMemory
                    : (result == cudaErrorNoDevice || result == cudaErrorInsufficientDriver) ? core::ErrorCode::kNoDevice
                                                                                                : core::ErrorCode::kCuda;
  return core::Error{code, describe(result, statement, file, line)};
}

void cuda_check_failed(cudaError_t result, const char* statement, const char* file, int line) {
  std::fprintf(stderr, "hpsim: %s\n", describe(result, statement, file, line).c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace hpsim::kernels
