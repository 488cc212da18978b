// hpsim sweep: the analytic model over a grid of k, E, W, skew and tokens, to CSV or JSON.
#include "sweep.h"

#include <cstdio>
#include <iterator>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli.h"
#include "hpsim/core/presets.h"
#include "hpsim/core/validate.h"
#include "hpsim/model/estimate.h"
#include "hpsim/model/metrics.h"

namespace hpsim::cli {
namespace {

template <typename T>
std::vector<T> or_base(const std::vector<T>& values, T base) {
  return values.empty() ? std::vector<T>{base} : values;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c == '\n' ? ' ' : c;
  }
  return out + "\"";
}

// Column names, in order; the same keys in JSON.
const std::vector<std::string>& columns() {
  static const std::vector<std::string> names = {
      "scenario", "strategy", "top_k", "num_experts", "num_ranks", "zipf_skew", "tokens_per_rank", "valid", "error",
      "layer_forward_us", "layer_backward_us", "layer_total_us", "compute_us", "comm_us", "dispatch_sent_max_bytes",
      "dispatch_sent_mean_bytes", "dispatch_send_imbalance", "dispatch_receive_imbalance", "layer_a2a_bytes_max",
      "metadata_bytes_per_rank", "peak_memory_max_bytes", "step_us", "tokens_per_second", "hours_for_budget"};
  return names;
}

}  // namespace

int run_sweep(const SweepOptions& options) {
  core::Scenario base;
  if (!options.scenario.empty() && !options.preset.empty()) {
    return print_error(core::Error::field("--preset", "give a base scenario file or --preset, not both"));
  }
  if (!options.scenario.empty()) {
    auto s = load_scenario_arg(options.scenario);
    if (!s) return print_error(s.error());
    base = std::move(*s);
  } else if (!options.preset.empty()) {
    auto s = core::scenario_preset(options.preset);
    if (!s) return print_error(core::Error::field("--preset", s.error().message));
    base = std::move(*s);
  } else {
    base = core::default_scenarios().front();
  }
  if (!options.skew.empty() && base.workload.routing == core::Routing::kTrace) {
    return print_error(core::Error::field("--skew", "the base scenario replays a routing trace; --skew needs uniform "
                                                    "or zipf routing"));
  }
  auto profile = load_profile_arg(options.profile);
  if (!profile) return print_error(profile.error());

  const auto ks = or_base(options.top_k, base.model.top_k);
  const auto es = or_base(options.experts, base.model.num_experts);
  const auto ws = or_base(options.ranks, base.parallel.num_ranks);
  const auto skews = or_base(options.skew, base.workload.zipf_skew);
  const auto ns = or_base(options.tokens, base.workload.tokens_per_rank);
  const auto strategies = strategies_of(options.strategy);
  const std::size_t total = ks.size() * es.size() * ws.size() * skews.size() * ns.size() * strategies.size();
  const bool show_progress = total >= 1000;
  const std::size_t progress_every = std::max<std::size_t>(1, total / 100);

  model::EstimateOptions estimate_options;
  estimate_options.with_timeline = false;

  const bool json = options.format == "json";
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  std::string csv;
  if (!json) {
    for (std::size_t i = 0; i < columns().size(); ++i) csv += (i ? "," : "") + columns()[i];
    csv += "\n";
  }

  std::size_t done = 0;
  for (auto k : ks) {
    for (auto E : es) {
      for (auto W : ws) {
        for (double skew : skews) {
          for (auto n : ns) {
            for (auto strategy : strategies) {
              core::Scenario s = base;
              s.model.top_k = k;
              s.model.num_experts = E;
              s.parallel.num_ranks = W;
              s.parallel.strategy = strategy;
              s.workload.tokens_per_rank = n;
              if (!options.skew.empty()) {
                s.workload.routing = skew > 0 ? core::Routing::kZipf : core::Routing::kUniform;
                s.workload.zipf_skew = skew;
              }
              // Grow the cluster by whole nodes when W asks for more GPUs than it has.
              if (W > s.cluster.num_gpus() && s.cluster.gpus_per_node > 0) {
                s.cluster.num_nodes = (W + s.cluster.gpus_per_node - 1) / s.cluster.gpus_per_node;
              }
              std::string error;
              model::StrategySummary sum;
              if (auto problems = core::check_scenario(s); !problems.empty()) {
                for (const auto& p : problems) error += (error.empty() ? "" : "; ") + p.to_string();
              } else if (auto r = model::estimate_strategy(s, *profile, strategy, estimate_options); !r) {
                error = r.error().message;
                std::replace(error.begin(), error.end(), '\n', ';');
              } else {
                sum = model::summarize(*r);
              }
              const bool valid = error.empty();
              const std::vector<double> values = {
                  sum.layer_forward_us,      sum.layer_backward_us,  sum.layer_total_us,
                  sum.compute_us,            sum.comm_us,            sum.dispatch_sent_max,
                  sum.dispatch_sent_mean,    sum.dispatch_send_imbalance, sum.dispatch_receive_imbalance,
                  sum.layer_a2a_bytes_max,   sum.metadata_bytes_per_rank, sum.peak_max,
                  sum.step_us,               sum.tokens_per_second,  sum.hours_for_budget};
              if (json) {
                nlohmann::ordered_json row;
                row["scenario"] = base.name;
                row["strategy"] = core::to_string(strategy);
                row["top_k"] = k;
                row["num_experts"] = E;
                row["num_ranks"] = W;
                row["zipf_skew"] = s.workload.zipf_skew;
                row["tokens_per_rank"] = n;
                row["valid"] = valid;
                row["error"] = error;
                for (std::size_t i = 0; i < values.size(); ++i) {
                  if (valid) {
                    row[columns()[9 + i]] = values[i];
                  } else {
                    row[columns()[9 + i]] = nullptr;
                  }
                }
                rows.push_back(std::move(row));
              } else {
                fmt::format_to(std::back_inserter(csv), "{},{},{},{},{},{:.12g},{},{},{}", csv_field(base.name),
                               core::to_string(strategy), k, E, W, s.workload.zipf_skew, n, valid ? "true" : "false",
                               csv_field(error));
                for (double v : values) {
                  if (valid) {
                    fmt::format_to(std::back_inserter(csv), ",{:.12g}", v);
                  } else {
                    csv += ',';
                  }
                }
                csv += '\n';
              }
              ++done;
              if (show_progress && (done % progress_every == 0 || done == total)) {
                std::fprintf(stderr, "\rsweep: %zu / %zu scenarios", done, total);
                if (done == total) std::fprintf(stderr, "\n");
              }
            }
          }
        }
      }
    }
  }
  const std::string text = json ? rows.dump(2) + "\n" : csv;
  if (auto st = emit(options.out, text); !st) return print_error(st.error());
  return kExitOk;
}

}  // namespace hpsim::cli
