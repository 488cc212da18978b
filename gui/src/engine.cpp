// Engine: wiring from the GUI to the hpsim libraries. Which calls exist depends on the libraries
// this build linked (HPSIM_GUI_HAVE_* from gui/CMakeLists.txt); nothing here computes a model
// quantity itself.
#include "hpsim/gui/engine.h"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "hpsim/core/json.h"

#if HPSIM_GUI_HAVE_MODEL
#include "hpsim/model/memory.h"
#include "hpsim/model/traffic.h"
#include "hpsim/model/workload.h"
#endif
#if HPSIM_GUI_HAVE_SIM
#include "hpsim/model/plan_builder.h"
#include "hpsim/sim/engine.h"
#endif
#if HPSIM_GUI_HAVE_TRACES
#include "hpsim/traces/chrome_trace.h"
#endif
#if HPSIM_GUI_HAVE_ESTIMATE
#include <filesystem>

#include "hpsim/model/data_files.h"
#include "hpsim/model/estimate.h"
#include "hpsim/model/metrics.h"
#endif

namespace hpsim::gui {
namespace {

constexpr core::Strategy kBoth[] = {core::Strategy::kEp, core::Strategy::kHp};

bool same(const core::FieldError& a, const core::FieldError& b) { return a.path == b.path && a.rule == b.rule; }

#if HPSIM_GUI_HAVE_MODEL
// Traffic and memory only: what hpsim::model answers without a profile.
core::Expected<core::StrategyReport> traffic_and_memory(const core::Scenario& scenario, core::Strategy strategy) {
  auto workload = model::build_workload(scenario, strategy);
  if (!workload) return workload.error();
  core::StrategyReport out;
  out.strategy = core::to_string(strategy);
  auto traffic = model::layer_traffic(scenario.model, *workload);
  out.traffic = std::move(traffic.phases);
  out.metadata_bytes_per_rank = traffic.metadata_bytes_per_rank;
  out.memory = model::layer_memory(scenario, *workload);
  return out;
}
#endif

// Replaces each strategy's analytic timeline with the simulator's, or says why it could not.
void simulate_timelines(const core::Scenario& scenario, const core::Profile& profile, EngineResult& result) {
#if HPSIM_GUI_HAVE_SIM
  for (auto& s : result.report.strategies) {
    const core::Strategy strategy = s.strategy == "ep" ? core::Strategy::kEp : core::Strategy::kHp;
    auto plan = model::build_layer_plan(scenario, profile, strategy);
    if (!plan) {
      result.notes.push_back(fmt::format("{}: simulated timeline: {}", s.strategy, plan.error().message));
      continue;
    }
    auto simulated = sim::run_scenario(scenario, *plan);
    if (!simulated) {
      result.notes.push_back(fmt::format("{}: simulated timeline: {}", s.strategy, simulated.error().message));
      continue;
    }
    s.timeline = std::move(simulated->timeline);
  }
  result.notes.push_back("timelines: discrete-event simulator (hpsim::sim); stage costs and layer times: analytic");
#else
  (void)scenario;
  (void)profile;
  result.notes.push_back("timelines: the simulator (hpsim::sim) is not in this build; showing the analytic walk");
#endif
}

void fill_metrics(EngineResult& result) {
#if HPSIM_GUI_HAVE_ESTIMATE
  for (const auto& s : result.report.strategies) {
    const auto m = model::summarize(s);
    result.metrics[s.strategy] = {m.compute_us,          m.comm_us,  m.dispatch_sent_max, m.dispatch_busbw_gbps,
                                  m.layer_a2a_bytes_max, m.peak_max, m.num_over_capacity};
  }
#else
  (void)result;
#endif
}

}  // namespace

const core::StrategyReport* EngineResult::strategy(const std::string& name) const {
  for (const auto& s : report.strategies) {
    if (s.strategy == name) return &s;
  }
  return nullptr;
}

const StrategyMetrics* EngineResult::metrics_of(const std::string& name) const {
  auto it = metrics.find(name);
  return it == metrics.end() ? nullptr : &it->second;
}

core::Expected<core::Profile> Engine::load_profile(const std::string& file_or_name) {
#if HPSIM_GUI_HAVE_ESTIMATE
  return model::load_model_profile(file_or_name);
#else
  auto profile = core::load_profile(file_or_name);
  if (!profile) return profile.error();
  if (auto status = core::validate(*profile); !status) return status.error();
  return profile;
#endif
}

core::Expected<core::Profile> Engine::default_profile() {
#if HPSIM_GUI_HAVE_ESTIMATE
  return model::load_default_profile();
#else
  return core::Error{core::ErrorCode::kUnsupported, "no shipped profiles in this build (hpsim::model missing)"};
#endif
}

std::vector<std::string> Engine::shipped_profiles() {
  std::vector<std::string> names;
#if HPSIM_GUI_HAVE_ESTIMATE
  namespace fs = std::filesystem;
  for (const auto& dir : model::data_dirs()) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(fs::path(dir) / "profiles", ec)) {
      if (entry.path().extension() != ".json") continue;
      auto name = entry.path().stem().string();
      if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(std::move(name));
    }
  }
  std::sort(names.begin(), names.end());
