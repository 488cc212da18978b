#pragma once
#include <string>

namespace hpsim::cli {

// Lists the presets, or prints one scenario preset's full JSON (`show`).
int run_presets(const std::string& show, bool json);

}  // namespace hpsim::cli
