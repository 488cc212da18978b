// hpsim-sim-scale: how long the simulator takes, and how much memory, for one EP (or HP) MoE
// layer, forward and backward, on a large cluster. Not a test; docs/simulator.md records its
// numbers.
//
//   hpsim-sim-scale [--gpus N] [--per-node G] [--skew S] [--experts-per-rank X] [--hp]
//                   [--sampled] [--no-aggregate] [--spines N] [--trace FILE] [--compare]
//
// --compare also runs the same plan with one group per flow and prints the largest difference
// between the two timelines' span ends, relative to the layer time.
//
// The scenario is the shipped preset ep-zipf1-h200-128x8 (paper 4.2B-G widths, Zipf routing over
// experts owned contiguously, expectation mode) scaled to N GPUs; the plan comes from
// model::build_layer_plan with the default profile. Run one size per process: the peak memory
// printed is the process's.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <fmt/format.h>

#include "hpsim/core/presets.h"
#include "hpsim/model/data_files.h"
#include "hpsim/model/plan_builder.h"
#include "hpsim/sim/engine.h"
#include "hpsim/traces/chrome_trace.h"

namespace {

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // Linux: kilobytes
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int usage_error(const char* what) {
  std::fprintf(stderr, "error: %s\nusage: hpsim-sim-scale [--gpus N] [--per-node G] [--skew S] [--experts-per-rank X] "
               "[--hp] [--sampled] [--no-aggregate] [--spines N] [--trace FILE] [--compare]\n", what);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::int64_t gpus = 1024;
  std::int64_t per_node = 8;
  double skew = 1.0;
  std::int64_t experts_per_rank = 2;
  bool hp = false;
  bool sampled = false;
  bool aggregate = true;
  std::int64_t spines = 1;
  std::string trace;
  bool compare = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    if (a == "--gpus" || a == "--per-node" || a == "--skew" || a == "--experts-per-rank" || a == "--spines" ||
        a == "--trace") {
      const char* v = next();
      if (v == nullptr) return usage_error("missing value");
      if (a == "--gpus") gpus = std::atoll(v);
      if (a == "--per-node") per_node = std::atoll(v);
      if (a == "--skew") skew = std::atof(v);
      if (a == "--experts-per-rank") experts_per_rank = std::atoll(v);
      if (a == "--spines") spines = std::atoll(v);
      if (a == "--trace") trace = v;
    } else if (a == "--hp") {
      hp = true;
    } else if (a == "--sampled") {
      sampled = true;
    } else if (a == "--no-aggregate") {
      aggregate = false;
    } else if (a == "--compare") {
      compare = true;
    } else {
      return usage_error(("unknown argument " + a).c_str());
    }
  }
  if (gpus <= 0 || per_node <= 0 || gpus % per_node != 0) return usage_error("--gpus must be a positive multiple of --per-node");

  auto scenario = hpsim::core::scenario_preset("ep-zipf1-h200-128x8");
  if (!scenario) return usage_error(scenario.error().message.c_str());
  hpsim::core::Scenario s = *scenario;
  s.cluster.num_nodes = gpus / per_node;
  s.cluster.gpus_per_node = per_node;
  s.parallel.num_ranks = gpus;
  s.parallel.strategy = hp ? hpsim::core::Strategy::kHp : hpsim::core::Strategy::kEp;
  s.model.num_experts = hp ? s.model.num_experts : gpus * experts_per_rank;
  if (hp) s.model.num_heads = gpus;  // HP needs W | H: one head per rank
  s.workload.zipf_skew = skew;
  s.workload.routing = skew > 0 ? hpsim::core::Routing::kZipf : hpsim::core::Routing::kUniform;
  s.workload.mode = sampled ? hpsim::core::WorkloadMode::kSampled : hpsim::core::WorkloadMode::kExpectation;
  auto profile = hpsim::model::load_default_profile();
  if (!profile) {
    std::fprintf(stderr, "error: %s\n", profile.error().message.c_str());
    return 1;
  }

