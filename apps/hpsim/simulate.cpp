// hpsim simulate: EP and HP side by side for one or more scenarios.
#include "simulate.h"

#include <algorithm>
#include <filesystem>
#include <utility>

#include <fmt/format.h>

#include "cli.h"
#include "hpsim/core/json.h"
#include "hpsim/core/presets.h"
#include "hpsim/model/cost.h"
#include "hpsim/model/estimate.h"
#include "hpsim/model/metrics.h"
#include "hpsim/model/plan_builder.h"
#include "hpsim/sim/engine.h"
#include "hpsim/traces/chrome_trace.h"

namespace hpsim::cli {
namespace {

constexpr double kMB = 1e6;
constexpr double kGBytes = 1e9;

std::string scenario_header(const core::Scenario& s, const core::Profile& profile, const std::string& engine) {
  const auto& m = s.model;
  const auto& c = s.cluster;
  const auto& w = s.workload;
  const auto tier = model::tier_name(model::group_tier(c, s.parallel.num_ranks));
  std::string routing = core::to_string(w.routing);
  if (w.routing == core::Routing::kZipf) routing += fmt::format(" (skew {:g})", w.zipf_skew);
  if (w.routing == core::Routing::kTrace) {
    routing.append(" ").append(std::filesystem::path(w.trace_file).filename().string()).append(" (recorded counts)");
  } else {
    routing += fmt::format(", {} mode", core::to_string(w.mode));
  }
  std::string out = fmt::format("{}: {}\n", s.name, s.description.empty() ? m.name : s.description);
  out += fmt::format("  model {}: d={} H={} h={} E={} k={} f={} s={} | {} layers ({} dense), T={}\n", m.name, m.d_model,
                     m.num_heads, m.head_dim, m.num_experts, m.top_k, m.expert_hidden, m.bytes_per_element,
                     m.num_layers, m.num_dense_layers, m.seq_len);
  out += fmt::format("  W={} ranks on {} ({} x {} {}, {} GB), collectives on {} | n={} tokens per rank\n",
                     s.parallel.num_ranks, c.name, c.num_nodes, c.gpus_per_node, c.gpu.name, c.gpu.memory_gb, tier,
                     w.tokens_per_rank);
  out += fmt::format("  routing {}, {} ownership | profile {} ({}) | engine {}\n", routing,
                     core::to_string(w.ownership), profile.name, core::to_string(profile.source), engine);
  return out;
}

// One side of the stage table: 50 columns.
std::string stage_cell(const core::StageCost* st) {
  if (st == nullptr) return fmt::format("{:50}", "");
  const std::string bytes = st->lane == core::Lane::kComm ? fmt::format("{:.3f}", st->bytes / kMB) : "";
  return fmt::format("{:<3} {:<16} {:>9.1f} {:>9.1f} {:>9}", st->phase == core::Phase::kForward ? "fwd" : "bwd",
                     st->stage, st->max_us, st->mean_us, bytes);
}

std::string stage_table(const std::vector<core::StrategyReport>& reports) {
  std::string out = "\n  Stages of one MoE layer, one micro-batch (us: slowest rank, mean over ranks; net MB: bytes the\n"
                    "  bottleneck rank sends or receives in the collective)\n";
  std::string title, header;
  std::size_t rows = 0;
  for (std::size_t i = 0; i < reports.size(); ++i) {
    const char* sep = i == 0 ? "  " : " | ";
    std::string name = reports[i].strategy == "ep" ? "EP" : "HP";
    title += sep + fmt::format("{:<50}", name);
    header += sep + fmt::format("{:<3} {:<16} {:>9} {:>9} {:>9}", "", "stage", "max us", "mean us", "net MB");
    rows = std::max(rows, reports[i].stages.size());
  }
  auto trim = [](std::string line) {
    while (!line.empty() && line.back() == ' ') line.pop_back();
    return line + "\n";
  };
  out += trim(title) + trim(header);
  for (std::size_t r = 0; r < rows; ++r) {
    std::string line;
    for (std::size_t i = 0; i < reports.size(); ++i) {
      const auto& stages = reports[i].stages;
      line += (i == 0 ? "  " : " | ") + stage_cell(r < stages.size() ? &stages[r] : nullptr);
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

struct Row {
  std::string label;
  double (*get)(const model::StrategySummary&);
  const char* format;  // for one value
  bool ratio = true;
};

std::string summary_table(const std::vector<core::StrategyReport>& reports, const core::Scenario& s) {
  std::vector<model::StrategySummary> sums;
  std::vector<std::string> names;
  for (const auto& r : reports) {
    sums.push_back(model::summarize(r));
    names.push_back(r.strategy == "ep" ? "EP" : "HP");
  }
  const bool both = sums.size() == 2 && names[0] == "EP";
  const std::string budget = fmt::format("hours for {:g}B tokens", s.training.token_budget / 1e9);
  // clang-format off
  const std::vector<Row> rows = {
      {"layer forward (us)", [](const model::StrategySummary& x) { return x.layer_forward_us; }, "{:.1f}"},
      {"layer backward (us)", [](const model::StrategySummary& x) { return x.layer_backward_us; }, "{:.1f}"},
      {"layer total (us)", [](const model::StrategySummary& x) { return x.layer_total_us; }, "{:.1f}"},
      {"  of which compute (us)", [](const model::StrategySummary& x) { return x.compute_us; }, "{:.1f}"},
      {"  of which communication (us)", [](const model::StrategySummary& x) { return x.comm_us; }, "{:.1f}"},
      {"dispatch sent per rank, max (MB)", [](const model::StrategySummary& x) { return x.dispatch_sent_max / 1e6; }, "{:.2f}"},
      {"dispatch sent per rank, mean (MB)", [](const model::StrategySummary& x) { return x.dispatch_sent_mean / 1e6; }, "{:.2f}"},
      {"dispatch send imbalance (max/mean)", [](const model::StrategySummary& x) { return x.dispatch_send_imbalance; }, "{:.3f}"},
      {"dispatch receive imbalance (max/mean)", [](const model::StrategySummary& x) { return x.dispatch_receive_imbalance; }, "{:.3f}"},
      {"dispatch busbw (GB/s)", [](const model::StrategySummary& x) { return x.dispatch_busbw_gbps; }, "{:.1f}"},
      {"all-to-all bytes per layer, fwd+bwd (MB)", [](const model::StrategySummary& x) { return x.layer_a2a_bytes_max / 1e6; }, "{:.2f}"},
      {"metadata sent per rank (bytes)", [](const model::StrategySummary& x) { return x.metadata_bytes_per_rank; }, "{:.0f}", false},
      {"peak memory, max rank (GB)", [](const model::StrategySummary& x) { return x.peak_max / 1e9; }, "{:.3f}"},
      {"  weights (GB)", [](const model::StrategySummary& x) { return x.peak_rank.weights / 1e9; }, "{:.3f}"},
      {"  gradients (GB)", [](const model::StrategySummary& x) { return x.peak_rank.gradients / 1e9; }, "{:.3f}"},
      {"  optimizer state (GB)", [](const model::StrategySummary& x) { return x.peak_rank.optimizer / 1e9; }, "{:.3f}"},
      {"  saved activations (GB)", [](const model::StrategySummary& x) { return x.peak_rank.activations / 1e9; }, "{:.3f}"},
      {"  communication buffers (GB)", [](const model::StrategySummary& x) { return x.peak_rank.comm_buffers / 1e9; }, "{:.3f}"},
      {"  workspace (GB)", [](const model::StrategySummary& x) { return x.peak_rank.workspace / 1e9; }, "{:.3f}"},
      {"  rank at the peak", [](const model::StrategySummary& x) { return static_cast<double>(x.peak_rank.rank); }, "{:.0f}", false},
      {"training step (ms)", [](const model::StrategySummary& x) { return x.step_us / 1e3; }, "{:.1f}"},
      {"tokens per second", [](const model::StrategySummary& x) { return x.tokens_per_second; }, "{:.0f}"},
      {budget, [](const model::StrategySummary& x) { return x.hours_for_budget; }, "{:.2f}"},
  };
  // clang-format on
  std::string out = "\n  " + fmt::format("{:<42}", "Summary (one MoE layer; step = whole model)");
  for (const auto& n : names) out += fmt::format("{:>14}", n);
  if (both) out += fmt::format("{:>10}", "HP/EP");
  out += "\n";
  for (const auto& row : rows) {
    std::string line = "  " + fmt::format("{:<42}", row.label);
    for (const auto& sum : sums) line += fmt::format("{:>14}", fmt::format(fmt::runtime(row.format), row.get(sum)));
    if (both && row.ratio) {
      const double ep = row.get(sums[0]);
      line += ep != 0 ? fmt::format("{:>10.3f}", model::ratio(row.get(sums[1]), ep)) : fmt::format("{:>10}", "-");
    }
    out += line + "\n";
  }
  const double capacity = sums.front().capacity_bytes;
  out += fmt::format("  (GPU memory {:.1f} GB; ", capacity / kGBytes);
  std::string over;
  for (std::size_t i = 0; i < sums.size(); ++i) {
    over += fmt::format("{}{}: {} ranks over it", i == 0 ? "" : ", ", names[i], sums[i].num_over_capacity);
  }
  out += over + ")\n";
  return out;
}

// "<stem>.<scenario>.<strategy>.json" when one file would not tell the runs apart.
std::string trace_path(const std::string& base, const std::string& scenario, const std::string& strategy,
                       bool one_scenario, bool one_strategy) {
  std::filesystem::path p(base);
  std::string stem = p.stem().string();
  if (!one_scenario) stem += "." + scenario;
  if (!one_strategy) stem += "." + strategy;
  return (p.parent_path() / (stem + (p.has_extension() ? p.extension().string() : ".json"))).string();
}

// Engine "sim": each strategy's plan placed in time on the cluster's topology by the
// discrete-event simulator; its stage rows, layer times and timeline replace the analytic
// walk's. --trace writes the report's timeline (the simulator's, or the estimate's analytic one)
// as a Chrome trace with the transfers as arrows and bytes in flight as a counter.
core::Status apply_simulator(const core::Scenario& s, const core::Profile& profile, const SimulateOptions& options,
                             std::size_t num_scenarios, core::Report& report) {
  const bool use_sim = options.engine == "sim";
  if (use_sim) report.engine = "sim";
  for (auto& sr : report.strategies) {
    traces::TraceExtras extras;
    if (use_sim) {
      const core::Strategy strategy = sr.strategy == "ep" ? core::Strategy::kEp : core::Strategy::kHp;
      model::PlanOptions po;
      po.save_expert_hidden = !options.recompute_hidden;
      auto plan = model::build_layer_plan(s, profile, strategy, po);
      if (!plan) return plan.error();
      auto result = sim::run_scenario(s, *plan, sim::SimOptions{});
      if (!result) return result.error();
      sr.stages = sim::stage_costs(*plan, result->timeline);
      const auto times = sim::layer_times(result->timeline);
      sr.layer_forward_us = times.forward_us;
      sr.layer_backward_us = times.backward_us;
      sr.layer_total_us = times.total_us;
      sr.timeline = std::move(result->timeline);
      for (const auto& t : result->transfers) {
        extras.flows.push_back({plan->stages[static_cast<std::size_t>(t.stage)].name, t.src, t.dst, t.start_ns,
                                t.end_ns, t.bytes, t.num_flows, core::Lane::kComm, core::Lane::kComm});
      }
      for (const auto& v : result->bytes_in_flight) extras.counters.push_back({"bytes in flight", -1, v.t_ns, v.value});
    }
    if (!options.trace_file.empty()) {
      const std::string path = trace_path(options.trace_file, s.name, sr.strategy, num_scenarios == 1,
                                          report.strategies.size() == 1);
      HPSIM_TRY(traces::write_chrome_trace(path, *sr.timeline, extras));
      print_note(fmt::format("{} {}: trace written to {}", s.name, sr.strategy, path));
    }
  }
  return core::Status::ok();
}

}  // namespace

int run_simulate(const SimulateOptions& options) {
  auto profile = load_profile_arg(options.profile);
  if (!profile) return print_error(profile.error());

  std::vector<core::Scenario> scenarios;
  if (options.scenarios.empty()) {
    scenarios = core::default_scenarios();
  } else {
    bool failed = false;
    for (const auto& arg : options.scenarios) {
      auto s = load_scenario_arg(arg);
      if (!s) {
        print_error(s.error());
        failed = true;
        continue;
      }
      scenarios.push_back(std::move(*s));
    }
    if (failed) return kExitBadInput;
  }

  model::EstimateOptions estimate_options;
  estimate_options.memory.save_expert_hidden = !options.recompute_hidden;
  estimate_options.memory.ep_buffers =
      options.ep_buffers == "worst-case" ? model::EpBufferSizing::kWorstCase : model::EpBufferSizing::kActualCounts;
  estimate_options.with_timeline = options.json || !options.trace_file.empty();

  std::string text;
  std::vector<std::string> json_reports;
  for (std::size_t i = 0; i < scenarios.size(); ++i) {
    const auto& s = scenarios[i];
    auto e = model::estimate(s, *profile, strategies_of(options.strategy), estimate_options);
    if (!e) return print_error(e.error());
    if (options.engine == "sim" || !options.trace_file.empty()) {
      if (auto st = apply_simulator(s, *profile, options, scenarios.size(), e->report); !st) return print_error(st.error());
    }
    if (options.json) {
      for (const auto& note : e->notes) print_note(fmt::format("{}: {} left out", s.name, note));
      json_reports.push_back(core::to_json(e->report));
      continue;
    }
    if (i > 0) text += "\n";
    text += scenario_header(s, *profile, options.engine);
    for (const auto& note : e->notes) text += "  note: left out " + note + "\n";
    text += stage_table(e->report.strategies);
    text += summary_table(e->report.strategies, s);
  }
  if (options.json) {
    text = "[\n";
    for (std::size_t i = 0; i < json_reports.size(); ++i) {
      std::string r = json_reports[i];
      while (!r.empty() && r.back() == '\n') r.pop_back();
      text += r + (i + 1 < json_reports.size() ? ",\n" : "\n");
    }
    text += "]\n";
  }
  if (auto st = emit(options.out, text); !st) return print_error(st.error());
  return kExitOk;
}

}  // namespace hpsim::cli
