#pragma once
// Segments and row tiles of the grouped expert kernels (docs/model.md, "Segments and row tiles").
// A segment is the run of grouped rows of one expert on one rank: one (head, expert) pair for HP,
// one local expert for EP. The kernels cut each segment into work items of at most T rows; an item
// streams its expert's weights and computes T rows whatever it holds (the rest are zero padding),
// and a segment without rows costs nothing. So what a grouped expert MLP costs depends on how many
// segments are non-empty and on E[ceil(c / T)] per segment, not only on the rows' total.
// Symbols: n, E, k, W as in DESIGN.md section 2; c = rows of one segment.

#include <array>
#include <cstdint>
#include <vector>

#include "hpsim/model/workload.h"

namespace hpsim::model {

// Row tiles of the kernels (kernels/src/kernel_limits.h and the kernels' launchers).
inline constexpr std::int64_t kHpMlpFwdItemRows = 192;     // HP wgmma forward: three 64-row warpgroups per item
inline constexpr std::int64_t kHpMlpDxItemRows = 128;      // HP backward dX kernel
inline constexpr std::int64_t kHpMlpWgradItemRows = 2048;  // HP weight-gradient items at most (an empty segment
                                                           // gets one; fewer rows at small row counts:
                                                           // limits::mlp_wgrad_rows; not in the time)
inline constexpr std::int64_t kEpMlpTileRows = 128;        // EP grouped GEMM row tiles (forward and dX)
inline constexpr std::int64_t kMlpWgradTileRows = 64;      // rows per step of the weight-gradient products (HP and EP)

// The tile heights whose item counts SegmentTiles keeps.
inline constexpr std::array<std::int64_t, 4> kSegmentTileRows = {kMlpWgradTileRows, kEpMlpTileRows, kHpMlpFwdItemRows,
                                                                 kHpMlpWgradItemRows};

// One rank's segments (expected values in expectation mode, exact under sampled or recorded routing).
struct SegmentTiles {
  double segments = 0;  // segments the rank holds: E/W (EP), (H/W) E (HP)
  double nonempty = 0;  // segments with at least one row
  // Work items sum over segments of ceil(c / T), for each T of kSegmentTileRows in order.
  std::array<double, kSegmentTileRows.size()> items{};

  double items_of(std::int64_t tile_rows) const;
  // Rows computed once every item is padded to T rows: T * items_of(T).
  double padded_rows(std::int64_t tile_rows) const { return static_cast<double>(tile_rows) * items_of(tile_rows); }
};

// E[ceil(c / T)] for c ~ Binomial(trials, p): sum over j >= 0 of P(c > j T), with P(c > 0) =
// 1 - (1 - p)^trials exact and the terms j >= 1 from the normal approximation with continuity
// correction (terms more than 8 standard deviations from the mean taken as 1 or 0).
double expected_items(double trials, double p, std::int64_t tile_rows);

// Per rank (index = rank), the segments its grouped expert kernels process. Expectation mode
// (workload.is_expected) takes each segment's count as Binomial(W n, pi_e) (W n tokens, or
// sub-tokens of one head, each picking expert e with probability pi_e); otherwise the counts are
// the workload's own.
std::vector<SegmentTiles> segment_tiles(const RoutingWorkload& workload);

}  // namespace hpsim::model
