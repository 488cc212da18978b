// hpsim: command-line front end. Parses arguments, wires the modules, prints.
#include <cstdio>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "hpsim/core/presets.h"

namespace {

int run_presets() {
  fmt::print("models:\n");
  for (const auto& p : hpsim::core::model_presets()) fmt::print("  {:<28} {}\n", p.name, p.description);
  fmt::print("clusters:\n");
  for (const auto& p : hpsim::core::cluster_presets()) fmt::print("  {:<28} {}\n", p.name, p.description);
  fmt::print("scenarios:\n");
  for (const auto& p : hpsim::core::scenario_presets()) fmt::print("  {:<28} {}\n", p.name, p.description);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"hpsim: EP vs HP (Multi-Head LatentMoE) performance model, simulator and executor"};
  app.require_subcommand(1);
  auto* presets = app.add_subcommand("presets", "List the shipped model, cluster and scenario presets");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (presets->parsed()) return run_presets();
  return 0;
}
