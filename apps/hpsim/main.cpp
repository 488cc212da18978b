// hpsim: command-line front end. Parses arguments, wires the modules, prints.
#include <CLI/CLI.hpp>

#include "cli.h"
#include "gpu_commands.h"
#include "presets.h"
#include "simulate.h"
#include "sweep.h"

int main(int argc, char** argv) {
  using namespace hpsim::cli;
  CLI::App app{"hpsim: EP vs HP (Multi-Head LatentMoE) performance model, simulator and executor"};
  app.require_subcommand(1);
  app.footer("Exit codes: 0 ok, 1 bad input (one 'error: <path>: <rule>' line each), 2 usage, 77 needs a GPU and none is visible.");

  // ---- simulate
  SimulateOptions sim;
  auto* simulate = app.add_subcommand(
      "simulate", "EP and HP side by side for each scenario: time per stage, bytes per rank, imbalance, peak memory, "
                  "training-step estimate, HP/EP ratios");
  simulate->add_option("scenarios", sim.scenarios,
                       "Scenario JSON files or scenario preset names (default: the shipped defaults, the paper's 4.2B "
                       "layer on 8 H200 with uniform and Zipf 1.0 routing)");
  simulate->add_option("--profile", sim.profile,
                       "Profile JSON file or shipped profile name (default: the best shipped profile, h200x2-measured: kernels and NVLink "
                       "collectives measured on two H200)");
  simulate->add_option("--strategy", sim.strategy, "Which strategies to model")
      ->check(CLI::IsMember({"both", "ep", "hp"}))
      ->capture_default_str();
  simulate->add_option("--engine", sim.engine, "analytic (closed form, no contention) or sim (discrete-event simulator: topology, link sharing, waits)")
      ->check(CLI::IsMember({"analytic", "sim"}))
      ->capture_default_str();
  simulate->add_option("--trace", sim.trace_file, "Write the timeline as a Chrome trace (Perfetto); one file per scenario and strategy when there are several");
  simulate->add_option("--ep-buffers", sim.ep_buffers,
                       "EP receive buffers: sized to the counts of the metadata exchange (actual) or to the worst case")
      ->check(CLI::IsMember({"actual", "worst-case"}))
      ->capture_default_str();
  simulate->add_flag("--recompute-hidden", sim.recompute_hidden,
                     "Recompute the expert MLP's f-wide activations in the backward instead of saving them");
  simulate->add_flag("--json", sim.json, "Print the full reports as JSON (an array; docs/report-format.md)");
  simulate->add_option("--out", sim.out, "Write to this file instead of stdout");

  // ---- sweep
  SweepOptions sw;
  auto* sweep = app.add_subcommand(
      "sweep", "The analytic model over a grid (comma lists) of k, E, W, skew and tokens; one row per point and "
               "strategy, CSV or JSON. Unset grids keep the base scenario's value; W beyond the cluster adds nodes");
  sweep->add_option("scenario", sw.scenario, "Base scenario JSON file (default: --preset, else the uniform default)");
  sweep->add_option("--preset", sw.preset, "Base scenario preset (default: paper-4.2b-h200x8-uniform)");
  sweep->add_option("--profile", sw.profile, "Profile JSON file or shipped profile name (default: h200x2-measured)");
  sweep->add_option("--strategy", sw.strategy, "Which strategies to model")
      ->check(CLI::IsMember({"both", "ep", "hp"}))
      ->capture_default_str();
  sweep->add_option("--k", sw.top_k, "Top-k values, e.g. 1,2,4,8")->delimiter(',')->check(CLI::PositiveNumber);
  sweep->add_option("--experts", sw.experts, "Expert counts E")->delimiter(',')->check(CLI::PositiveNumber);
  sweep->add_option("--ranks", sw.ranks, "Group sizes W")->delimiter(',')->check(CLI::PositiveNumber);
  sweep->add_option("--skew", sw.skew, "Zipf skews (0 = uniform routing)")
      ->delimiter(',')
      ->check(CLI::NonNegativeNumber);
  sweep->add_option("--tokens", sw.tokens, "Tokens per rank n")->delimiter(',')->check(CLI::PositiveNumber);
  sweep->add_option("--format", sw.format, "Output format")
      ->check(CLI::IsMember({"csv", "json"}))
      ->capture_default_str();
  sweep->add_option("--out", sw.out, "Write to this file instead of stdout");

  // ---- presets
  std::string show;
  bool presets_json = false;
  auto* presets = app.add_subcommand("presets", "List the shipped model, cluster and scenario presets");
  presets->add_option("--show", show, "Print this scenario preset's full JSON (a template for your own scenarios)");
  presets->add_flag("--json", presets_json, "List the presets as JSON");

  // ---- derive
  DeriveOptions der;
  auto* derive = app.add_subcommand(
      "derive", "A profile for another GPU from a measured one, by the ratios of two datasheet profiles (compute, HBM); "
                "labelled derived");
  derive->add_option("base", der.base, "Measured profile JSON file or shipped name, e.g. h200x2-measured")->required();
  derive->add_option("--name", der.name, "Name of the derived profile, e.g. h100-derived")->required();
  derive->add_option("--from-sheet", der.from_sheet, "Datasheet profile of the base's GPU")->capture_default_str();
  derive->add_option("--to-sheet", der.to_sheet, "Datasheet profile of the target GPU")->capture_default_str();
  derive->add_option("--out", der.out, "Write the profile JSON to this file instead of stdout");

  // ---- execute, validate, calibrate (GPU)
  ExecuteOptions ex;
  ValidateOptions val;
  CalibrateCliOptions cal;
  CLI::App *execute = nullptr, *validate = nullptr, *calibrate = nullptr;
  add_gpu_commands(app, ex, val, cal, execute, validate, calibrate);
  ImbalanceOptions imb;
  CLI::App* imbalance = add_imbalance_command(app, imb);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }
  if (simulate->parsed()) return run_simulate(sim);
  if (sweep->parsed()) return run_sweep(sw);
  if (presets->parsed()) return run_presets(show, presets_json);
  if (derive->parsed()) return run_derive(der);
  if (execute->parsed()) return run_execute(ex);
  if (validate->parsed()) return run_validate(val);
  if (imbalance->parsed()) return run_imbalance(imb);
  if (calibrate->parsed() && !cal.from_bench.empty()) return run_from_bench(cal);
  if (calibrate->parsed() && !cal.refit.empty()) return run_refit(cal);
  if (calibrate->parsed()) {
    std::string command = "hpsim";
    for (int i = 1; i < argc; ++i) command += std::string(" ") + argv[i];
    return run_calibrate(cal, command);
  }
  return kExitOk;
}
