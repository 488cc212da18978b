#pragma once
// Shipped presets: the paper's MoE configurations (DESIGN.md section 2), clusters, and the
// default scenarios that `hpsim simulate` runs with no arguments.

#include <string>
#include <vector>

#include "hpsim/core/error.h"
#include "hpsim/core/scenario.h"

namespace hpsim::core {

struct Preset {
  std::string name;
  std::string description;
};

std::vector<Preset> model_presets();
std::vector<Preset> cluster_presets();
std::vector<Preset> scenario_presets();

Expected<ModelSpec> model_preset(const std::string& name);
Expected<ClusterSpec> cluster_preset(const std::string& name);
Expected<Scenario> scenario_preset(const std::string& name);

// The paper's 4.2B layer on one node of 8 H200: uniform and Zipf(1.0) routing.
std::vector<Scenario> default_scenarios();

// A training spec matching the paper's runs (10B tokens, 0.66M-token global batch, bf16, Adam).
TrainingSpec paper_training();

}  // namespace hpsim::core
