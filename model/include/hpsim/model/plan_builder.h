#pragma once
// Builds the LayerPlan of EP or HP (layer_plan.h) with the stages of DESIGN.md section 2, in
// order, each rank's compute durations from the profile, and the W x W bytes of each collective.
// Stages form a chain on every rank (no overlap of communication and computation, as in the
// paper's implementation); the list is topologically ordered.

#include <cstdint>
#include <string_view>
#include <vector>

#include "hpsim/core/error.h"
#include "hpsim/core/profile.h"
#include "hpsim/core/scenario.h"
#include "hpsim/model/kernel_families.h"
#include "hpsim/model/layer_plan.h"
#include "hpsim/model/traffic.h"
#include "hpsim/model/workload.h"

namespace hpsim::model {

struct PlanOptions {
  std::int64_t num_layers = 1;     // MoE layers in a row
  std::int64_t micro_batches = 1;  // each runs all layers forward, then backward in reverse
  bool include_backward = true;
  bool save_expert_hidden = true;  // as MemoryOptions::save_expert_hidden
};

// One stage of one layer, as the builder lays it out.
struct StageTemplate {
  std::string_view name;
  core::Phase phase = core::Phase::kForward;
  bool is_collective = false;
  KernelFamily family = KernelFamily::kDenseGemm;  // compute stages
  std::string_view collective;                     // collective stages: kAllToAll or kAllToAllV
  std::string_view traffic_phase;                  // collective stages: which matrix (traffic.h)
};

// The stages of one layer of a strategy, forward then backward, in execution order.
const std::vector<StageTemplate>& layer_stages(core::Strategy strategy);

core::Expected<LayerPlan> build_layer_plan(const core::Scenario& scenario, const core::Profile& profile,
                                           core::Strategy strategy, const PlanOptions& options = {});
// The same from a routing workload (and its traffic) already built: the estimate shares them
// with the traffic and memory reports.
core::Expected<LayerPlan> build_layer_plan(const core::Scenario& scenario, const core::Profile& profile,
                                           const RoutingWorkload& workload, const PlanOptions& options = {});
// `traffic` is taken by value: pass it with std::move to hand its matrices to the plan uncopied.
core::Expected<LayerPlan> build_layer_plan(const core::Scenario& scenario, const core::Profile& profile,
                                           const RoutingWorkload& workload, LayerTraffic traffic,
                                           const PlanOptions& options = {});

}  // namespace hpsim::model
