#pragma once
// The executor tests' layer: small awkward shapes (n not a multiple of any tile, H*h != d) at
// the paper's preset otherwise, on `world` GPUs.
#include "hpsim/core/presets.h"
#include "hpsim/core/scenario.h"

namespace hpsim::exec::testing {

inline core::Scenario small_scenario(int world, core::Strategy strategy) {
  core::Scenario s = core::scenario_preset("paper-4.2b-h200x8-uniform").value();
  s.model.d_model = 256;
  s.model.num_heads = 4;
  s.model.head_dim = 128;
  s.model.num_experts = 16;
  s.model.top_k = 2;
  s.model.expert_hidden = 128;
  s.workload.tokens_per_rank = 1000;
  s.parallel = {strategy, world};
  return s;
}

}  // namespace hpsim::exec::testing
