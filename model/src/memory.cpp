// Memory model of one MoE layer (formulas in memory.h and docs/model.md, "Memory").
#include "hpsim/model/memory.h"

#include <algorithm>

#include "hpsim/core/units.h"

namespace hpsim::model {

LayerParams layer_params_per_rank(const core::ModelSpec& m, core::Strategy strategy, std::int64_t num_ranks) {
  const auto d = static_cast<double>(m.d_model);
  const auto H = static_cast<double>(m.num_heads);
  const auto h = static_cast<double>(m.head_dim);
  const auto E = static_cast<double>(m.num_experts);
  const auto f = static_cast<double>(m.expert_hidden);
  const auto W = static_cast<double>(num_ranks);
  LayerParams p;
  if (strategy == core::Strategy::kEp) {
    p.expert = E / W * 2 * d * f;
    p.router = d * E;
  } else {
    p.expert = H / W * E * 2 * h * f;
    p.router = H / W * h * E;
    p.projections = 2 * d * H * h;
  }
  return p;
}

core::MemoryReport layer_memory(const core::Scenario& scenario, const RoutingWorkload& workload,
                                const MemoryOptions& options) {
  const auto& m = scenario.model;
  const auto& t = scenario.training;
  const core::Strategy strategy = workload.strategy;
  const std::int64_t W = workload.num_ranks;
  const auto n = static_cast<double>(workload.tokens_per_rank);
  const auto d = static_cast<double>(m.d_model);
  const auto H = static_cast<double>(m.num_heads);
  const auto h = static_cast<double>(m.head_dim);
  const auto E = static_cast<double>(m.num_experts);
  const auto k = static_cast<double>(m.top_k);
  const auto f = static_cast<double>(m.expert_hidden);
  const auto s = static_cast<double>(m.bytes_per_element);
  const auto Wd = static_cast<double>(W);
  constexpr double kGateAndIndexBytes = 4 + 4;  // fp32 gate + int32 expert index per slot

  const LayerParams params = layer_params_per_rank(m, strategy, W);
  const double weights = (params.expert + params.projections) * static_cast<double>(t.weight_bytes) +
                         params.router * kRouterWeightBytes;
  const double gradients = params.total() * static_cast<double>(t.grad_bytes);
  const double optimizer = params.total() * static_cast<double>(t.optimizer_bytes);
  const double hidden_saved = options.save_expert_hidden ? 2.0 : 0.0;  // GELU input and output, f wide
  const double hidden_recomputed = options.save_expert_hidden ? 0.0 : 2.0;

  core::MemoryReport report;
  report.capacity_bytes = scenario.cluster.gpu.memory_gb * core::kGB;
  const auto loads = workload.rank_loads();
  for (std::int64_t r = 0; r < W; ++r) {
    core::RankMemory rm;
    rm.rank = r;
    rm.weights = weights;
    rm.gradients = gradients;
    rm.optimizer = optimizer;
    if (strategy == core::Strategy::kEp) {
      const double L = loads[static_cast<std::size_t>(r)];
      // x, gates and indices, the received copies (expert input), the hidden, and the copies that
      // came back to the token's rank (read by the gate gradient).
      rm.activations = n * d * s + n * k * kGateAndIndexBytes + L * d * s + hidden_saved * L * f * s + n * k * d * s;
      double rows = std::max(n * k, L);
      if (options.ep_buffers == EpBufferSizing::kWorstCase) {
        rows = std::max(n * k, Wd * n * std::min(k, E / Wd));
      }
      // Send + receive data buffers, and the counts of the metadata exchange (E int32 each way).
      rm.comm_buffers = 2 * rows * d * s + 2 * E * 4;
      rm.workspace = L * (f + d) * s + hidden_recomputed * L * f * s;
    } else {
      const double rows = n * H * k;  // W n sub-tokens per local head, H/W heads, k slots
      // x, the received sub-tokens (router input), gates and indices, the grouped copies (expert
      // input), the hidden, the expert outputs (gate gradient), and W_out's input.
      rm.activations = n * d * s + n * H * h * s + rows * kGateAndIndexBytes + rows * h * s +
                       hidden_saved * rows * f * s + rows * h * s + n * H * h * s;
      rm.comm_buffers = 2 * n * H * h * s;
      rm.workspace = rows * (f + h) * s + hidden_recomputed * rows * f * s;
    }
    report.ranks.push_back(rm);
  }
  return report;
}

}  // namespace hpsim::model
