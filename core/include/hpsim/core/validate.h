#pragma once
// Rule checks of a parsed Scenario or Profile. Every broken rule is reported with the field's
// path and the rule, e.g. "model.top_k: must be <= model.num_experts (384), got 400".

#include <string>
#include <vector>

#include "hpsim/core/error.h"
#include "hpsim/core/profile.h"
#include "hpsim/core/scenario.h"

namespace hpsim::core {

struct FieldError {
  std::string path;
  std::string rule;
  std::string to_string() const { return path + ": " + rule; }
};

std::vector<FieldError> check_scenario(const Scenario& scenario);
// The rules one strategy adds (W divides H for HP, W divides E for EP). check_scenario applies
// those of parallel.strategy; front ends that compare both strategies ask for the other one.
std::vector<FieldError> check_strategy(const Scenario& scenario, Strategy strategy);
std::vector<FieldError> check_profile(const Profile& profile);

// All errors joined into one Error (one "path: rule" per line), or ok.
Status validate(const Scenario& scenario);
Status validate(const Profile& profile);
Error join_field_errors(const std::vector<FieldError>& errors);

}  // namespace hpsim::core
