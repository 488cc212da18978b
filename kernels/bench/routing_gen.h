#pragma once
// Host-side routings for the benchmarks: k distinct experts per (head, token), uniform or skewed
// (Zipf weights 1/(rank+1)^s over the experts, a fixed random order of ranks per head).
#include <cstdint>
#include <vector>

namespace hpsim::kernels::bench {

std::vector<std::int32_t> make_routing(std::int64_t heads, std::int64_t tokens, std::int64_t k, std::int64_t experts,
                                       double zipf_s, std::uint64_t seed);

// Softmax-like gates (positive, summing to one per token).
std::vector<float> make_gates(std::int64_t heads, std::int64_t tokens, std::int64_t k, std::uint64_t seed);

}  // namespace hpsim::kernels::bench
