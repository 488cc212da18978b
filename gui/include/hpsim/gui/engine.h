#pragma once
// Engine: the one place where the GUI calls the hpsim library for results. Everything the views
// show comes from here, as core value types (Report, StrategyReport, TrafficMatrix, MemoryReport,
// Timeline); the GUI never computes model quantities itself.
//
// What this build can answer depends on which libraries were linked (capabilities()):
//  - traffic + memory: hpsim::model's routing workload, traffic matrices and memory model
//    (no profile needed);
//  - timing (stage costs, layer and step times, analytic timeline): hpsim::model's estimate,
//    which also needs a Profile;
//  - simulated timelines: hpsim::sim;
//  - Chrome traces in and out: hpsim::traces.
// Plain C++ (no Qt), so it runs on worker threads and in tests as is. Copies are cheap enough to
// hand one to each background job.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hpsim/core/error.h"
#include "hpsim/core/profile.h"
#include "hpsim/core/report.h"
#include "hpsim/core/scenario.h"
#include "hpsim/core/timeline.h"
#include "hpsim/core/validate.h"

namespace hpsim::gui {

struct EngineCapabilities {
  bool has_traffic = false;    // traffic matrices and memory (hpsim::model)
  bool has_estimate = false;   // analytic timing (hpsim::model estimate; needs a profile)
  bool has_simulator = false;  // discrete-event timelines (hpsim::sim)
  bool has_traces = false;     // Chrome-trace reader and writer (hpsim::traces)
};

// The printed metrics of one strategy, as hpsim::model's summarize() computes them for the CLI
// (docs/metrics.md); the GUI shows these rather than computing its own.
struct StrategyMetrics {
  double compute_us = 0;           // sum over compute stages of their slowest rank
  double comm_us = 0;              // the same over the collectives (waits included)
  double dispatch_sent_max = 0;    // bytes, busiest sender of the forward dispatch
  double dispatch_busbw_gbps = 0;  // bottleneck bytes of the dispatch / its time
  double layer_a2a_bytes_max = 0;  // all data all-to-alls of the layer, bottleneck rank
  double peak_max = 0;             // memory, largest rank
  std::int64_t num_over_capacity = 0;
};

// One evaluation of a scenario, both strategies side by side.
struct EngineResult {
  core::Report report;                             // one StrategyReport per strategy the scenario can run ("ep", "hp")
  std::map<std::string, StrategyMetrics> metrics;  // per strategy in `report`
  std::vector<std::string> notes;                  // why something is missing (a strategy's rule, no profile, ...)
  bool has_timing = false;                         // stage costs, layer and step times are filled in

  const core::StrategyReport* strategy(const std::string& name) const;
  const StrategyMetrics* metrics_of(const std::string& name) const;
};

// Results are shared, read-only, between the models that show parts of them (a 1,024-rank result
// holds tens of MB of traffic matrices; nobody copies it).
using ResultPtr = std::shared_ptr<const EngineResult>;

struct EngineOptions {
  // Timelines from the discrete-event simulator (hpsim::sim: link contention, stragglers) instead
  // of the analytic walk. Stage costs and layer times stay the analytic estimate's.
  bool simulated_timelines = false;
};

class Engine {
 public:
  static EngineCapabilities capabilities();
  // One line for the status bar: which engines this build has.
  static std::string describe_build();

  void set_profile(std::optional<core::Profile> profile) { profile_ = std::move(profile); }
  const std::optional<core::Profile>& profile() const { return profile_; }
  void set_options(const EngineOptions& options) { options_ = options; }
  const EngineOptions& options() const { return options_; }

  // Profiles, through hpsim::model's loader (validated, complete for the model): a file path or a
  // shipped name ("h200-datasheet"); the default is the one `hpsim simulate` uses (h200x2-measured).
  static core::Expected<core::Profile> load_profile(const std::string& file_or_name);
  static core::Expected<core::Profile> default_profile();
  static std::vector<std::string> shipped_profiles();  // names of the shipped profiles

  // Errors that block any evaluation: check_scenario's, minus the rules of one strategy
  // (those only leave that strategy out, as the CLI does when it compares both).
  static std::vector<core::FieldError> blocking_errors(const core::Scenario& scenario);

  // Both strategies (EP, then HP). Fails only when nothing can be computed: the scenario breaks a
  // blocking rule, this build has no model, or neither strategy can run.
  core::Expected<EngineResult> evaluate(const core::Scenario& scenario) const;

  // Chrome trace JSON (Perfetto) of a timeline, and back. kUnsupported without hpsim::traces.
  static core::Expected<std::string> chrome_trace_json(const core::Timeline& timeline);
  // Reads a measured or simulated timeline from a file: hpsim's own timeline JSON always, Chrome
  // traces when hpsim::traces is in the build.
  static core::Expected<core::Timeline> load_timeline(const std::string& path);

 private:
  std::optional<core::Profile> profile_;
  EngineOptions options_;
};

}  // namespace hpsim::gui
