#include "cli.h"

#include <cstdio>
#include <filesystem>
#include <sstream>

#include "hpsim/core/json.h"
#include "hpsim/core/presets.h"
#include "hpsim/model/data_files.h"

namespace hpsim::cli {

int print_error(const core::Error& error) {
  std::istringstream lines(error.message);
  std::string line;
  bool any = false;
  while (std::getline(lines, line)) {
    std::fprintf(stderr, "error: %s\n", line.c_str());
    any = true;
  }
  if (!any) std::fprintf(stderr, "error: %s\n", core::to_string(error.code));
  return kExitBadInput;
}

void print_note(const std::string& text) { std::fprintf(stderr, "note: %s\n", text.c_str()); }

core::Expected<core::Scenario> load_scenario_arg(const std::string& file_or_preset) {
  std::error_code ec;
  const bool is_file = std::filesystem::exists(file_or_preset, ec);
  if (!is_file) {
    if (auto preset = core::scenario_preset(file_or_preset)) return preset;
    if (file_or_preset.find('/') == std::string::npos && file_or_preset.find(".json") == std::string::npos) {
      return core::Error{core::ErrorCode::kIo,
                         fmt::format("{}: no such file, and no scenario preset of that name (hpsim presets lists them)",
                                     file_or_preset)};
    }
  }
  auto scenario = core::load_scenario(file_or_preset);
  if (!scenario) return scenario;
  auto& trace = scenario->workload.trace_file;
  if (!trace.empty() && std::filesystem::path(trace).is_relative()) {
    const auto beside = std::filesystem::path(file_or_preset).parent_path() / trace;
    if (std::filesystem::exists(beside, ec)) trace = beside.string();
  }
  return scenario;
}

core::Expected<core::Profile> load_profile_arg(const std::string& file_or_name) {
  if (file_or_name.empty()) return model::load_default_profile();
  return model::load_model_profile(file_or_name);
}

std::vector<core::Strategy> strategies_of(const std::string& choice) {
  if (choice == "ep") return {core::Strategy::kEp};
  if (choice == "hp") return {core::Strategy::kHp};
  return {core::Strategy::kEp, core::Strategy::kHp};
}

core::Status emit(const std::string& out_file, const std::string& text) {
  if (out_file.empty()) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    return core::Status::ok();
  }
  return core::write_text_file(out_file, text);
}

}  // namespace hpsim::cli
