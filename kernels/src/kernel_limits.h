#pragma once
// Tile sizes and limits shared by the launchers (.cu) and the shape/workspace rules (shapes.cpp),
// so that workspace_bytes() always matches what the kernels use. Private to the kernels library.

#include <cstdint>

namespace hpsim::kernels::limits {

inline constexpr std::int64_t kAlign = 256;                // workspace sub-buffer alignment
inline constexpr std::int64_t kSms = 132;                   // the SMs of an H100/H200: rules that must not depend on
                                                            // the device the kernels run on (so neither do results)

// Grouping: pairs per counting chunk and the largest E (8 warps x E counters in shared memory).
inline constexpr std::int64_t kGroupChunk = 4096;
inline constexpr std::int64_t kGroupMaxExperts = 4096;

// Router.
inline constexpr std::int64_t kRouterTokens = 64;           // tokens per block (both algorithms)
inline constexpr std::int64_t kRouterBwdRows = 256;         // rows per d_weight work item
inline constexpr std::int64_t kRouterChunk = 128;           // experts per chunk (FFMA algorithm)
inline constexpr std::int64_t kRouterBlockSlots = kSms;     // FFMA: resident blocks per block-per-SM
inline constexpr std::int64_t kRouterMaxSplits = 8;

// HP expert MLP.
inline constexpr std::int64_t kMlpHeadDim = 128;            // h supported by the fused kernels
inline constexpr std::int64_t kMlpTileRows = 128;           // rows per mma.sync forward / dX block
inline constexpr std::int64_t kMlpWgmmaRows = 192;          // rows per wgmma forward block (3 warpgroups)
inline constexpr std::int64_t kMlpHiddenMultiple = 64;      // f must be a multiple of this
inline constexpr std::int64_t kMlpWgradRows = 2048;         // most rows per weight-gradient work item
inline constexpr std::int64_t kMlpWgradMinRows = 256;       // fewest (mlp_wgrad_rows)

// EP grouped GEMM.
inline constexpr std::int64_t kGemmTile = 128;              // M and N tile
inline constexpr std::int64_t kGemmTileK = 64;
inline constexpr std::int64_t kGemmWgradRows = 1024;        // rows per weight-gradient work item (one block per
                                                            // output tile walks them: a hot expert's critical path)

// Dense (cuBLAS workspace).
inline constexpr std::int64_t kDenseWorkspace = 32ll << 20;

inline constexpr std::int64_t round_up(std::int64_t x, std::int64_t m) { return (x + m - 1) / m * m; }
inline constexpr std::int64_t ceil_div(std::int64_t x, std::int64_t m) { return (x + m - 1) / m; }

// Rows per HP weight-gradient work item for `rows` grouped rows and f = `hidden`. The backward
// kernels hand out their work dynamically (the mma.sync dW kernel an item x 128 hidden units, the
// fused wgmma kernel a whole item with all f / 128 of them), so their time is about the work's
// total over the SMs unless one piece is longer than that: under skew a hot segment's items would
// keep a few SMs busy long after the others finish. So an item holds at most half of one SM's share
// of the (item x 128 hidden units) rows, rounded up to 64-row tiles, within [kMlpWgradMinRows,
// kMlpWgradRows] (shorter items mean more partial-sum slots to write and add: a quarter share
// measured slower, with the two-kernel wgmma backward). The fused kernel's item is f / 128 such
// pieces, so at f = 256 up to a whole SM's share; the bound was not measured again for it. Depends on
// the shape only, never on the routing, so the workspace bound holds; a segment of at most this
// many rows is one item. The workspace (workspace_bytes) is sized for the same `rows` the launch
// gets: it is not monotonic in rows (the tile grows in 64-row steps), so a workspace sized for
// another row bound may not do.
inline constexpr std::int64_t mlp_wgrad_rows(std::int64_t rows, std::int64_t hidden) {
  const std::int64_t units = hidden >= 128 ? hidden / 128 : 1;
  const std::int64_t half_share = round_up(ceil_div(rows * units, 2 * kSms), 64);
  return half_share < kMlpWgradMinRows ? kMlpWgradMinRows : half_share > kMlpWgradRows ? kMlpWgradRows : half_share;
}

// FFMA router: when the token blocks (kRouterTokens tokens of one head each) cannot fill the GPU,
// each block walks a share of the expert chunks (chunks_per_split of them) and a merge kernel
// picks every token's top-k from the splits' lists. The share minimises waves x chunks per block
// (waves of kRouterBlockSlots x blocks per SM, 2 for k <= 4, else 1; ties to fewer splits).
// Returns the chunks per split; the split count is ceil(chunks / chunks_per_split).
inline constexpr std::int64_t router_chunks_per_split(std::int64_t heads, std::int64_t tokens, std::int64_t experts,
                                                      std::int64_t top_k) {
  const std::int64_t blocks = heads * ceil_div(tokens, kRouterTokens), chunks = ceil_div(experts, kRouterChunk);
  const std::int64_t slots = kRouterBlockSlots * (top_k <= 4 ? 2 : 1);
  std::int64_t best = chunks, best_cost = ceil_div(blocks, slots) * chunks;
  for (std::int64_t cps = chunks - 1; cps >= 1; --cps) {
    const std::int64_t splits = ceil_div(chunks, cps);
    if (splits > kRouterMaxSplits) break;
    const std::int64_t cost = ceil_div(blocks * splits, slots) * cps;
    if (cost < best_cost) {
      best = cps;
      best_cost = cost;
    }
  }
  return best;
}
inline constexpr std::int64_t router_splits(std::int64_t heads, std::int64_t tokens, std::int64_t experts, std::int64_t top_k) {
  return ceil_div(ceil_div(experts, kRouterChunk), router_chunks_per_split(heads, tokens, experts, top_k));
}

// bf16x3 router on wgmma: units of 256 tokens of one head; when they cannot fill the GPU each unit's
// 64-expert chunks are split between blocks (at most kRouterMaxSplits, for the merge kernel),
// as many splits as fit in one wave. Returns the chunks per split.
inline constexpr std::int64_t router_wgmma_chunks_per_split(std::int64_t heads, std::int64_t tokens,
                                                            std::int64_t experts) {
  const std::int64_t units = heads * ceil_div(tokens, 256), chunks = ceil_div(experts, 64);
  if (units < 1 || chunks < 1) return chunks < 1 ? 1 : chunks;
  std::int64_t splits = units >= kSms ? 1 : kSms / units;
  splits = splits > kRouterMaxSplits ? kRouterMaxSplits : splits;
  splits = splits > chunks ? chunks : splits;
  return ceil_div(chunks, splits < 1 ? 1 : splits);
}
inline constexpr std::int64_t router_wgmma_splits(std::int64_t heads, std::int64_t tokens, std::int64_t experts) {
  return ceil_div(ceil_div(experts, 64), router_wgmma_chunks_per_split(heads, tokens, experts));
}

// bf16x3 router workspace: the weight parts, then (wgmma, split experts) every split's top-k
// (value, expert) per token.
inline constexpr std::int64_t router_bf16x3_parts_bytes(std::int64_t heads, std::int64_t experts, std::int64_t dim) {
  return round_up(3 * heads * experts * dim * 2, kAlign);
}
// Either router's split candidates: every split's top-k (value, expert) per token, none unsplit.
inline constexpr std::int64_t router_split_lists_bytes(std::int64_t heads, std::int64_t tokens, std::int64_t splits,
                                                       std::int64_t top_k) {
  return splits > 1 ? round_up(heads * tokens * splits * top_k * 8, kAlign) : 0;
}
inline constexpr std::int64_t router_wgmma_cand_bytes(std::int64_t heads, std::int64_t tokens, std::int64_t experts,
                                                      std::int64_t top_k) {
  return router_split_lists_bytes(heads, tokens, router_wgmma_splits(heads, tokens, experts), top_k);
}

// A segment schedule (schedule.cuh): work items of at most `tile_rows` rows per segment.
//   [counters: 5 x int32, padded to kAlign][items: max_items x 16 bytes][slots: segments x int2]
//   [split: max_split x int32]
inline constexpr std::int64_t schedule_max_items(std::int64_t rows, std::int64_t segments, std::int64_t tile_rows) {
  return ceil_div(rows, tile_rows) + segments;
}
inline constexpr std::int64_t schedule_max_slots(std::int64_t rows, std::int64_t tile_rows) {
  return 2 * ceil_div(rows, tile_rows) + 1;
}
// Segments cut into several items: each has more than tile_rows rows.
inline constexpr std::int64_t schedule_max_split(std::int64_t rows, std::int64_t segments, std::int64_t tile_rows) {
  const std::int64_t by_rows = rows / (tile_rows + 1);
  return by_rows < segments ? by_rows : segments;
}
inline constexpr std::int64_t schedule_bytes(std::int64_t rows, std::int64_t segments, std::int64_t tile_rows) {
  return kAlign + round_up(schedule_max_items(rows, segments, tile_rows) * 16, kAlign) + round_up(segments * 8, kAlign) +
         round_up(schedule_max_split(rows, segments, tile_rows) * 4, kAlign);
}

}  // namespace hpsim::kernels::limits
