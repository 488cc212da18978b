#pragma once
// Seeded, platform-independent random numbers (xoshiro256** seeded by splitmix64). The standard
// library's distributions differ between implementations, so hpsim draws its own.

#include <cstdint>
#include <vector>

namespace hpsim::core {

class Rng {
 public:
  explicit Rng(std::uint64_t seed);
  std::uint64_t next_u64();
  double uniform();                       // [0, 1)
  std::uint64_t below(std::uint64_t n);   // [0, n), unbiased
  double normal();                        // standard normal (Box-Muller)

 private:
  std::uint64_t s_[4];
};

// Walker alias table: O(1) draws from a discrete distribution with the given weights.
class AliasTable {
 public:
  explicit AliasTable(const std::vector<double>& weights);
  std::int64_t draw(Rng& rng) const;
  std::int64_t size() const { return static_cast<std::int64_t>(prob_.size()); }

 private:
  std::vector<double> prob_;
  std::vector<std::int64_t> alias_;
};

}  // namespace hpsim::core
