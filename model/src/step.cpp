// Whole-model training-step estimate (step.h, docs/model.md "Training step").
#include "hpsim/model/step.h"

#include <algorithm>

#include "hpsim/core/units.h"
#include "hpsim/model/cost.h"
#include "hpsim/model/memory.h"

namespace hpsim::model {

core::Expected<StepEstimate> estimate_step(const core::Scenario& scenario, const core::Profile& profile,
                                           core::Strategy strategy, double moe_layer_us) {
  const auto& m = scenario.model;
  const auto& tr = scenario.training;
  const std::int64_t W = scenario.parallel.num_ranks;
  const std::int64_t copies = scenario.cluster.num_gpus() / W;
  if (W <= 0 || copies <= 0) {
    return core::Error::field("parallel.num_ranks", fmt::format("must be in [1, the cluster's GPUs ({})], got {}",
                                                                scenario.cluster.num_gpus(), W));
  }
  const double n = static_cast<double>(scenario.workload.tokens_per_rank);
  const double d = static_cast<double>(m.d_model);
  const double T = static_cast<double>(m.seq_len);
  const double V = static_cast<double>(m.vocab_size);
  const double F = static_cast<double>(m.dense_hidden);
  const double s = static_cast<double>(m.bytes_per_element);
  const double L = static_cast<double>(m.num_layers);
  const double Ld = static_cast<double>(m.num_dense_layers);
  const double Lm = L - Ld;
  const double R = static_cast<double>(copies);
  const std::int64_t G = copies * W;

  auto gemm = kernel_fit(profile, KernelFamily::kDenseGemm);
  auto attn_fwd = kernel_fit(profile, KernelFamily::kAttentionFwd);
  auto attn_bwd = kernel_fit(profile, KernelFamily::kAttentionBwd);
  auto optim = kernel_fit(profile, KernelFamily::kOptimizerStep);
  for (const auto* fit : {&gemm, &attn_fwd, &attn_bwd, &optim}) {
    if (!*fit) return fit->error();
  }
  // A GEMM once forward and twice backward (dX and dW, each the forward's size).
  auto gemm_fwd_bwd_us = [&](double M, double K, double N) { return 3 * kernel_time_us(*gemm, gemm_work(M, K, N, s)); };

  StepEstimate out;
  out.data_parallel_copies = R;
  // At least one pass: a global batch smaller than one micro-batch on every GPU still runs one.
  out.passes = std::max(1.0, static_cast<double>(tr.global_batch_tokens) / (static_cast<double>(G) * n));
  out.tokens_per_step = out.passes * static_cast<double>(G) * n;
  out.attention_us = L * (kernel_time_us(*attn_fwd, {2 * n * T * d, 4 * n * d * s}) +
                          kernel_time_us(*attn_bwd, {5 * n * T * d, 8 * n * d * s}));
  out.dense_gemm_us = L * (gemm_fwd_bwd_us(n, d, 3 * d) + gemm_fwd_bwd_us(n, d, d)) +
                      Ld * (gemm_fwd_bwd_us(n, d, F) + gemm_fwd_bwd_us(n, F, d)) + gemm_fwd_bwd_us(n, d, V);
  out.moe_us = Lm * moe_layer_us;
  out.pass_us = out.attention_us + out.dense_gemm_us + out.moe_us;

  const LayerParams moe = layer_params_per_rank(m, strategy, W);
  // Replicated: embedding and (untied) LM head, attention Q/K/V/O, dense FFNs, and per MoE layer
  // EP's router or HP's W_in + W_out. Sharded: each rank's experts (and HP's per-head routers).
  const double replicated_router = strategy == core::Strategy::kEp ? moe.router : 0.0;
  const double sharded_router = strategy == core::Strategy::kEp ? 0.0 : moe.router;
  out.replicated_params = 2 * V * d + L * 4 * d * d + Ld * 2 * d * F + Lm * (replicated_router + moe.projections);
  out.sharded_params = Lm * (moe.expert + sharded_router);

  auto bus_bytes = [](double bytes, double ranks) { return ranks > 1 ? 2 * (ranks - 1) / ranks * bytes : 0.0; };
  const double grad_bytes = static_cast<double>(tr.grad_bytes);
  const double replicated_bus = bus_bytes(out.replicated_params * grad_bytes, static_cast<double>(G));
  auto all_reduce = collective_model(profile, scenario.cluster, G, kAllReduce, replicated_bus);
  if (!all_reduce) return all_reduce.error();
  out.grad_allreduce_us = collective_time_us(*all_reduce, replicated_bus);
  if (copies > 1) {
    const double sharded_bus = bus_bytes(out.sharded_params * grad_bytes, R);
    auto experts = collective_model(profile, scenario.cluster, G, kAllReduce, sharded_bus);
    if (!experts) return experts.error();
    experts->num_ranks = copies;
    out.grad_allreduce_us += collective_time_us(*experts, sharded_bus);
  }
  const double params = out.replicated_params + out.sharded_params;
  const double update_bytes = params * static_cast<double>(2 * tr.weight_bytes + 2 * tr.optimizer_bytes + tr.grad_bytes);
  out.optimizer_us = kernel_time_us(*optim, {0.0, update_bytes});

  out.step_us = out.passes * out.pass_us + out.grad_allreduce_us + out.optimizer_us;
  out.tokens_per_second = out.tokens_per_step / (out.step_us / core::kUsPerS);
  out.hours_for_budget = tr.token_budget / out.tokens_per_second / 3600.0;
  return out;
}

}  // namespace hpsim::model
