#pragma once
// Helpers for the GPU tests of the kernels: skipping without a GPU, device buffers, poisoning,
// error norms against float64 references.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <cstdint>
#include <vector>

#include <cuda_runtime_api.h>

#include "hpsim/kernels/cuda_check.h"
#include "hpsim/kernels/types.h"
#include "ref_test_util.h"

namespace hpsim::kernels::testing {

// Number of usable GPUs: 0 when the driver or device is missing (any CUDA error).
int gpu_count();

// Skips the calling test unless n GPUs are present (never exits the process).
#define HPSIM_REQUIRE_GPUS(n)                                                                    \
  do {                                                                                           \
    const int hpsim_have_gpus_ = ::hpsim::kernels::testing::gpu_count();                         \
    if (hpsim_have_gpus_ < (n)) GTEST_SKIP() << "needs " << (n) << " GPU(s), found " << hpsim_have_gpus_; \
  } while (0)

template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t n) : size_(n) {
    if (n > 0) HPSIM_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&ptr_), n * sizeof(T)));
  }
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) { upload(host); }
  ~DeviceBuffer() {
    if (ptr_ != nullptr) HPSIM_CUDA_CHECK(cudaFree(ptr_));
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), size_(o.size_) {
    o.ptr_ = nullptr;
    o.size_ = 0;
  }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(ptr_, o.ptr_);
    std::swap(size_, o.size_);
    return *this;
  }

  T* get() const { return ptr_; }
  std::size_t size() const { return size_; }
  void upload(const std::vector<T>& host) {
    HPSIM_ASSERT(host.size() <= size_, "upload of {} into {}", host.size(), size_);
    if (!host.empty()) HPSIM_CUDA_CHECK(cudaMemcpy(ptr_, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
  }
  std::vector<T> download() const {
    std::vector<T> host(size_);
    HPSIM_CUDA_CHECK(cudaDeviceSynchronize());
    if (size_ > 0) HPSIM_CUDA_CHECK(cudaMemcpy(host.data(), ptr_, size_ * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }
  // Fills every byte (0xff: NaN for float and bf16, -1 for int32).
  void poison(unsigned char byte = 0xff) {
    if (size_ > 0) HPSIM_CUDA_CHECK(cudaMemset(ptr_, byte, size_ * sizeof(T)));
  }

 private:
  T* ptr_ = nullptr;
  std::size_t size_ = 0;
};

// A workspace of at least `bytes` (one byte when zero, so that the pointer is valid).
inline DeviceBuffer<char> workspace(std::int64_t bytes) {
  return DeviceBuffer<char>(static_cast<std::size_t>(bytes > 0 ? bytes : 1));
}

inline void sync() { HPSIM_CUDA_CHECK(cudaDeviceSynchronize()); }

std::vector<double> to_double(const std::vector<Bf16>& v);
std::vector<double> to_double(const std::vector<float>& v);

// ||got - ref|| / ||ref|| over the first `count` elements (all when count < 0); NaN in got -> inf.
double rel_l2(const std::vector<double>& got, const std::vector<double>& ref, std::int64_t count = -1);
std::int64_t count_nonfinite(const std::vector<double>& v, std::int64_t count = -1);

template <typename T>
bool bitwise_equal(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

}  // namespace hpsim::kernels::testing
