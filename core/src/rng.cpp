#include "hpsim/core/rng.h"

#include <cmath>
#include <numbers>

#include "hpsim/core/error.h"

namespace hpsim::core {
namespace {

std::uint64_t splitmix64(std::uint64_t& x) {
  std::uint64_t z = (x += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

Rng::Rng(std::uint64_t seed) {
  for (auto& s : s_) s = splitmix64(seed);
}

std::uint64_t Rng::next_u64() {
  const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Rng::uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

std::uint64_t Rng::below(std::uint64_t n) {
  HPSIM_ASSERT(n > 0, "Rng::below(0)");
  const std::uint64_t limit = -n % n;  // 2^64 mod n: reject the low remainder for no bias
  while (true) {
    const std::uint64_t x = next_u64();
    if (x >= limit) return x % n;
  }
}

double Rng::normal() {
  double u1 = uniform();
  while (u1 <= 0.0) u1 = uniform();
  const double u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

AliasTable::AliasTable(const std::vector<double>& weights) {
  const std::size_t n = weights.size();
  HPSIM_ASSERT(n > 0, "AliasTable needs at least one weight");
  double total = 0;
  for (double w : weights) {
    HPSIM_ASSERT(w >= 0 && std::isfinite(w), "AliasTable weight must be finite and >= 0, got {}", w);
    total += w;
  }
  HPSIM_ASSERT(total > 0, "AliasTable weights sum to zero");
  prob_.assign(n, 0.0);
  alias_.assign(n, 0);
  std::vector<double> scaled(n);
  std::vector<std::int64_t> small, large;
  for (std::size_t i = 0; i < n; ++i) {
    scaled[i] = weights[i] * static_cast<double>(n) / total;
    (scaled[i] < 1.0 ? small : large).push_back(static_cast<std::int64_t>(i));
  }
  while (!small.empty() && !large.empty()) {
    const auto s = small.back();
    small.pop_back();
    const auto l = large.back();
    large.pop_back();
    prob_[static_cast<std::size_t>(s)] = scaled[static_cast<std::size_t>(s)];
    alias_[static_cast<std::size_t>(s)] = l;
    scaled[static_cast<std::size_t>(l)] += scaled[static_cast<std::size_t>(s)] - 1.0;
    (scaled[static_cast<std::size_t>(l)] < 1.0 ? small : large).push_back(l);
  }
  for (auto i : large) prob_[static_cast<std::size_t>(i)] = 1.0;
  for (auto i : small) prob_[static_cast<std::size_t>(i)] = 1.0;  // rounding leftovers
}

std::int64_t AliasTable::draw(Rng& rng) const {
  const auto i = static_cast<std::size_t>(rng.below(prob_.size()));
  return rng.uniform() < prob_[i] ? static_cast<std::int64_t>(i) : alias_[i];
}

}  // namespace hpsim::core
