#include "gpu_commands.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include <fmt/format.h>

#include "cli.h"
#include "gpu_reports.h"
#include "hpsim/core/json.h"
#include "hpsim/core/presets.h"
#include "hpsim/core/validate.h"
#include "hpsim/exec/calibration_points.h"
#include "hpsim/model/bench_import.h"
#include "hpsim/model/calibration_fit.h"
#include "hpsim/model/estimate.h"

#if HPSIM_HAVE_EXEC
#include "hpsim/exec/calibrate.h"
#include "hpsim/exec/compare.h"
#include "hpsim/exec/executor.h"
#include "hpsim/kernels/comm.h"
#include "hpsim/model/plan_builder.h"
#include "hpsim/sim/engine.h"
#include "hpsim/traces/chrome_trace.h"
#endif

namespace hpsim::cli {

void add_gpu_commands(CLI::App& app, ExecuteOptions& ex, ValidateOptions& val, CalibrateCliOptions& cal,
                      CLI::App*& execute, CLI::App*& validate, CLI::App*& calibrate) {
  execute = app.add_subcommand(
      "execute", "Run a scenario's EP and/or HP layer for real on the local GPUs (forward and backward, real kernels and "
                 "NCCL) and compare every stage with the model's prediction. One process drives all W GPUs; under "
                 "mpirun (`mpirun -np W hpsim execute ...`, one process per GPU, each on its node-local GPU) rank 0 "
                 "prints and writes");
  execute->add_option("scenario", ex.scenario, "Scenario JSON file or preset name (parallel.num_ranks GPUs are used)")
      ->required();
  execute->add_option("--profile", ex.profile, "Profile for the prediction (default: the best shipped profile)");
  execute->add_option("--strategy", ex.strategy, "Which layers to run")
      ->check(CLI::IsMember({"both", "ep", "hp"}))
      ->capture_default_str();
  execute->add_option("--trace", ex.trace,
                      "Write the measured Chrome trace here and the predicted one beside it (<name>.predicted.json); "
                      "with both strategies, <name>.ep.json and <name>.hp.json")
      ;
  execute->add_option("--iterations", ex.iterations, "Timed iterations (the median one is reported)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  execute->add_option("--warmup", ex.warmup, "Warm-up iterations")->check(CLI::NonNegativeNumber)->capture_default_str();
  execute->add_option("--engine", ex.engine, "Prediction to compare with: sim (discrete-event simulator) or analytic")
      ->check(CLI::IsMember({"sim", "analytic"}))
      ->capture_default_str();
  execute->add_flag("--real-router", ex.real_router,
                    "Route with the router's own choices (random weights) instead of the scenario's workload");
  execute->add_flag("--forward-only", ex.forward_only, "Run the forward pass only");
  execute->add_flag("--check-numerics", ex.check_numerics,
                    "Also run each layer once on one GPU with all W ranks' data and print how far the W-GPU output "
                    "(and, with the backward, the input gradient and weight gradients) are from it (relative L2; "
                    "tolerance 1e-2; to stderr with --json); exit 1 past it")
      ->excludes("--real-router");
  execute->add_flag("--json", ex.json, "Print the measured timelines and comparisons as JSON");
  execute->add_option("--out", ex.out, "Write the report to this file instead of stdout");

  validate = app.add_subcommand(
      "validate", "Sweep EP and HP over k in {1,2,4,8}, Zipf skew in {0,1,2} and tokens per rank in {4K,16K,64K} at the "
                  "paper's widths on the local GPUs; print predicted against measured time per stage and in total");
  validate->add_option("--profile", val.profile, "Profile for the prediction (default: the best shipped profile)");
  validate->add_option("--engine", val.engine, "Prediction to compare with: sim (discrete-event simulator) or analytic")
      ->check(CLI::IsMember({"sim", "analytic"}))
      ->capture_default_str();
  validate->add_option("--ranks", val.ranks, "GPUs to use (default: every visible GPU)")->check(CLI::PositiveNumber);
  validate->add_flag("--quick", val.quick, "A smaller grid: k in {1,4}, skew in {0,2}, tokens in {4K,16K}");
  validate->add_option("--iterations", val.iterations, "Timed iterations per point")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  validate->add_flag("--json", val.json,
                     "Print the report as JSON (every point with its stages, and the error summaries) instead of Markdown");
  validate->add_option("--out", val.out, "Also write the report to this file: JSON if its name ends in .json, Markdown otherwise (so one sweep can print the table and keep the JSON)");

  calibrate = app.add_subcommand(
      "calibrate", "Measure this node (both layers' kernels over shapes, NCCL collectives over sizes, copy and GEMM "
                   "ceilings) and fit a profile");
  calibrate->add_option("--out", cal.out, "Profile file to write (default: <name>.json in the current folder)");
  calibrate->add_flag("--quick", cal.quick, "Fewer shapes and message sizes");
  auto* collectives_only = calibrate->add_flag(
      "--collectives-only", cal.collectives_only,
      "Measure only the collectives between the local GPUs (every message size, under a minute) and keep the rest of "
      "--base, which must be a profile measured on this GPU model (after a driver or NCCL change, say)");
  auto* refit = calibrate->add_option(
      "--refit", cal.refit,
      "Measure nothing: fit this profile's stored points again with the current forms and write it to --out (no GPU "
      "needed)");
  auto* from_bench = calibrate->add_option(
      "--from-bench", cal.from_bench,
      "Measure nothing: fit the kernel families from an hpsim-bench JSON file "
      "(--benchmark_out_format=json) and write the profile to --out; the rest from --base (no GPU needed)");
  calibrate
      ->add_option("--recount", cal.recount,
                   "With --refit: first count every stored point's FLOPs, bytes and selections again with the current "
                   "model, for the calibration's scenarios at this many GPUs (those the profile was measured on)")
      ->check(CLI::PositiveNumber)
      ->needs(refit);
  // Three ways to make a profile; one at a time (a usage error, not a silently ignored flag).
  collectives_only->excludes(refit)->excludes(from_bench);
  refit->excludes(from_bench);
  calibrate->add_option("--base", cal.base,
                        "Profile whose values are carried over where this node cannot measure, labelled as such in "
                        "the note (collectives of tiers it lacks, the fp32 ceiling, the dense families)")
      ->capture_default_str();
}

CLI::App* add_imbalance_command(CLI::App& app, ImbalanceOptions& o) {
  auto* cmd = app.add_subcommand(
      "imbalance",
      "EP against HP under skewed routing on the local GPUs: for k in {1,2,4,8} and Zipf skew in {0,1,2} over the "
      "paper's 768 experts (owned contiguously), the measured all-to-all time of the slowest rank (waiting "
      "included) and the peak memory per rank, beside the prediction");
  cmd->add_option("--profile", o.profile, "Profile for the prediction (default: the best shipped profile)");
  cmd->add_option("--engine", o.engine, "Prediction to compare with: sim (discrete-event simulator) or analytic")
      ->check(CLI::IsMember({"sim", "analytic"}))
      ->capture_default_str();
  cmd->add_option("--ranks", o.ranks, "GPUs to use (default: every visible GPU)")->check(CLI::PositiveNumber);
  cmd->add_option("--tokens", o.tokens, "Tokens per rank")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_flag("--quick", o.quick, "A smaller grid: k in {1,8}, skew in {0,2}");
  cmd->add_option("--iterations", o.iterations, "Timed iterations per point")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_flag("--json", o.json, "Print the report as JSON (every point, and the growth under skew) instead of Markdown");
  cmd->add_option("--out", o.out, "Also write the report to this file: JSON if its name ends in .json, Markdown otherwise (so one sweep can print the table and keep the JSON)");
  return cmd;
}

namespace {

// One line per measured collective of `profile`: its line(s) and fit error (with `before`, the
// error of the same entry there).
void print_collective_fits(const core::Profile& profile, const core::Profile* before = nullptr) {
  for (const auto& [tier, by_name] : profile.collectives) {
    for (const auto& [name, fit] : by_name) {
      if (fit.points.size() < 2) continue;
      std::printf("  %-10s %-13s alpha %5.1f us, efficiency %.3f", tier.c_str(), name.c_str(), fit.alpha_us, fit.efficiency);
      if (fit.has_large_line()) std::printf("; large messages: alpha %5.1f us, efficiency %.3f", fit.large_alpha_us, fit.large_efficiency);
      std::printf("; fit error ");
      if (before != nullptr) std::printf("%.1f%% -> ", 100 * before->collectives.at(tier).at(name).fit_error);
      std::printf("%.1f%% (%zu sizes)\n", 100 * fit.fit_error, fit.points.size());
    }
  }
}

}  // namespace

#if HPSIM_HAVE_EXEC

namespace {

// Prints a sweep's report (JSON with `json`, Markdown otherwise) and, with `out`, also writes it
// there in the format the file's name asks for: JSON if it ends in ".json", Markdown otherwise.
int print_and_write_report(bool json, const std::string& out, const nlohmann::json& as_json,
                           const std::string& as_markdown) {
  const std::string json_text = as_json.dump(1) + "\n";
  const std::string& printed = json ? json_text : as_markdown;
  std::fwrite(printed.data(), 1, printed.size(), stdout);
  if (out.empty()) return kExitOk;
  std::string ext = std::filesystem::path(out).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const bool json_file = ext == ".json";
  if (auto st = core::write_text_file(out, json_file ? json_text : as_markdown); !st) return print_error(st.error());
  return kExitOk;
}

std::string stem_with(const std::string& path, const std::string& tag) {
  std::filesystem::path p(path);
  const std::string ext = p.has_extension() ? p.extension().string() : ".json";
  return (p.parent_path() / (p.stem().string() + tag + ext)).string();
}

// The number of visible GPUs; with none, says so for `command` and returns 0.
int visible_gpus_for(const char* command) {
  const int visible = kernels::visible_device_count();
  if (visible == 0) std::fprintf(stderr, "error: %s needs a GPU and none is visible\n", command);
  return visible;
}

// The sweeps drive every local GPU from one process; started as one of several processes by
// mpirun they would each do so. Says so and returns true then.
bool refuse_under_mpirun(const char* command) {
  if (!kernels::started_by_mpirun()) return false;
  std::fprintf(stderr,
               "error: %s drives every local GPU from one process: start it without mpirun (`hpsim execute` is the "
               "command that runs one process per GPU under mpirun)\n",
               command);
  return true;
}

// One point of the GPU sweeps: the paper's 4.2B widths on one node of w GPUs with top-k k,
// uniform (skew 0) or Zipf routing, n tokens per rank.
core::Scenario sweep_point(const std::string& name, core::Strategy strategy, std::int64_t k, double skew,
                           std::int64_t n, int w) {
  core::Scenario s = core::scenario_preset("paper-4.2b-h200x8-uniform").value();
  s.name = name;
  s.model.top_k = k;
  s.workload.tokens_per_rank = n;
  s.workload.routing = skew > 0 ? core::Routing::kZipf : core::Routing::kUniform;
  s.workload.zipf_skew = skew;
  s.parallel = {strategy, w};
  s.cluster.num_nodes = 1;
  s.cluster.gpus_per_node = std::max(w, 1);
  return s;
}

// The prediction to compare with: the simulator's timeline (engine "sim", the default) or the
// analytic walk's (engine "analytic"), of the same plan.
core::Expected<core::Timeline> predicted_timeline(const core::Scenario& s, const core::Profile& profile,
                                                  core::Strategy strategy, bool forward_only, const std::string& engine,
                                                  core::StrategyReport* report_out) {
  core::Scenario copy = s;
  copy.parallel.strategy = strategy;
  // HP's fused expert MLP recomputes its activation; EP's grouped MLP keeps it.
  const bool save_hidden = strategy == core::Strategy::kEp;
  if (report_out != nullptr) {
    model::EstimateOptions eo;
    eo.with_timeline = false;
    eo.with_step = false;
    eo.memory.save_expert_hidden = save_hidden;
    auto report = model::estimate_strategy(copy, profile, strategy, eo);
    if (!report) return report.error();
    *report_out = *report;
  }
  model::PlanOptions po;
  po.include_backward = !forward_only;
  po.save_expert_hidden = save_hidden;
  auto plan = model::build_layer_plan(copy, profile, strategy, po);
  if (!plan) return plan.error();
  if (engine == "sim") {
    auto result = sim::run_scenario(copy, *plan, sim::SimOptions{});
    if (!result) return result.error();
    return result->timeline;
  }
  return model::analytic_timeline(*plan, model::walk_plan(*plan));
}

}  // namespace

namespace {

// `hpsim execute` in this process: every rank (one process) or, with `process`, this MPI rank;
// rank 0 alone prints and writes.
int execute_here(const ExecuteOptions& o, const kernels::MpiProcess* process) {
  const bool root = process == nullptr || process->rank == 0;
  bool numerics_failed = false;
  auto scenario = load_scenario_arg(o.scenario);
  if (!scenario) return print_error(scenario.error());
  auto profile = load_profile_arg(o.profile);
  if (!profile) return print_error(profile.error());
  if (visible_gpus_for("execute") == 0) return kExitNoGpu;
  std::string text;
  std::string json = "[";
  const auto strategies = strategies_of(o.strategy);
  for (core::Strategy strategy : strategies) {
    if (auto errors = core::check_strategy(*scenario, strategy); !errors.empty()) {
      if (root) print_note(fmt::format("{} left out: {}", to_string(strategy), errors[0].to_string()));
      continue;
    }
    exec::ExecOptions eo;
    eo.iterations = o.iterations;
    eo.warmup_iterations = o.warmup;
    eo.include_backward = !o.forward_only;
    eo.forced_routing = !o.real_router;
    eo.mpi = process != nullptr;
    if (root) eo.progress = [](const std::string& line) { print_note(line); };
    auto run = exec::execute_layer(*scenario, strategy, eo);
    if (!run) {
      print_error(run.error());
      return run.error().code == core::ErrorCode::kNoDevice ? kExitNoGpu : kExitBadInput;
    }
    core::StrategyReport predicted_report;
    auto predicted = predicted_timeline(*scenario, *profile, strategy, o.forward_only, o.engine, &predicted_report);
    if (!predicted) return print_error(predicted.error());
    const auto cmp = exec::compare_timelines(*predicted, run->timeline);
    text += fmt::format("{} layer of {} on {} x {} (NCCL {}), {} routing, {} warm-up + {} timed iterations\n",
                        to_string(strategy), scenario->name, scenario->parallel.num_ranks, run->device_name,
                        run->nccl_version, o.real_router ? "router's own" : "forced (workload)", o.warmup,
                        o.iterations);
    text += fmt::format("  predicted by the {} with profile {} ({})\n",
                        o.engine == "sim" ? "discrete-event simulator" : "analytic model", profile->name,
                        to_string(profile->source));
    text += fmt::format("  {:<4} {:<18} {:>13} {:>13} {:>9}\n", "", "stage (slowest rank)", "predicted us",
                        "measured us", "error");
    for (const auto& st : cmp.stages) {
      text += fmt::format("  {:<4} {:<18} {:>13.1f} {:>13.1f} {:>9}\n", st.phase == core::Phase::kForward ? "fwd" : "bwd",
                          st.stage, st.predicted_us, st.measured_us, pct(st.relative_error));
    }
    text += fmt::format("  {:<23} {:>13.1f} {:>13.1f} {:>9}\n", "layer total", cmp.predicted_total_us,
                        cmp.measured_total_us, pct(cmp.total_relative_error));
    std::string iters;
    for (double us : run->iteration_us) iters += fmt::format(" {:.1f}", us);
    text += fmt::format("  timed iterations (us):{}\n", iters);
    {
      // Part by part, on the rank with the largest measured peak. The executor holds no optimizer
      // state and keeps bf16 gradients; the model's parts follow the scenario's training spec.
      const auto& ranks = run->memory.ranks;
      const auto it = std::max_element(ranks.begin(), ranks.end(),
                                        [](const core::RankMemory& a, const core::RankMemory& b) { return a.peak() < b.peak(); });
      const core::RankMemory m = it != ranks.end() ? *it : core::RankMemory{};
      core::RankMemory p;
      for (const auto& r : predicted_report.memory.ranks) {
        if (r.rank == m.rank) p = r;
      }
      text += fmt::format("  peak memory, rank {} (GB)   measured  model\n", m.rank);
      const std::pair<const char*, std::pair<double, double>> parts[] = {
          {"weights", {m.weights, p.weights}},           {"gradients", {m.gradients, p.gradients}},
          {"optimizer state", {m.optimizer, p.optimizer}}, {"saved activations", {m.activations, p.activations}},
          {"communication buffers", {m.comm_buffers, p.comm_buffers}}, {"workspace", {m.workspace, p.workspace}}};
      for (const auto& [name, v] : parts) {
        text += fmt::format("    {:<24} {:>8.3f} {:>6.3f}\n", name, v.first / 1e9, v.second / 1e9);
      }
      text += fmt::format("    {:<24} {:>8.3f} {:>6.3f}\n", "total", m.peak() / 1e9, p.peak() / 1e9);
    }
    for (const auto& m : run->traffic) {
      text += fmt::format("  {:<13} bytes sent, max rank: {:.3f} MB (send imbalance {:.3f})\n", m.phase,
                          m.max_sent() / 1e6, m.send_imbalance());
    }
    text += "\n";
    if (json.size() > 1) json += ",";
    core::Report rep;
    rep.scenario = scenario->name;
    rep.engine = "executed";
    rep.profile = profile->name;
    core::StrategyReport sr;
    sr.strategy = to_string(strategy);
    sr.layer_total_us = cmp.measured_total_us;
    sr.traffic = run->traffic;
    sr.memory = run->memory;
    sr.timeline = run->timeline;
    rep.strategies.push_back(sr);
    json += core::to_json(rep);
    if (!o.trace.empty() && root) {
      const std::string measured_path = strategies.size() > 1 ? stem_with(o.trace, std::string(".") + to_string(strategy)) : o.trace;
      if (auto st = traces::write_chrome_trace(measured_path, run->timeline); !st) return print_error(st.error());
      const std::string predicted_path = stem_with(measured_path, ".predicted");
      if (auto st = traces::write_chrome_trace(predicted_path, *predicted); !st) return print_error(st.error());
      print_note(fmt::format("traces: {} (measured), {} (predicted)", measured_path, predicted_path));
    }
    if (o.check_numerics) {
      auto check = exec::check_numerics(*scenario, strategy, eo);
      if (!check) return print_error(check.error());
      std::string table = fmt::format("{} layer on {} GPU(s) against the same layer on one GPU (one {}; tolerance {:g} "
                                      "relative L2):\n",
                                      to_string(strategy), check->ranks, o.forward_only ? "forward" : "forward + backward",
                                      exec::kNumericsTolerance);
      for (const auto& t : check->tensors) {
        table += fmt::format("  {:<9} {:>11} values{:<10} relative L2 {:.2e}  max |diff| {:.2e}  {}\n", t.tensor, t.count,
                             t.summed_over_ranks ? " (summed)" : "", t.relative_l2, t.max_abs,
                             t.relative_l2 <= exec::kNumericsTolerance ? "ok" : "OVER");
      }
      // The JSON report keeps its schema: with --json the table goes to stderr.
      if (o.json) {
        std::fputs(table.c_str(), stderr);
      } else {
        text += table + "\n";
      }
      if (!check->passed()) numerics_failed = true;
    }
  }
  json += "]\n";
  if (!root) return kExitOk;
  if (auto st = emit(o.out, o.json ? json : text); !st) return print_error(st.error());
  if (numerics_failed) {
    std::fprintf(stderr, "error: the W-GPU layer differs from the one-GPU layer by more than %g\n", exec::kNumericsTolerance);
    return kExitBadInput;
  }
  return kExitOk;
}

}  // namespace

int run_execute(const ExecuteOptions& o) {
  if (!kernels::started_by_mpirun()) return execute_here(o, nullptr);
  if (o.check_numerics) {
    return print_error(core::Error::field("--check-numerics", "runs from one process driving every GPU: start it "
                                                                "without mpirun"));
  }
  // One process per GPU: every process runs its rank; a failing one ends the job, since the
  // others may be waiting for it in a collective.
  auto process = kernels::mpi_start();
  if (!process) return print_error(process.error());
  const int code = execute_here(o, &*process);
  if (code != kExitOk) kernels::mpi_abort(code);
  kernels::mpi_finish();
  return code;
}

int run_validate(const ValidateOptions& o) {
  auto profile = load_profile_arg(o.profile);
  if (!profile) return print_error(profile.error());
  if (refuse_under_mpirun("validate")) return kExitUsage;
  const int visible = visible_gpus_for("validate");
  if (visible == 0) return kExitNoGpu;
  const int w = o.ranks > 0 ? o.ranks : visible;
  const std::vector<std::int64_t> ks = o.quick ? std::vector<std::int64_t>{1, 4} : std::vector<std::int64_t>{1, 2, 4, 8};
  const std::vector<double> skews = o.quick ? std::vector<double>{0, 2} : std::vector<double>{0, 1, 2};
  const std::vector<std::int64_t> tokens =
      o.quick ? std::vector<std::int64_t>{4096, 16384} : std::vector<std::int64_t>{4096, 16384, 65536};
  ValidationReport report;
  report.predictor = o.engine == "sim" ? "simulator" : "analytic model";
  report.profile = profile->name;
  report.ranks = w;
  const std::size_t total = 2 * ks.size() * skews.size() * tokens.size();
  std::size_t done = 0;
  for (core::Strategy strategy : {core::Strategy::kEp, core::Strategy::kHp}) {
    for (auto k : ks) {
      for (double skew : skews) {
        for (auto n : tokens) {
          const core::Scenario s =
              sweep_point(fmt::format("validate-{}-k{}-s{}-n{}", to_string(strategy), k, skew, n), strategy, k, skew, n, w);
          std::fprintf(stderr, "\r[%3zu/%3zu] %-48s", done + 1, total, s.name.c_str());
          std::fflush(stderr);
          exec::ExecOptions eo;
          eo.iterations = o.iterations;
          eo.warmup_iterations = 2;
          auto run = exec::execute_layer(s, strategy, eo);
          if (!run) {
            std::fprintf(stderr, "\n");
            print_error(run.error());
            return run.error().code == core::ErrorCode::kNoDevice ? kExitNoGpu : kExitBadInput;
          }
          auto predicted = predicted_timeline(s, *profile, strategy, false, o.engine, nullptr);
          if (!predicted) return print_error(predicted.error());
          const auto cmp = exec::compare_timelines(*predicted, run->timeline);
          ValidationPoint point{to_string(strategy), k, skew, n, cmp.predicted_total_us, cmp.measured_total_us,
                                cmp.total_relative_error, {}};
          for (const auto& st : cmp.stages) {
            if (st.in_predicted && st.in_measured && st.measured_us > 0) {
              point.stages.push_back({st.phase == core::Phase::kForward ? "fwd" : "bwd", st.stage, st.predicted_us,
                                      st.measured_us, st.relative_error});
            }
          }
          report.points.push_back(std::move(point));
          ++done;
        }
      }
    }
  }
  std::fprintf(stderr, "\n");
  return print_and_write_report(o.json, o.out, validation_json(report), validation_markdown(report));
}

namespace {

// Communication time of the slowest rank: the sum of its all-to-all spans (a span lasts until
// the collective completes on that rank, so waiting for the slowest peer is included).
double comm_us_slowest_rank(const core::Timeline& t) {
  double worst = 0;
  for (const auto& r : t.ranks) {
    double ns = 0;
    for (const auto& sp : r.spans) {
      if (sp.lane == core::Lane::kComm) ns += static_cast<double>(sp.duration_ns());
    }
    worst = std::max(worst, ns / 1e3);
  }
  return worst;
}

double min_peak(const core::MemoryReport& m) {
  double v = m.ranks.empty() ? 0.0 : m.ranks.front().peak();
  for (const auto& r : m.ranks) v = std::min(v, r.peak());
  return v;
}

}  // namespace

int run_imbalance(const ImbalanceOptions& o) {
  auto profile = load_profile_arg(o.profile);
  if (!profile) return print_error(profile.error());
  if (refuse_under_mpirun("imbalance")) return kExitUsage;
  const int visible = visible_gpus_for("imbalance");
  if (visible == 0) return kExitNoGpu;
  const int w = o.ranks > 0 ? o.ranks : visible;
  const std::vector<std::int64_t> ks = o.quick ? std::vector<std::int64_t>{1, 8} : std::vector<std::int64_t>{1, 2, 4, 8};
  const std::vector<double> skews = o.quick ? std::vector<double>{0, 2} : std::vector<double>{0, 1, 2};
  ImbalanceReport report;
  report.predictor = o.engine == "sim" ? "simulator" : "analytic model";
  report.profile = profile->name;
  report.ranks = w;
  report.tokens_per_rank = o.tokens;
  const std::size_t total = 2 * ks.size() * skews.size();
  std::size_t done = 0;
  for (core::Strategy strategy : {core::Strategy::kEp, core::Strategy::kHp}) {
    for (auto k : ks) {
      for (double skew : skews) {
        core::Scenario s =
            sweep_point(fmt::format("imbalance-{}-k{}-s{}", to_string(strategy), k, skew), strategy, k, skew, o.tokens, w);
        s.workload.ownership = core::Ownership::kContiguous;
        std::fprintf(stderr, "\r[%3zu/%3zu] %-40s", done + 1, total, s.name.c_str());
        std::fflush(stderr);
        exec::ExecOptions eo;
        eo.iterations = o.iterations;
        auto run = exec::execute_layer(s, strategy, eo);
        if (!run) {
          std::fprintf(stderr, "\n");
          print_error(run.error());
          return run.error().code == core::ErrorCode::kNoDevice ? kExitNoGpu : kExitBadInput;
        }
        core::StrategyReport predicted_report;
        auto predicted = predicted_timeline(s, *profile, strategy, false, o.engine, &predicted_report);
        if (!predicted) return print_error(predicted.error());
        report.points.push_back({to_string(strategy), k, skew, comm_us_slowest_rank(run->timeline),
                                 comm_us_slowest_rank(*predicted), static_cast<double>(run->timeline.end_ns()) / 1e3,
                                 run->memory.max_peak(), min_peak(run->memory), predicted_report.memory.max_peak()});
        ++done;
      }
    }
  }
  std::fprintf(stderr, "\n");
  return print_and_write_report(o.json, o.out, imbalance_json(report), imbalance_markdown(report));
}

int run_calibrate(const CalibrateCliOptions& o, const std::string& command_line) {
  auto base = load_profile_arg(o.base);
  if (!base) return print_error(base.error());
  if (refuse_under_mpirun("calibrate")) return kExitUsage;
  if (visible_gpus_for("calibrate") == 0) return kExitNoGpu;
  exec::CalibrateOptions co;
  co.quick = o.quick;
  co.collectives_only = o.collectives_only;
  co.base = *base;
  co.command = command_line;
  co.progress = [](int done, int total, const std::string& what) {
    const int width = 30;
    const int filled = total > 0 ? done * width / total : 0;
    std::fprintf(stderr, "\r[%s%s] %3d/%3d %-44.44s", std::string(static_cast<std::size_t>(filled), '#').c_str(),
                 std::string(static_cast<std::size_t>(width - filled), '.').c_str(), done, total, what.c_str());
    std::fflush(stderr);
  };
  auto profile = exec::calibrate(co);
  std::fprintf(stderr, "\n");
  if (!profile) {
    print_error(profile.error());
    return profile.error().code == core::ErrorCode::kNoDevice ? kExitNoGpu : kExitBadInput;
  }
  const std::string out = o.out.empty() ? profile->name + ".json" : o.out;
  if (auto st = core::write_text_file(out, core::to_json(*profile)); !st) return print_error(st.error());
  std::printf("wrote %s: %zu kernel families, copy %.0f GB/s, bf16 GEMM %.0f TFLOP/s, host round trip %.1f us\n",
              out.c_str(), profile->kernels.size(), profile->hbm_gbps, profile->bf16_tflops, profile->host_sync_us);
  for (const auto& [name, fit] : profile->kernels) {
    if (fit.points.empty() || o.collectives_only) continue;
    std::printf("  %-20s alpha %7.1f us  %8.1f TFLOP/s  %8.1f GB/s", name.c_str(), fit.alpha_us, fit.tflops, fit.gbps);
    if (fit.select_gps > 0) std::printf("  %7.1f G selections/s", fit.select_gps);
    std::printf("  fit error %5.1f%%  (%zu points)\n", 100 * fit.fit_error, fit.points.size());
  }
  print_collective_fits(*profile);
  return kExitOk;
}

#else  // no CUDA executor in this build

namespace {
int not_built(const char* what) {
  std::fprintf(stderr,
               "error: %s runs on GPUs, and this build has no CUDA executor (configure with CUDA and NCCL, e.g. "
               "cmake --preset gpu)\n",
               what);
  return kExitNoGpu;
}
}  // namespace

int run_execute(const ExecuteOptions&) { return not_built("execute"); }
int run_validate(const ValidateOptions&) { return not_built("validate"); }
int run_imbalance(const ImbalanceOptions&) { return not_built("imbalance"); }
int run_calibrate(const CalibrateCliOptions&, const std::string&) { return not_built("calibrate"); }

#endif

int run_refit(const CalibrateCliOptions& o) {
  if (o.out.empty()) return print_error(core::Error::field("--out", "needed with --refit"));
  auto profile = load_profile_arg(o.refit);
  if (!profile) return print_error(core::Error::field("--refit", profile.error().message));
  core::Profile points = *profile;
  if (o.recount > 0) {
    auto recounted = exec::recount_points(*profile, o.recount);
    if (!recounted) return print_error(core::Error{recounted.error().code, "--recount: " + recounted.error().message});
    auto close = [](double a, double b) { return std::abs(a - b) <= 1e-9 * std::abs(a); };
    int changed = 0, total = 0;
    for (const auto& [name, fit] : recounted->kernels) {
      const auto& stored = profile->kernels.at(name).points;
      for (std::size_t i = 0; i < fit.points.size(); ++i, ++total) {
        const auto &a = stored[i], &b = fit.points[i];
        changed += close(a.flops, b.flops) && close(a.bytes, b.bytes) && close(a.selections, b.selections) ? 0 : 1;
      }
    }
    std::printf("recounted %d points at %lld GPUs: %d with other counts than stored\n", total,
                static_cast<long long>(o.recount), changed);
    points = std::move(*recounted);
    const std::string said_recount = fmt::format(
        " Points counted again by the current model (`hpsim calibrate --refit --recount {}`).", o.recount);
    if (points.note.find(said_recount) == std::string::npos) points.note += said_recount;
  }
  auto refit = model::refit_profile(points);
  if (!refit) return print_error(refit.error());
  const std::string said = " Kernel fits redone from the stored points by `hpsim calibrate --refit` (the expert MLPs "
                           "in the roofline form).";
  const std::string said_collectives = " Collective fits redone from the stored points by `hpsim calibrate --refit` "
                                       "(a second line for the large messages where the points show one).";
  if (refit->note.find(said) == std::string::npos) refit->note += said;
  if (refit->note.find(said_collectives) == std::string::npos) refit->note += said_collectives;
  if (auto st = core::write_text_file(o.out, core::to_json(*refit)); !st) return print_error(st.error());
  std::printf("wrote %s\n", o.out.c_str());
  for (const auto& [name, fit] : refit->kernels) {
    if (fit.points.empty()) continue;
    const auto& before = profile->kernels.at(name);
    std::printf("  %-20s %-8s fit error %5.1f%% -> %5.1f%%\n", name.c_str(), fit.roofline ? "roofline" : "sum",
                100 * before.fit_error, 100 * fit.fit_error);
  }
  print_collective_fits(*refit, &*profile);
  return kExitOk;
}

int run_from_bench(const CalibrateCliOptions& o) {
  if (o.out.empty()) return print_error(core::Error::field("--out", "needed with --from-bench"));
  auto base = load_profile_arg(o.base);
  if (!base) return print_error(core::Error::field("--base", base.error().message));
  auto text = core::read_text_file(o.from_bench);
  if (!text) return print_error(core::Error::field("--from-bench", text.error().message));
  auto imported = model::kernel_points_from_bench(*text);
  if (!imported) return print_error(core::Error::field("--from-bench", imported.error().message));
  if (imported->points.empty()) {
    return print_error(core::Error::field("--from-bench", fmt::format("{}: no case of a family the layers run ({} skipped)",
                                                                      o.from_bench, imported->skipped.size())));
  }
  core::Profile profile = *base;
  profile.name = std::filesystem::path(o.out).stem().string();
  profile.source = core::ProfileSource::kMeasured;
  if (!imported->gpu.empty()) profile.gpu = imported->gpu;
  if (!imported->date.empty()) profile.date = imported->date;
  if (imported->copy_gbps > 0) profile.hbm_gbps = imported->copy_gbps;
  if (imported->bf16_tflops > 0) profile.bf16_tflops = imported->bf16_tflops;
  std::string fitted;
  std::size_t cases = 0;
  for (auto it = imported->points.begin(); it != imported->points.end();) {
    auto fit = model::fit_family(it->first, it->second);
    if (!fit) {  // e.g. one shape only: the base's fit stays
      std::fprintf(stderr, "kept %s from %s: %s\n", it->first.c_str(), base->name.c_str(), fit.error().message.c_str());
      it = imported->points.erase(it);
      continue;
    }
    profile.kernels[it->first] = *fit;
    fitted += (fitted.empty() ? "" : ", ") + it->first;
    cases += it->second.size();
    ++it;
  }
  if (imported->points.empty()) {
    return print_error(core::Error::field("--from-bench", fmt::format("{}: no family could be fitted", o.from_bench)));
  }
  profile.note = fmt::format(
      "Kernel families {} fitted by `hpsim calibrate --from-bench {}` from {} hpsim-bench cases (the model's FLOPs and "
      "bytes of each case's shape against its median); every other family, the collectives and the host round trip "
      "from {}.",
      fitted, std::filesystem::path(o.from_bench).filename().string(), cases, base->name);
  if (auto st = core::write_text_file(o.out, core::to_json(profile)); !st) return print_error(st.error());
  std::printf("wrote %s: %zu families from %zu cases (%zu cases skipped)\n", o.out.c_str(), imported->points.size(), cases,
              imported->skipped.size());
  for (std::size_t i = 0; i < imported->skipped.size() && i < 3; ++i) std::fprintf(stderr, "skipped %s\n", imported->skipped[i].c_str());
  if (imported->skipped.size() > 3) std::fprintf(stderr, "skipped %zu more cases\n", imported->skipped.size() - 3);
  for (const auto& [family, points] : imported->points) {
    const auto& fit = profile.kernels.at(family);
    std::printf("  %-20s %-8s %2zu points  fit error %5.1f%%\n", family.c_str(), fit.roofline ? "roofline" : "sum", points.size(),
                100 * fit.fit_error);
  }
  return kExitOk;
}

}  // namespace hpsim::cli
