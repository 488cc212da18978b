#pragma once
// Training-step estimate of the whole model (docs/model.md, "Training step"). Symbols as in
// DESIGN.md section 2, plus L layers (L_d dense, L - L_d MoE), T sequence length, V vocabulary,
// F dense FFN width, G = R W GPUs in use, R = floor(GPUs / W) data-parallel copies of the group.
//
// Per micro-batch pass (n tokens per rank), forward + backward, on every rank:
//   attention  L x [attention_fwd(2 n T d FLOPs, 4 n d s bytes) + attention_bwd(5 n T d, 8 n d s)]
//   dense      L x [Q,K,V,O projections], L_d x [dense FFN d -> F -> d], LM head d -> V:
//              each GEMM once forward and twice backward (dX, dW), on the dense_gemm fit
//   MoE        (L - L_d) x the analytic MoE layer time (forward + backward)
// Per step: passes = max(1, global_batch_tokens / (G n)); plus one all-reduce of the replicated
// parameters' gradients over the G GPUs (bus bytes 2 (G-1)/G), one of the expert gradients over
// the R copies, and the optimizer update (optimizer_step fit).

#include "hpsim/core/error.h"
#include "hpsim/core/profile.h"
#include "hpsim/core/scenario.h"

namespace hpsim::model {

struct StepEstimate {
  double data_parallel_copies = 0;  // R
  double passes = 0;                // micro-batch passes per optimizer step: max(1, B / (G n))
  double tokens_per_step = 0;       // passes G n (= B unless B < G n)
  // Per pass, per rank, forward + backward (microseconds).
  double attention_us = 0;
  double dense_gemm_us = 0;
  double moe_us = 0;
  double pass_us = 0;
  // Per step.
  double replicated_params = 0;   // per rank: embeddings, LM head, attention, dense FFN, routers or W_in/W_out
  double sharded_params = 0;      // per rank: its experts (and HP's per-head routers)
  double grad_allreduce_us = 0;
  double optimizer_us = 0;
  double step_us = 0;
  double tokens_per_second = 0;
  double hours_for_budget = 0;
};

// `moe_layer_us`: one MoE layer's forward + backward time for one micro-batch (the analytic walk).
core::Expected<StepEstimate> estimate_step(const core::Scenario& scenario, const core::Profile& profile,
                                           core::Strategy strategy, double moe_layer_us);

}  // namespace hpsim::model