  const auto t_plan = std::chrono::steady_clock::now();
  auto plan = hpsim::model::build_layer_plan(s, *profile, s.parallel.strategy);
  if (!plan) {
    std::fprintf(stderr, "error: %s\n", plan.error().message.c_str());
    return 1;
  }
  const double plan_s = seconds_since(t_plan);
  const double rss_after_plan = peak_rss_mb();
  std::fprintf(stderr, "plan built in %.3f s, peak RSS %.0f MB; simulating\n", plan_s, rss_after_plan);

  hpsim::sim::SimOptions options;
  options.network.aggregate = aggregate;
  options.topology.num_spines = spines;
  const auto t_sim = std::chrono::steady_clock::now();
  auto result = hpsim::sim::run_scenario(s, *plan, options);
  if (!result) {
    std::fprintf(stderr, "error: %s\n", result.error().message.c_str());
    return 1;
  }
  const double sim_s = seconds_since(t_sim);
  const double rss_peak = peak_rss_mb();
  const auto times = hpsim::sim::layer_times(result->timeline);
  const auto& net = result->network;
  fmt::print(
      "gpus={} strategy={} skew={} mode={} aggregate={} spines={} | plan {:.3f} s, simulate {:.3f} s | instants {} repairs {} | peak RSS "
      "{:.0f} MB (after plan {:.0f} MB) | flows {} groups {} events {} full recomputes {} | layer {:.1f} us (fwd "
      "{:.1f}, bwd {:.1f})\n",
      gpus, hp ? "hp" : "ep", skew, sampled ? "sampled" : "expectation", aggregate ? "on" : "off", spines, plan_s,
      sim_s, net.instants, net.local_repairs, rss_peak, rss_after_plan, net.flows, net.groups, result->num_events, net.full_recomputes, times.total_us,
      times.forward_us, times.backward_us);

  if (compare) {
    options.network.aggregate = !aggregate;
    const auto t_other = std::chrono::steady_clock::now();
    auto other = hpsim::sim::run_scenario(s, *plan, options);
    if (!other) {
      std::fprintf(stderr, "error: %s\n", other.error().message.c_str());
      return 1;
    }
    std::int64_t worst = 0;
    for (std::size_t r = 0; r < result->timeline.ranks.size(); ++r) {
      const auto& a = result->timeline.ranks[r].spans;
      const auto& b = other->timeline.ranks[r].spans;
      for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) worst = std::max(worst, std::abs(a[i].end_ns - b[i].end_ns));
    }
    fmt::print("compare: aggregate={} took {:.3f} s, {} groups; largest span-end difference {} ns = {:.2e} of the layer\n",
               options.network.aggregate ? "on" : "off", seconds_since(t_other), other->network.groups, worst,
               static_cast<double>(worst) / static_cast<double>(result->timeline.end_ns()));
  }

  if (!trace.empty()) {
    hpsim::traces::TraceExtras extras;
    for (const auto& t : result->transfers) {
      extras.flows.push_back({plan->stages[static_cast<std::size_t>(t.stage)].name, t.src, t.dst, t.start_ns, t.end_ns,
                              t.bytes, t.num_flows});
    }
    for (const auto& v : result->bytes_in_flight) extras.counters.push_back({"bytes in flight", -1, v.t_ns, v.value});
    const auto t_trace = std::chrono::steady_clock::now();
    auto status = hpsim::traces::write_chrome_trace(trace, result->timeline, extras);
    if (!status) {
      std::fprintf(stderr, "error: %s\n", status.error().message.c_str());
      return 1;
    }
    fmt::print("trace {} written in {:.3f} s ({} arrows of {} transfers)\n", trace, seconds_since(t_trace),
               extras.flows.size(), result->num_transfers);
  }
  return 0;
}
