// Shipped data lookup and the default profile (data_files.h).
#include "hpsim/model/data_files.h"

#include <cstdlib>
#include <filesystem>

#include "hpsim/core/json.h"
#include "hpsim/model/cost.h"

#ifndef HPSIM_DATA_SOURCE_DIR
#define HPSIM_DATA_SOURCE_DIR ""
#endif
#ifndef HPSIM_DATA_INSTALL_DIR
#define HPSIM_DATA_INSTALL_DIR ""
#endif

namespace hpsim::model {

std::vector<std::string> data_dirs() {
  std::vector<std::string> dirs;
  std::error_code ec;
  auto add = [&](const std::string& dir) {
    if (!dir.empty() && std::filesystem::is_directory(dir, ec)) dirs.push_back(dir);
  };
  if (const char* env = std::getenv("HPSIM_DATA_DIR")) add(env);
  add(HPSIM_DATA_SOURCE_DIR);
  add(HPSIM_DATA_INSTALL_DIR);
  return dirs;
}

core::Expected<std::string> find_data_file(std::string_view relative) {
  std::error_code ec;
  std::string tried;
  for (const auto& dir : data_dirs()) {
    const auto path = std::filesystem::path(dir) / relative;
    if (std::filesystem::is_regular_file(path, ec)) return path.string();
    tried += (tried.empty() ? "" : ", ") + dir;
  }
  return core::Error{core::ErrorCode::kIo,
                     fmt::format("{}: not found in the data folders ({}; set HPSIM_DATA_DIR to add one)", relative,
                                 tried.empty() ? "none exists" : tried)};
}

// The best shipped profile: h200x2-measured has the smallest worst error over the validation sweeps
// on one, two and four H200 (docs/model.md, section 6): kernels fitted on two H200, NVLink
// collectives measured there (with their large-message lines).
std::string_view default_profile_name() { return "h200x2-measured"; }

core::Expected<core::Profile> load_model_profile(const std::string& file_or_name) {
  std::string path = file_or_name;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec) && path.find('/') == std::string::npos &&
      path.find(".json") == std::string::npos) {
    auto shipped = find_data_file("profiles/" + file_or_name + ".json");
    if (!shipped) {
      return core::Error{core::ErrorCode::kIo,
                         fmt::format("{}: no such file, and no shipped profile of that name ({})", file_or_name,
                                     shipped.error().message)};
    }
    path = *shipped;
  }
  auto profile = core::load_profile(path);
  if (!profile) return profile.error();
  const auto missing = missing_profile_entries(*profile);
  if (!missing.empty()) {
    std::string message;
    for (const auto& m : missing) message += (message.empty() ? "" : "\n") + path + ": " + m;
    return core::Error{core::ErrorCode::kInvalidArgument, message};
  }
  return profile;
}

core::Expected<core::Profile> load_default_profile() { return load_model_profile(std::string(default_profile_name())); }

}  // namespace hpsim::model
