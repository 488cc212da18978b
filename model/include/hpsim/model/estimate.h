#pragma once
// The analytic estimate: walks a LayerPlan without contention (docs/model.md, "The analytic walk").
//  - compute stage on rank r: starts when its deps are done on r, lasts duration_ns[r];
//  - collective: ends for every rank at max over ranks q of
//      ready_q + alpha + max(sent_q, received_q) / bandwidth,
//    so the slowest rank (the latest ready, or the one with the most bytes) sets everyone's end.
// From the walk come the StageCost rows, the layer times, and an analytic Timeline.

#include <cstdint>
#include <string>
#include <vector>

#include "hpsim/core/error.h"
#include "hpsim/core/profile.h"
#include "hpsim/core/report.h"
#include "hpsim/core/scenario.h"
#include "hpsim/model/layer_plan.h"
#include "hpsim/model/memory.h"

namespace hpsim::model {

struct PlanWalk {
  std::vector<std::vector<double>> start_ns;  // [stage][rank]
  std::vector<std::vector<double>> end_ns;    // [stage][rank]
  // Collective stages: max(sent, received) off-diagonal bytes of each rank; empty for compute.
  std::vector<std::vector<double>> comm_bytes;  // [stage][rank]
  double end_ns_max() const;                  // latest end over all stages and ranks
};

PlanWalk walk_plan(const LayerPlan& plan);

// One row per plan stage: max and mean over ranks of (end - start), waits included.
std::vector<core::StageCost> stage_costs(const LayerPlan& plan, const PlanWalk& walk);

// Spans of the walk (source "analytic"), integer nanoseconds (rounded).
core::Timeline analytic_timeline(const LayerPlan& plan, const PlanWalk& walk);

struct EstimateOptions {
  MemoryOptions memory;        // memory.save_expert_hidden also sets the plan's
  bool with_timeline = true;   // attach the analytic Timeline to the StrategyReport
  bool with_step = true;       // the whole-model training-step estimate (step.h)
};

// One strategy: one MoE layer (one micro-batch, forward and backward), its traffic, memory,
// and the training-step estimate.
core::Expected<core::StrategyReport> estimate_strategy(const core::Scenario& scenario, const core::Profile& profile,
                                                       core::Strategy strategy, const EstimateOptions& options = {});

struct Estimate {
  core::Report report;             // engine "analytic", one StrategyReport per valid strategy
  std::vector<std::string> notes;  // why a requested strategy was left out ("hp: parallel.num_ranks: ...")
};

// The requested strategies (in the order given). A strategy the scenario cannot run
// (core::check_strategy) is left out with a note; if none is left, that is an error.
core::Expected<Estimate> estimate(const core::Scenario& scenario, const core::Profile& profile,
                                  const std::vector<core::Strategy>& strategies, const EstimateOptions& options = {});

}  // namespace hpsim::model
