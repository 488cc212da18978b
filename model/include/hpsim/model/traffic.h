#pragma once
// Bytes between ranks of one MoE layer, per phase (DESIGN.md section 2). Symbols: n tokens per
// rank, d model width, H heads, h head width, E experts, k top-k, W ranks, s bytes per element.
//
//  EP dispatch (src -> dst) = (slots of src's n tokens routed to experts dst owns) * d * s
//     combine = transpose of dispatch (each copy goes back to its token's rank)
//     combine_bwd = dispatch pattern (gradients of the combine's output go to the experts)
//     dispatch_bwd = combine pattern (gradients of the expert inputs go back to the tokens)
//     metadata (src -> dst) = (E / W) counts * kMetadataCountBytes, before the dispatch
//  HP dispatch (src -> dst) = n * (H / W) * h * s for every pair, the three others the same.
// Entries on the diagonal stay on the rank; TrafficMatrix::sent/received leave them out.

#include <cstdint>
#include <string_view>
#include <vector>

#include "hpsim/core/scenario.h"
#include "hpsim/core/traffic.h"
#include "hpsim/model/workload.h"

namespace hpsim::model {

// One count of EP's metadata exchange: int32.
inline constexpr double kMetadataCountBytes = 4;

// Phase names, in the order they run in a forward + backward layer.
inline constexpr std::string_view kPhaseMetadata = "metadata";
inline constexpr std::string_view kPhaseDispatch = "dispatch";
inline constexpr std::string_view kPhaseCombine = "combine";
inline constexpr std::string_view kPhaseCombineBwd = "combine_bwd";
inline constexpr std::string_view kPhaseDispatchBwd = "dispatch_bwd";

struct LayerTraffic {
  // EP: metadata, dispatch, combine, combine_bwd, dispatch_bwd; HP: the same without metadata.
  std::vector<core::TrafficMatrix> phases;
  double metadata_bytes_per_rank = 0;  // off-diagonal bytes each rank sends in the metadata exchange

  const core::TrafficMatrix* find(std::string_view phase) const;
};

// Per-rank off-diagonal totals of a matrix in one pass (TrafficMatrix::sent/received walk a row or
// a column per call; hot loops over all ranks use this instead).
struct RankBytes {
  std::vector<double> sent;      // [rank]
  std::vector<double> received;  // [rank]
  double total = 0;              // all off-diagonal bytes
  double max_sent = 0;
  double max_received = 0;
};
RankBytes rank_bytes(const core::TrafficMatrix& m);

core::TrafficMatrix transpose(const core::TrafficMatrix& m, std::string_view phase);

// EP dispatch from a routing workload: slots(src, dst) * d * s.
core::TrafficMatrix ep_dispatch_matrix(const RoutingWorkload& workload, std::int64_t d, std::int64_t s);
// EP metadata: every (src, dst) carries E / W counts.
core::TrafficMatrix ep_metadata_matrix(std::int64_t num_ranks, std::int64_t num_experts);
// HP dispatch: n * (H / W) * h * s for every (src, dst).
core::TrafficMatrix hp_dispatch_matrix(std::int64_t num_ranks, std::int64_t n, std::int64_t H, std::int64_t h,
                                       std::int64_t s);

// All phases of the strategy of `workload`.
LayerTraffic layer_traffic(const core::ModelSpec& model, const RoutingWorkload& workload);

// Uniform routing: HP dispatch bytes / EP dispatch bytes per rank = H * h / (k * d) (the (W-1)/W
// off-diagonal factor is the same on both sides and cancels).
double uniform_hp_ep_dispatch_ratio(const core::ModelSpec& model);

}  // namespace hpsim::model
