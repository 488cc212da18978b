#pragma once
// Per-rank device memory of one MoE layer over its forward and backward (docs/model.md,
// "Memory"). Symbols: n, d, H, h, E, k, f, W, s as in DESIGN.md section 2; L_r = (token, slot)
// rows rank r's experts process (EP: routing-dependent; HP: n * H * k on every rank).
//
// The peak adds every part (frameworks keep weights, gradients and optimizer state for the whole
// step, and the parts below are all live at the start of the layer's backward):
//   weights      params * training.weight_bytes (routers: fp32, 4 bytes)
//   gradients    params * training.grad_bytes
//   optimizer    params * training.optimizer_bytes
//   activations  what the backward reads (table in docs/model.md)
//   comm_buffers one send and one receive buffer, each sized for the largest all-to-all of the layer
//   workspace    the expert MLP backward's transient gradients

#include <cstdint>

#include "hpsim/core/memory_report.h"
#include "hpsim/core/scenario.h"
#include "hpsim/model/workload.h"

namespace hpsim::model {

// How EP sizes its receive buffers.
enum class EpBufferSizing {
  kActualCounts,  // after the metadata exchange, to the counts it announced (the design of DESIGN.md)
  kWorstCase,     // without waiting for counts: every token of every rank could pick min(k, E/W) local experts
};

struct MemoryOptions {
  // Keep the expert MLP's f-wide activations (GELU input and output) for the backward; false
  // recomputes them there (they then count as workspace).
  bool save_expert_hidden = true;
  EpBufferSizing ep_buffers = EpBufferSizing::kActualCounts;
};

// Parameters one rank holds for one MoE layer.
struct LayerParams {
  double expert = 0;       // EP: (E/W) * 2 d f; HP: (H/W) * E * 2 h f
  double router = 0;       // EP: d E (replicated); HP: (H/W) * h E (its heads' routers)
  double projections = 0;  // HP: W_in d H h + W_out H h d (replicated); EP: 0
  double total() const { return expert + router + projections; }
};

inline constexpr double kRouterWeightBytes = 4;  // fp32 router weights

LayerParams layer_params_per_rank(const core::ModelSpec& model, core::Strategy strategy, std::int64_t num_ranks);

// One RankMemory per rank; capacity from the cluster's GPU.
core::MemoryReport layer_memory(const core::Scenario& scenario, const RoutingWorkload& workload,
                                const MemoryOptions& options = {});

}  // namespace hpsim::model
