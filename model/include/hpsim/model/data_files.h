#pragma once
// Shipped data (profiles/, scenarios/ under traces/data in the source tree, share/hpsim when
// installed) and the choice of the default profile, made here and nowhere else.

#include <string>
#include <string_view>
#include <vector>

#include "hpsim/core/error.h"
#include "hpsim/core/profile.h"

namespace hpsim::model {

// Folders searched, in order: $HPSIM_DATA_DIR (when set), the source tree's traces/data, the
// install prefix's share/hpsim. Only existing folders are listed.
std::vector<std::string> data_dirs();

// The first existing `<dir>/<relative>`; the error lists the folders tried.
core::Expected<std::string> find_data_file(std::string_view relative);

// The profile `hpsim simulate` uses without --profile: the best one that ships.
std::string_view default_profile_name();

// Loads and validates a profile from a file path, or a shipped one by name ("h100-datasheet"),
// and checks that it has every kernel family and collective the model needs (cost.h). Errors
// name the file and the field, one per line.
core::Expected<core::Profile> load_model_profile(const std::string& file_or_name);
core::Expected<core::Profile> load_default_profile();

}  // namespace hpsim::model
