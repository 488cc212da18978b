#pragma once
// CUDA error handling (CONVENTIONS.md "Errors"): HPSIM_CUDA_TRY in library code returns an Error
// with the statement, the device and CUDA's error string; HPSIM_CUDA_CHECK aborts with the same
// message where nothing can be returned (tests, destructors). Needs the CUDA runtime headers.

#include <cuda_runtime_api.h>

#include "hpsim/core/error.h"

namespace hpsim::kernels {

core::Error cuda_error(cudaError_t result, const char* statement, const char* file, int line);
[[noreturn]] void cuda_check_failed(cudaError_t result, const char* statement, const char* file, int line);

}  // namespace hpsim::kernels

#define HPSIM_CUDA_TRY(expr)                                                                     \
  do {                                                                                           \
    const cudaError_t hpsim_cuda_result_ = (expr);                                               \
    if (hpsim_cuda_result_ != cudaSuccess)                                                       \
      return ::hpsim::kernels::cuda_error(hpsim_cuda_result_, #expr, __FILE__, __LINE__);        \
  } while (0)

#define HPSIM_CUDA_CHECK(expr)                                                                   \
  do {                                                                                           \
    const cudaError_t hpsim_cuda_result_ = (expr);                                               \
    if (hpsim_cuda_result_ != cudaSuccess)                                                       \
      ::hpsim::kernels::cuda_check_failed(hpsim_cuda_result_, #expr, __FILE__, __LINE__);        \
  } while (0)

// After every kernel launch: the launch's own error (bad configuration, too much shared memory).
#define HPSIM_CUDA_TRY_LAUNCH(kernel_name)                                                       \
  do {                                                                                           \
    const cudaError_t hpsim_cuda_result_ = cudaGetLastError();                                   \
    if (hpsim_cuda_result_ != cudaSuccess)                                                       \
      return ::hpsim::kernels::cuda_error(hpsim_cuda_result_, "launch of " kernel_name, __FILE__, __LINE__); \
  } while (0)
