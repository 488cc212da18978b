#include "hpsim/exec/device_arena.h"

#include <cuda_runtime.h>

namespace hpsim::exec {

DeviceArena::~DeviceArena() {
  if (base_ != nullptr) {
    cudaSetDevice(device_);
    cudaFree(base_);
  }
}

core::Status DeviceArena::reserve(std::int64_t capacity_bytes, int device) {
  HPSIM_ASSERT(base_ == nullptr, "DeviceArena::reserve called twice");
  if (cudaError_t e = cudaSetDevice(device); e != cudaSuccess) {
    return core::Error{core::ErrorCode::kCuda, fmt::format("cudaSetDevice({}): {}", device, cudaGetErrorString(e))};
  }
  std::size_t free_bytes = 0, total_bytes = 0;
  cudaMemGetInfo(&free_bytes, &total_bytes);
  if (cudaError_t e = cudaMalloc(&base_, static_cast<std::size_t>(capacity_bytes)); e != cudaSuccess) {
    cudaGetLastError();
    base_ = nullptr;
    return core::Error{core::ErrorCode::kOutOfMemory,
                       fmt::format("device {}: cannot reserve {:.2f} GB for the layer ({:.2f} GB free of {:.2f} GB)",
                                   device, static_cast<double>(capacity_bytes) / 1e9,
                                   static_cast<double>(free_bytes) / 1e9, static_cast<double>(total_bytes) / 1e9)};
  }
  device_ = device;
  capacity_ = capacity_bytes;
  return core::Status::ok();
}

core::Expected<void*> DeviceArena::allocate(std::int64_t bytes, MemTag tag, const std::string& what) {
  HPSIM_ASSERT(bytes >= 0, "negative allocation for {}", what);
  const std::int64_t aligned = (bytes + 255) / 256 * 256;
  if (offset_ + aligned > capacity_) {
    return core::Error{core::ErrorCode::kOutOfMemory,
                       fmt::format("device {}: {} needs {:.3f} GB but only {:.3f} GB of the {:.3f} GB arena are left",
                                   device_, what, static_cast<double>(bytes) / 1e9,
                                   static_cast<double>(capacity_ - offset_) / 1e9, static_cast<double>(capacity_) / 1e9)};
  }
  void* p = static_cast<std::uint8_t*>(base_) + offset_;
  offset_ += aligned;
  in_use_[static_cast<std::size_t>(tag)] += aligned;
  if (offset_ > peak_total_) {
    peak_total_ = offset_;
    at_peak_ = in_use_;
  }
  return p;
}

void DeviceArena::release_to(const Mark& m) {
  HPSIM_ASSERT(m.offset <= offset_, "release_to a mark above the top");
  offset_ = m.offset;
  in_use_ = m.in_use;
}

void DeviceArena::reset_peak() {
  peak_total_ = offset_;
  at_peak_ = in_use_;
}

core::RankMemory DeviceArena::peak_by_part(std::int64_t rank) const {
  core::RankMemory r;
  r.rank = rank;
  auto part = [&](MemTag t) { return static_cast<double>(at_peak_[static_cast<std::size_t>(t)]); };
  r.weights = part(MemTag::kWeights);
  r.gradients = part(MemTag::kGradients);
  r.optimizer = part(MemTag::kOptimizer);
  r.activations = part(MemTag::kActivations);
  r.comm_buffers = part(MemTag::kCommBuffers);
  r.workspace = part(MemTag::kWorkspace);
  return r;
}

}  // namespace hpsim::exec
