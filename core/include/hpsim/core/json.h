#pragma once
// JSON in and out for the vocabulary types. Reading is strict: an unknown field, a missing
// field or a wrong type is an error naming the field's path (e.g. "model.top_k: expected an
// integer"). All structural errors of one document are reported together, one per line.
// Rule checks (k <= E, W divides H, ...) are in validate.h and run after parsing.

#include <string>
#include <string_view>

#include "hpsim/core/error.h"
#include "hpsim/core/profile.h"
#include "hpsim/core/report.h"
#include "hpsim/core/scenario.h"

namespace hpsim::core {

// File helpers: errors name the file.
Expected<std::string> read_text_file(const std::string& path);
Status write_text_file(const std::string& path, std::string_view text);

// Scenario. parse_* checks structure only; load_scenario also validates (validate.h).
Expected<Scenario> parse_scenario(std::string_view json_text);
Expected<Scenario> load_scenario(const std::string& path);
std::string to_json(const Scenario& scenario);

// Profile.
Expected<Profile> parse_profile(std::string_view json_text);
Expected<Profile> load_profile(const std::string& path);
std::string to_json(const Profile& profile);

// Report and Timeline: written for tools and golden tests; schema in docs/report-format.md.
std::string to_json(const Report& report);
std::string to_json(const Timeline& timeline);
Expected<Timeline> parse_timeline(std::string_view json_text);

}  // namespace hpsim::core
