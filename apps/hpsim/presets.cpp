// hpsim presets: what ships, and a scenario preset as a JSON template.
#include "presets.h"

#include <fmt/format.h>

#include "cli.h"
#include "hpsim/core/json.h"
#include "hpsim/core/presets.h"
#include "hpsim/model/data_files.h"
#include "hpsim/model/derive.h"

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

int run_derive(const DeriveOptions& options) {
  if (options.name.empty()) return print_error(core::Error::field("--name", "must not be empty"));
  auto base = model::load_model_profile(options.base);
  if (!base) return print_error(core::Error::field("base", base.error().message));
  auto from = model::load_model_profile(options.from_sheet);
  if (!from) return print_error(core::Error::field("--from-sheet", from.error().message));
  auto to = model::load_model_profile(options.to_sheet);
  if (!to) return print_error(core::Error::field("--to-sheet", to.error().message));
  auto derived = model::derive_profile(*base, *from, *to, options.name);
  if (!derived) return print_error(derived.error());
  const core::Status st = emit(options.out, core::to_json(*derived));
  if (!st) return print_error(st.error());
  return kExitOk;
}

}  // namespace hpsim::cli
