#pragma once
// Checks each kernel family against its CPU twin on fresh random data before any case of it is
// timed (at a reduced token count: the float64 twins are far too slow at the benchmark shapes).
// Each returns "" when the kernel passes, else what failed. Tolerances as in tests/kernels.
#include <cstdint>
#include <string>

#include "hpsim/kernels/expert_mlp.h"
#include "hpsim/kernels/router.h"

namespace hpsim::kernels::bench {

std::string verify_router_fwd(std::int64_t L, std::int64_t N, std::int64_t dim, std::int64_t E, std::int64_t k, RouterAlgo algo);
std::string verify_router_bwd(std::int64_t L, std::int64_t N, std::int64_t dim, std::int64_t E, std::int64_t k);
std::string verify_grouping(std::int64_t L, std::int64_t N, std::int64_t k, std::int64_t E, double zipf_s);
std::string verify_mlp(std::int64_t L, std::int64_t N, std::int64_t k, std::int64_t E, std::int64_t f, double zipf_s, bool backward,
                       ExpertMlpAlgo algo);
std::string verify_combine(std::int64_t L, std::int64_t N, std::int64_t k, std::int64_t width);
std::string verify_permute(std::int64_t n, std::int64_t d, std::int64_t k, std::int64_t E, std::int64_t W);
std::string verify_grouped_mlp(std::int64_t E, std::int64_t rows, std::int64_t d, std::int64_t f, bool backward);
std::string verify_dense(std::int64_t rows, std::int64_t in, std::int64_t out);

}  // namespace hpsim::kernels::bench
