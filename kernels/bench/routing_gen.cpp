#include "routing_gen.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "hpsim/core/rng.h"

namespace hpsim::kernels::bench {

std::vector<std::int32_t> make_routing(std::int64_t heads, std::int64_t tokens, std::int64_t k, std::int64_t experts,
                                       double zipf_s, std::uint64_t seed) {
  core::Rng rng(seed);
  std::vector<std::int32_t> out(static_cast<std::size_t>(heads * tokens * k));
  std::vector<double> w(static_cast<std::size_t>(experts));
  for (std::int64_t e = 0; e < experts; ++e) w[static_cast<std::size_t>(e)] = zipf_s > 0 ? 1.0 / std::pow(static_cast<double>(e) + 1.0, zipf_s) : 1.0;
  const core::AliasTable table(w);
  std::vector<std::int32_t> order(static_cast<std::size_t>(experts));
  for (std::int64_t l = 0; l < heads; ++l) {
    std::iota(order.begin(), order.end(), 0);
    for (std::size_t i = order.size() - 1; i > 0; --i) std::swap(order[i], order[rng.below(i + 1)]);
    for (std::int64_t t = 0; t < tokens; ++t) {
      std::int32_t* row = &out[static_cast<std::size_t>((l * tokens + t) * k)];
      for (std::int64_t j = 0; j < k; ++j) {
        bool fresh = false;
        while (!fresh) {
          const std::int32_t e = zipf_s > 0 ? order[static_cast<std::size_t>(table.draw(rng))]
                                            : static_cast<std::int32_t>(rng.below(static_cast<std::uint64_t>(experts)));
          fresh = std::find(row, row + j, e) == row + j;
          row[j] = e;
        }
      }
    }
  }
  return out;
}

std::vector<float> make_gates(std::int64_t heads, std::int64_t tokens, std::int64_t k, std::uint64_t seed) {
  core::Rng rng(seed);
  std::vector<float> g(static_cast<std::size_t>(heads * tokens * k));
  for (std::int64_t lt = 0; lt < heads * tokens; ++lt) {
    double z = 0;
    for (std::int64_t j = 0; j < k; ++j) z += (g[static_cast<std::size_t>(lt * k + j)] = static_cast<float>(rng.uniform() + 0.05));
    for (std::int64_t j = 0; j < k; ++j) g[static_cast<std::size_t>(lt * k + j)] = static_cast<float>(g[static_cast<std::size_t>(lt * k + j)] / z);
  }
  return g;
}

}  // namespace hpsim::kernels::bench
