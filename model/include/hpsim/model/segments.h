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
inline constexpr std::int64_t kHpMlpWgradItemRows = 2048;  // HP weight-gradient items at most (an empty segment
                                                           // gets one; fewer rows at small row counts:
                                                           // hp_wgrad_item_rows)
inline constexpr std::int64_t kEpMlpTileRows = 128;        // EP grouped GEMM row tiles (forward and dX)
inline constexpr std::int64_t kEpMlpWgradItemRows = 1024;  // EP weight-gradient items at most
inline constexpr std::int64_t kMlpWgradTileRows = 64;      // rows per step of the weight-gradient products (HP and EP)

// The tile heights whose item counts SegmentTiles keeps.
inline constexpr std::array<std::int64_t, 4> kSegmentTileRows = {kMlpWgradTileRows, kEpMlpTileRows, kHpMlpFwdItemRows,
                                                                 kHpMlpWgradItemRows};

// Rows per HP weight-gradient item for a rank of `rows` grouped rows and f = `hidden`
// (limits::mlp_wgrad_rows of the kernels): half of one SM's share (132 SMs) of the item-by-128-
// hidden-unit rows, rounded up to 64-row tiles, within [256, kHpMlpWgradItemRows].
std::int64_t hp_wgrad_item_rows(std::int64_t rows, std::int64_t hidden);
// The weight-gradient item rows of `strategy` for a rank of `rows` grouped rows (HP) and f =
// `hidden`: hp_wgrad_item_rows for HP, kEpMlpWgradItemRows for EP.
std::int64_t wgrad_item_rows(core::Strategy strategy, std::int64_t rows, std::int64_t hidden);

// One rank's segments (expected values in expectation mode, exact under sampled or recorded routing).
struct SegmentTiles {
  double segments = 0;  // segments the rank holds: E/W (EP), (H/W) E (HP)
  double nonempty = 0;  // segments with at least one row
  // Weight-gradient items of the segments too long for one item: sum over segments with c > R of
  // ceil(c / R), R the weight-gradient item rows given to segment_tiles. Each writes fp32 partial
  // sums of its expert's two gradients, which a second kernel reads and adds in item order.
  double split_items = 0;
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

// E[ceil(c / T) 1(c > T)] for c ~ Binomial(trials, p): the items of a segment cut into several,
// sum over j >= 1 of P(c > j T) plus P(c > T), with the approximation of expected_items.
double expected_split_items(double trials, double p, std::int64_t tile_rows);

// Per rank (index = rank), the segments its grouped expert kernels process. Expectation mode
// (workload.is_expected) takes each segment's count as Binomial(W n, pi_e) (W n tokens, or
// sub-tokens of one head, each picking expert e with probability pi_e); otherwise the counts are
// the workload's own. `wgrad_item_rows` > 0 counts split_items for weight-gradient items of that
// many rows (0: none counted).
std::vector<SegmentTiles> segment_tiles(const RoutingWorkload& workload, std::int64_t wgrad_item_rows = 0);

}  // namespace hpsim::model
