// hpsim presets: what ships, and a scenario preset as a JSON template.
#include "presets.h"

#include <fmt/format.h>

#include "cli.h"
#include "hpsim/core/json.h"
#include "hpsim/core/presets.h"

namespace hpsim::cli {
namespace {

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string json_list(const std::vector<core::Preset>& presets) {
  std::string out = "[";
  for (std::size_t i = 0; i < presets.size(); ++i) {
    out += fmt::format("{}\n    {{\"name\": {}, \"description\": {}}}", i == 0 ? "" : ",", json_string(presets[i].name),
                       json_string(presets[i].description));
  }
  return out + "\n  ]";
}

}  // namespace

int run_presets(const std::string& show, bool json) {
  if (!show.empty()) {
    auto scenario = core::scenario_preset(show);
    if (!scenario) return print_error(core::Error::field("--show", scenario.error().message));
    return emit("", core::to_json(*scenario)) ? kExitOk : kExitBadInput;
  }
  std::string out;
  if (json) {
    out = fmt::format("{{\n  \"models\": {},\n  \"clusters\": {},\n  \"scenarios\": {}\n}}\n",
                      json_list(core::model_presets()), json_list(core::cluster_presets()),
                      json_list(core::scenario_presets()));
  } else {
    out += "models:\n";
    for (const auto& p : core::model_presets()) out += fmt::format("  {:<28} {}\n", p.name, p.description);
    out += "clusters:\n";
    for (const auto& p : core::cluster_presets()) out += fmt::format("  {:<28} {}\n", p.name, p.description);
    out += "scenarios (hpsim presets --show NAME prints one as JSON):\n";
    for (const auto& p : core::scenario_presets()) out += fmt::format("  {:<28} {}\n", p.name, p.description);
  }
  return emit("", out) ? kExitOk : kExitBadInput;
}

}  // namespace hpsim::cli
