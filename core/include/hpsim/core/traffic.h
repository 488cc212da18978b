#pragma once
// TrafficMatrix: W x W bytes of one phase; entry (src, dst) is what rank src sends to rank dst.
// The diagonal holds what stays on the rank (not sent over any link).

#include <cstdint>
#include <string>
#include <vector>

namespace hpsim::core {

struct TrafficMatrix {
  std::string phase;  // "dispatch", "combine", "dispatch_bwd", "combine_bwd", "metadata", ...
  std::int64_t num_ranks = 0;
  std::vector<double> bytes;  // row-major num_ranks x num_ranks

  TrafficMatrix() = default;
  TrafficMatrix(std::string phase_name, std::int64_t ranks);

  double& at(std::int64_t src, std::int64_t dst) { return bytes[static_cast<std::size_t>(src * num_ranks + dst)]; }
  double at(std::int64_t src, std::int64_t dst) const {
    return bytes[static_cast<std::size_t>(src * num_ranks + dst)];
  }

  double sent(std::int64_t rank) const;      // off-diagonal row sum
  double received(std::int64_t rank) const;  // off-diagonal column sum
  double total_sent() const;                 // off-diagonal sum
  double max_sent() const;
  double max_received() const;
  // max over ranks / mean over ranks; 1 when nothing moves.
  double send_imbalance() const;
  double receive_imbalance() const;
};

}  // namespace hpsim::core
