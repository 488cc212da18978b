#pragma once
// MemoryReport: per-rank peak device memory over one layer's forward and backward, by part.

#include <cstdint>
#include <vector>

namespace hpsim::core {

struct RankMemory {
  std::int64_t rank = 0;
  double weights = 0;       // bytes
  double gradients = 0;
  double optimizer = 0;
  double activations = 0;   // saved for backward, at the peak
  double comm_buffers = 0;  // send/receive buffers as an implementation must size them
  double workspace = 0;     // transient kernel workspace at the peak

  double peak() const { return weights + gradients + optimizer + activations + comm_buffers + workspace; }
};

struct MemoryReport {
  double capacity_bytes = 0;  // the GPU's memory
  std::vector<RankMemory> ranks;

  double max_peak() const;
  double mean_peak() const;
  std::int64_t num_over_capacity() const;
};

}  // namespace hpsim::core
