#include <gtest/gtest.h>

#include "hpsim/core/presets.h"
#include "hpsim/model/memory.h"

namespace hpsim::model {
namespace {

// d = 8, H = 4, h = 2, E = 4, k = 2, f = 6, n = 3, s = 2; bf16 weights, fp32 grads, Adam (12).
core::Scenario tiny(core::Strategy strategy) {
  core::Scenario s = core::default_scenarios().front();
  s.parallel = {strategy, 2};
  s.model.d_model = 8;
  s.model.num_heads = 4;
  s.model.head_dim = 2;
  s.model.num_experts = 4;
  s.model.top_k = 2;
  s.model.expert_hidden = 6;
  s.model.bytes_per_element = 2;
  s.workload.tokens_per_rank = 3;
  s.training.weight_bytes = 2;
  s.training.grad_bytes = 4;
  s.training.optimizer_bytes = 12;
  return s;
}

core::MemoryReport memory_of(const core::Scenario& s, const MemoryOptions& options = {}) {
  auto wl = build_workload(s, s.parallel.strategy);
  HPSIM_ASSERT(wl.has_value(), "{}", wl.error().message);
  return layer_memory(s, *wl, options);
}

TEST(EpMemory, HandCountedPartsW2) {
  const auto report = memory_of(tiny(core::Strategy::kEp));
  ASSERT_EQ(report.ranks.size(), 2u);
  EXPECT_DOUBLE_EQ(report.capacity_bytes, 141e9);
  for (const auto& r : report.ranks) {
    // Experts: E/W = 2 of 2*d*f = 96 params -> 192; router d*E = 32 params in fp32.
    EXPECT_DOUBLE_EQ(r.weights, 192 * 2 + 32 * 4);
    EXPECT_DOUBLE_EQ(r.gradients, 224 * 4);
    EXPECT_DOUBLE_EQ(r.optimizer, 224 * 12);
    // Uniform: L = n*k = 6 rows. x 48 + gates/indices 6*8 + input 6*16 + hidden 2*6*6*2 + returned copies 6*16.
    EXPECT_DOUBLE_EQ(r.activations, 48 + 48 + 96 + 144 + 96);
    // Send + receive of 6 rows of 16 bytes, and E = 4 int32 counts each way.
    EXPECT_DOUBLE_EQ(r.comm_buffers, 2 * 6 * 16 + 2 * 4 * 4);
    EXPECT_DOUBLE_EQ(r.workspace, 6 * (6 + 8) * 2);
    EXPECT_DOUBLE_EQ(r.peak(), 512 + 896 + 2688 + 432 + 224 + 168);
  }
}

TEST(EpMemory, WorstCaseBuffersHoldEveryTokenOfEveryRank) {
  MemoryOptions options;
  options.ep_buffers = EpBufferSizing::kWorstCase;
  const auto report = memory_of(tiny(core::Strategy::kEp), options);
  // W * n * min(k, E/W) = 2 * 3 * 2 = 12 rows each way.
  EXPECT_DOUBLE_EQ(report.ranks[0].comm_buffers, 2 * 12 * 16 + 2 * 4 * 4);
}

TEST(HpMemory, HandCountedPartsW2) {
  const auto report = memory_of(tiny(core::Strategy::kHp));
  for (const auto& r : report.ranks) {
    // Experts: H/W = 2 heads * E = 4 * 2*h*f = 24 -> 192; routers 2 * h * E = 16 (fp32);
    // W_in + W_out 2 * d * H * h = 128.
    EXPECT_DOUBLE_EQ(r.weights, (192 + 128) * 2 + 16 * 4);
    EXPECT_DOUBLE_EQ(r.gradients, 336 * 4);
    EXPECT_DOUBLE_EQ(r.optimizer, 336 * 12);
    // rows = n*H*k = 24. x 48, sub-tokens 48, gates 24*8, copies 24*4, hidden 2*24*6*2, outputs 24*4, W_out input 48.
    EXPECT_DOUBLE_EQ(r.activations, 48 + 48 + 192 + 96 + 576 + 96 + 48);
    EXPECT_DOUBLE_EQ(r.comm_buffers, 2 * 48);
    EXPECT_DOUBLE_EQ(r.workspace, 24 * (6 + 2) * 2);
  }
}

TEST(EpMemory, HandCountedPartsW4) {
  core::Scenario s = tiny(core::Strategy::kEp);
  s.parallel.num_ranks = 4;  // E/W = 1 expert per rank
  const auto report = memory_of(s);
  ASSERT_EQ(report.ranks.size(), 4u);
  for (const auto& r : report.ranks) {
    EXPECT_DOUBLE_EQ(r.weights, 96 * 2 + 32 * 4);
    EXPECT_DOUBLE_EQ(r.gradients, 128 * 4);
    EXPECT_DOUBLE_EQ(r.optimizer, 128 * 12);
    // Uniform: each rank's single expert gets W * n * k / E = 6 rows, the same as n * k.
    EXPECT_DOUBLE_EQ(r.activations, 48 + 48 + 96 + 144 + 96);
    EXPECT_DOUBLE_EQ(r.comm_buffers, 2 * 6 * 16 + 2 * 4 * 4);
  }
  MemoryOptions worst;
  worst.ep_buffers = EpBufferSizing::kWorstCase;
  // W * n * min(k, E/W) = 4 * 3 * 1 = 12 rows each way.
  EXPECT_DOUBLE_EQ(memory_of(s, worst).ranks[2].comm_buffers, 2 * 12 * 16 + 2 * 4 * 4);
}

TEST(HpMemory, HandCountedPartsW4) {
  core::Scenario s = tiny(core::Strategy::kHp);
  s.parallel.num_ranks = 4;  // one head per rank
  const auto report = memory_of(s);
  for (const auto& r : report.ranks) {
    // Experts 1 head * 4 * 2*h*f = 96; its router h*E = 8 (fp32); W_in + W_out 128.
    EXPECT_DOUBLE_EQ(r.weights, (96 + 128) * 2 + 8 * 4);
    EXPECT_DOUBLE_EQ(r.gradients, 232 * 4);
    EXPECT_DOUBLE_EQ(r.optimizer, 232 * 12);
    // A rank's rows n*H*k do not depend on W: the activations are those of W = 2.
    EXPECT_DOUBLE_EQ(r.activations, 48 + 48 + 192 + 96 + 576 + 96 + 48);
    EXPECT_DOUBLE_EQ(r.comm_buffers, 2 * 48);
    EXPECT_DOUBLE_EQ(r.workspace, 24 * (6 + 2) * 2);
  }
}

TEST(Memory, RecomputingTheHiddenMovesItFromActivationsToWorkspace) {
  for (auto strategy : {core::Strategy::kEp, core::Strategy::kHp}) {
    const auto saved = memory_of(tiny(strategy));
    MemoryOptions options;
    options.save_expert_hidden = false;
    const auto recomputed = memory_of(tiny(strategy), options);
    const double moved = saved.ranks[0].activations - recomputed.ranks[0].activations;
    EXPECT_GT(moved, 0);
    EXPECT_DOUBLE_EQ(recomputed.ranks[0].workspace - saved.ranks[0].workspace, moved);
  }
}

TEST(EpMemory, HotRankHoldsMoreActivations) {
  core::Scenario s = core::default_scenarios().back();  // Zipf 1.0, contiguous
  s.parallel.strategy = core::Strategy::kEp;
  const auto report = memory_of(s);
  for (std::size_t r = 1; r < report.ranks.size(); ++r) {
    EXPECT_GT(report.ranks[0].activations, report.ranks[r].activations);
    EXPECT_GT(report.ranks[0].comm_buffers, report.ranks[r].comm_buffers);
  }
  EXPECT_GT(report.max_peak(), report.mean_peak());
}

TEST(HpMemory, EveryRankPeaksAlikeWhateverTheSkew) {
  core::Scenario s = core::default_scenarios().back();
  const auto skewed = memory_of(s);
  s.workload.routing = core::Routing::kUniform;
  s.workload.zipf_skew = 0;
  const auto uniform = memory_of(s);
  for (std::size_t r = 0; r < skewed.ranks.size(); ++r) {
    EXPECT_DOUBLE_EQ(skewed.ranks[r].peak(), skewed.ranks[0].peak());
    EXPECT_DOUBLE_EQ(skewed.ranks[r].peak(), uniform.ranks[r].peak());
  }
}

TEST(LayerParams, BothStrategiesHoldTheSameExpertParametersInTotal) {
  // DESIGN.md: E counts experts per head for HP and in total for EP, with the same parameters.
  // Per rank: (E/W) 2 d f against (H/W) E 2 h f = (E/W) 2 (H h) f, equal since H h = d here.
  const auto m = core::model_preset("paper-4.2b").value();
  EXPECT_DOUBLE_EQ(layer_params_per_rank(m, core::Strategy::kEp, 8).expert,
                   layer_params_per_rank(m, core::Strategy::kHp, 8).expert);
}

}  // namespace
}  // namespace hpsim::model
