#pragma once
// The commands that run on GPUs: execute, validate, imbalance, calibrate. In a build without the CUDA
// executor they exist (with --help) and say so when run.

#include <cstdint>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace hpsim::cli {

// "needs a GPU and there is none" (CONVENTIONS.md).
inline constexpr int kExitNoGpu = 77;

struct ExecuteOptions {
  std::string scenario;
  std::string profile;
  std::string strategy = "both";
  std::string engine = "sim";
  std::string trace;
  int iterations = 5;
  int warmup = 2;
  bool real_router = false;
  bool forward_only = false;
  bool check_numerics = false;
  bool json = false;
  std::string out;
};

struct ValidateOptions {
  std::string profile;
  int ranks = 0;  // 0 = every visible GPU
  std::string engine = "sim";
  bool quick = false;
  bool json = false;
  std::string out;  // the report, as printed
  int iterations = 5;
};

struct CalibrateCliOptions {
  std::string out;
  bool quick = false;
  bool collectives_only = false;         // measure the collectives only, the rest from --base
  std::string base = "h200-datasheet";  // where the node cannot measure: a datasheet, not another measurement
  std::string refit;                     // a profile whose stored points are fitted again (no GPU)
  std::int64_t recount = 0;              // with refit: count the points again for this many GPUs first
  std::string from_bench;                // an hpsim-bench JSON file whose cases are fitted (no GPU)
};

// `hpsim calibrate --refit PROFILE [--recount W]`: the kernel and collective fits of a measured
// profile redone from its stored points with the current forms (model::refit_profile), written to
// --out; with --recount, the points' FLOPs, bytes and selections are first counted again by the
// current model for the calibration scenarios at W GPUs (exec::recount_points). Needs no GPU.
int run_refit(const CalibrateCliOptions& options);

// `hpsim calibrate --from-bench BENCH.json`: the kernel families fitted from hpsim-bench's cases
// (model::kernel_points_from_bench), the rest carried from --base, written to --out. Needs no GPU.
int run_from_bench(const CalibrateCliOptions& options);

struct ImbalanceOptions {
  std::string profile;
  int ranks = 0;  // 0 = every visible GPU
  std::string engine = "sim";
  bool quick = false;
  std::int64_t tokens = 16384;
  int iterations = 5;
  bool json = false;
  std::string out;  // the report, as printed
};

// `hpsim imbalance`: EP against HP under skewed routing on the local GPUs.
CLI::App* add_imbalance_command(CLI::App& app, ImbalanceOptions& options);
int run_imbalance(const ImbalanceOptions& options);

void add_gpu_commands(CLI::App& app, ExecuteOptions& exec, ValidateOptions& val, CalibrateCliOptions& cal,
                      CLI::App*& execute, CLI::App*& validate, CLI::App*& calibrate);
int run_execute(const ExecuteOptions& options);
int run_validate(const ValidateOptions& options);
int run_calibrate(const CalibrateCliOptions& options, const std::string& command_line);

}  // namespace hpsim::cli
