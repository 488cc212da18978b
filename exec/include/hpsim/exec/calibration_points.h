#pragma once
// The scenarios `hpsim calibrate` executes, and the FLOP, byte and selection counts it pairs with
// each measured stage, reproducible without a GPU: the forced routing of a scenario is a fixed
// function of its seed (forced_routing.h), so the model's plan of a calibration point can be
// built again. `hpsim calibrate --refit P --recount W` uses this to count a profile's stored points
// again with the current model before fitting them, so a change in what the model counts does not
// leave the fitted rates paired with the counts of an older model.

#include <cstdint>
#include <map>
#include <string>

#include "hpsim/core/error.h"
#include "hpsim/core/profile.h"
#include "hpsim/core/scenario.h"
#include "hpsim/core/timeline.h"

namespace hpsim::exec {

// One executed shape of the calibration: the paper's widths with the named model's experts.
struct CalibrationShape {
  std::string model;  // a model preset, e.g. "paper-4.2b"
  std::int64_t tokens = 0;
  std::int64_t top_k = 0;
  double skew = 0;  // Zipf skew; 0 = uniform routing
};

// The scenario the calibration runs for `shape` with `strategy` on `num_ranks` GPUs of one node.
core::Expected<core::Scenario> calibration_scenario(const CalibrationShape& shape, core::Strategy strategy,
                                                    std::int64_t num_ranks);

// The label of a point: "<strategy> <model> n=<tokens> k=<top_k> zipf=<skew>"; a stored point's
// shape is "<stage> <label>".
std::string calibration_label(const CalibrationShape& shape, core::Strategy strategy);

// One stage's counts on rank 0, as the calibration pairs them with the measured time.
struct StageCounts {
  std::string kernel;  // kernel family
  core::Phase phase = core::Phase::kForward;
  double flops = 0;
  double bytes = 0;
  double selections = 0;
};

// The counts of every compute stage of `scenario`'s plan under the routing the executor forces
// for it (rank 0), keyed by stage name. `base` is the profile the plan is built with (the counts
// do not depend on its rates).
core::Expected<std::map<std::string, StageCounts>> calibration_stage_counts(const core::Scenario& scenario,
                                                                            core::Strategy strategy,
                                                                            const core::Profile& base);

// `profile` with the FLOPs, bytes and selections of every stored kernel point counted again for
// the calibration scenario at `num_ranks` GPUs (times untouched; fits not redone). An error names
// a point whose shape is not a calibration label or whose stage the plan lacks.
core::Expected<core::Profile> recount_points(const core::Profile& profile, std::int64_t num_ranks);

}  // namespace hpsim::exec
