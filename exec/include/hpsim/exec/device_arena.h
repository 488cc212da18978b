#pragma once
// DeviceArena: one device allocation carved into tagged buffers, so the executor knows exactly
// what each part of the layer holds (weights, gradients, activations, communication buffers,
// workspace) and can report the measured per-rank peak as a core::RankMemory. Allocation is a
// bump pointer with 256-byte alignment; release() of the most recent allocations supports the
// stack-like lifetimes of a layer's transient buffers. The peak is tracked per tag at the moment
// the total peaks.

#include <array>
#include <cstdint>
#include <string>

#include "hpsim/core/error.h"
#include "hpsim/core/memory_report.h"

namespace hpsim::exec {

enum class MemTag { kWeights, kGradients, kOptimizer, kActivations, kCommBuffers, kWorkspace };
inline constexpr int kNumMemTags = 6;

class DeviceArena {
 public:
  DeviceArena() = default;
  ~DeviceArena();
  DeviceArena(const DeviceArena&) = delete;
  DeviceArena& operator=(const DeviceArena&) = delete;

  // Reserves `capacity_bytes` on the current device. Errors name the device and what is free.
  core::Status reserve(std::int64_t capacity_bytes, int device);

  // A buffer of `bytes` tagged `tag`; kOutOfMemory (naming `what`) when the arena is full.
  core::Expected<void*> allocate(std::int64_t bytes, MemTag tag, const std::string& what);

  // Marks the current top; release_to() frees everything allocated after the mark.
  struct Mark {
    std::int64_t offset;
    std::array<std::int64_t, kNumMemTags> in_use;
  };
  Mark mark() const { return {offset_, in_use_}; }
  void release_to(const Mark& m);

  std::int64_t in_use() const { return offset_; }
  std::int64_t peak() const { return peak_total_; }
  core::RankMemory peak_by_part(std::int64_t rank) const;
  void reset_peak();

 private:
  void* base_ = nullptr;
  int device_ = -1;
  std::int64_t capacity_ = 0;
  std::int64_t offset_ = 0;
  std::array<std::int64_t, kNumMemTags> in_use_{};
  std::int64_t peak_total_ = 0;
  std::array<std::int64_t, kNumMemTags> at_peak_{};
};

}  // namespace hpsim::exec
