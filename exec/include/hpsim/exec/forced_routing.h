#pragma once
// Forced routing: expert choices drawn from a scenario's workload instead of a trained router,
// so that skew can be dialled in (uniform, Zipf with skew s, recorded per-expert counts).
// Each token (EP) or sub-token of one head (HP) gets k DISTINCT experts; draws are seeded and
// reproducible, and do not depend on the GPU count.

#include <cstdint>
#include <vector>

#include "hpsim/core/error.h"
#include "hpsim/core/scenario.h"

namespace hpsim::exec {

struct ForcedRouting {
  std::int64_t num_rows = 0;     // tokens or sub-tokens
  std::int64_t top_k = 0;
  std::int64_t num_experts = 0;
  std::vector<std::int32_t> experts;  // num_rows x top_k, distinct within a row
  std::vector<float> gates;           // num_rows x top_k, positive, each row sums to 1
};

// Per-expert popularity weights of the workload (index = expert id before ownership mapping):
// uniform -> all 1; zipf -> 1/(i+1)^s, with expert i placed per the ownership rule so that
// "contiguous" puts the hottest experts on rank 0 and "strided" spreads them.
std::vector<double> expert_weights(const core::WorkloadSpec& workload, std::int64_t num_experts,
                                   std::int64_t num_ranks);

// Draws `rows` rows of k distinct experts from `weights` (successive sampling without
// replacement) with gates from a softmax of seeded normal logits. `stream` separates the draws
// of different ranks and heads under one seed.
ForcedRouting draw_routing(const std::vector<double>& weights, std::int64_t rows, std::int64_t top_k,
                           std::uint64_t seed, std::uint64_t stream);

// The `stream` of the rows source rank `src` routes: EP's tokens, or HP's sub-tokens of head
// `head`. The layers draw with these, and so does whatever counts their routing on the host.
inline std::uint64_t ep_routing_stream(std::int64_t src) { return static_cast<std::uint64_t>(src); }
inline std::uint64_t hp_routing_stream(std::int64_t head, std::int64_t src) {
  return static_cast<std::uint64_t>(head * 65536 + src);
}

}  // namespace hpsim::exec