#endif
  return names;
}

EngineCapabilities Engine::capabilities() {
  EngineCapabilities c;
#if HPSIM_GUI_HAVE_MODEL
  c.has_traffic = true;
#endif
#if HPSIM_GUI_HAVE_ESTIMATE
  c.has_estimate = true;
#endif
#if HPSIM_GUI_HAVE_SIM
  c.has_simulator = true;
#endif
#if HPSIM_GUI_HAVE_TRACES
  c.has_traces = true;
#endif
  return c;
}

std::string Engine::describe_build() {
  const auto c = capabilities();
  if (!c.has_traffic) return "engine not available in this build (hpsim::model missing): editing only";
  std::string out = "traffic + memory";
  out += c.has_estimate ? ", analytic timing" : ", no timing (hpsim::model estimate not in this build)";
  if (c.has_simulator) out += ", simulator";
  if (c.has_traces) out += ", Chrome traces";
  return out;
}

std::vector<core::FieldError> Engine::blocking_errors(const core::Scenario& scenario) {
  auto errors = core::check_scenario(scenario);
  const auto own = core::check_strategy(scenario, scenario.parallel.strategy);
  std::erase_if(errors, [&](const core::FieldError& e) {
    return std::any_of(own.begin(), own.end(), [&](const core::FieldError& o) { return same(e, o); });
  });
  return errors;
}

core::Expected<EngineResult> Engine::evaluate(const core::Scenario& scenario) const {
  if (auto errors = blocking_errors(scenario); !errors.empty()) return core::join_field_errors(errors);
  if (!capabilities().has_traffic) {
    return core::Error{core::ErrorCode::kUnsupported, "engine not available in this build: hpsim::model is missing"};
  }
  EngineResult result;
  result.report.scenario = scenario.name;
  // Strategies the scenario cannot run are left out with their rule, verbatim.
  std::vector<core::Strategy> runnable;
  for (auto strategy : kBoth) {
    const auto errors = core::check_strategy(scenario, strategy);
    if (errors.empty()) {
      runnable.push_back(strategy);
    } else {
      for (const auto& e : errors)
        result.notes.push_back(fmt::format("{}: {}", core::to_string(strategy), e.to_string()));
    }
  }
  if (runnable.empty()) return core::join_field_errors(core::check_strategy(scenario, scenario.parallel.strategy));

#if HPSIM_GUI_HAVE_ESTIMATE
  if (profile_) {
    auto estimate = model::estimate(scenario, *profile_, runnable);
    if (estimate) {
      result.report = std::move(estimate->report);
      for (auto& note : estimate->notes) result.notes.push_back(std::move(note));
      result.has_timing = true;
      fill_metrics(result);
      if (options_.simulated_timelines) simulate_timelines(scenario, *profile_, result);
      return result;
    }
    result.notes.push_back("timing: " + estimate.error().message);
  } else {
    result.notes.push_back("timing: no profile loaded (File > Load Profile)");
  }
#else
  result.notes.push_back("timing: not available in this build (hpsim::model estimate missing)");
#endif

#if HPSIM_GUI_HAVE_MODEL
  result.report.engine = "model (traffic and memory)";
  for (auto strategy : runnable) {
    auto one = traffic_and_memory(scenario, strategy);
    if (!one) {
      result.notes.push_back(fmt::format("{}: {}", core::to_string(strategy), one.error().message));
      continue;
    }
    result.report.strategies.push_back(std::move(*one));
  }
  if (result.report.strategies.empty()) {
    return core::Error{core::ErrorCode::kInvalidArgument,
                       fmt::format("no strategy could be evaluated: {}", fmt::join(result.notes, "; "))};
  }
  fill_metrics(result);
#endif
  return result;
}

core::Expected<std::string> Engine::chrome_trace_json(const core::Timeline& timeline) {
#if HPSIM_GUI_HAVE_TRACES
  return traces::to_chrome_trace(timeline);
#else
  (void)timeline;
  return core::Error{core::ErrorCode::kUnsupported,
                     "Chrome trace export needs hpsim::traces, which is not in this build"};
#endif
}

core::Expected<core::Timeline> Engine::load_timeline(const std::string& path) {
  auto text = core::read_text_file(path);
  if (!text) return text.error();
  auto timeline = core::parse_timeline(*text);
  if (timeline) return timeline;
#if HPSIM_GUI_HAVE_TRACES
  auto chrome = traces::parse_chrome_trace(*text, path);
  if (chrome) return chrome;
  return core::Error{core::ErrorCode::kParse, fmt::format("{}: neither an hpsim timeline ({}) nor a Chrome trace ({})",
                                                          path, timeline.error().message, chrome.error().message)};
#else
  return core::Error{core::ErrorCode::kParse, fmt::format("{}: not an hpsim timeline JSON ({}); Chrome traces need "
                                                          "hpsim::traces, which is not in this build",
                                                          path, timeline.error().message)};
#endif
}

}  // namespace hpsim::gui
