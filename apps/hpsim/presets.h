#pragma once
#include <string>

namespace hpsim::cli {

// Lists the presets, or prints one scenario preset's full JSON (`show`).
int run_presets(const std::string& show, bool json);

struct DeriveOptions {
  std::string base;                              // profile file or shipped name
  std::string from_sheet = "h200-datasheet";     // the base GPU's datasheet profile
  std::string to_sheet = "h100-datasheet";       // the target GPU's datasheet profile
  std::string name;                              // the derived profile's name
  std::string out;                               // file to write (default stdout)
};

// Writes a profile for another GPU derived from a measured one by datasheet ratios (model/derive.h).
int run_derive(const DeriveOptions& options);

}  // namespace hpsim::cli
