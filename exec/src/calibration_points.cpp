// The calibration's scenarios and stage counts without a GPU (calibration_points.h).
#include "hpsim/exec/calibration_points.h"

#include <algorithm>
#include <charconv>
#include <sstream>
#include <vector>

#include <fmt/format.h>

#include "hpsim/core/presets.h"
#include "hpsim/exec/forced_routing.h"
#include "hpsim/model/plan_builder.h"
#include "hpsim/model/workload.h"

namespace hpsim::exec {
namespace {

// The routing the executor forces for `strategy` (forced_routing.h; the same draws, seeds and
// streams as the HP and EP layers), as per-expert counts: the plan that a measured stage is paired
// with then counts that routing's segments exactly. Expert ids are those of the draws, owned
// contiguously (expert_weights() has already placed the hot experts per the ownership rule).
core::Expected<model::RoutingWorkload> forced_workload(core::Scenario scenario, core::Strategy strategy) {
  const auto& wl = scenario.workload;
  const std::int64_t W = scenario.parallel.num_ranks, n = wl.tokens_per_rank, E = scenario.model.num_experts;
  const std::int64_t k = scenario.model.top_k, H = scenario.model.num_heads;
  model::RoutingTrace trace;
  trace.num_ranks = W;
  trace.tokens_per_rank = n;
  trace.num_experts = E;
  trace.top_k = k;
  const auto weights = expert_weights(wl, E, W);
  auto add_draw = [&](std::vector<double>& counts, std::size_t at, std::uint64_t stream) {
    const ForcedRouting r = draw_routing(weights, n, k, wl.seed, stream);
    for (std::int32_t e : r.experts) counts[at + static_cast<std::size_t>(e)] += 1.0;
  };
  if (strategy == core::Strategy::kEp) {
    trace.ep_counts.assign(static_cast<std::size_t>(W * E), 0.0);
    for (std::int64_t src = 0; src < W; ++src) {
      add_draw(trace.ep_counts, static_cast<std::size_t>(src * E), ep_routing_stream(src));
    }
  } else {
    trace.num_heads = H;
    trace.hp_counts.assign(static_cast<std::size_t>(H * W * E), 0.0);
    for (std::int64_t head = 0; head < H; ++head) {
      for (std::int64_t src = 0; src < W; ++src) {
        add_draw(trace.hp_counts, static_cast<std::size_t>((head * W + src) * E), hp_routing_stream(head, src));
      }
    }
  }
  scenario.workload.ownership = core::Ownership::kContiguous;
  return model::workload_from_trace(scenario, strategy, trace);
}

template <typename T>
bool parse_number(std::string_view text, T& out) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

// "<stage> <strategy> <model> n=<tokens> k=<top_k> zipf=<skew>" -> its parts; false if not one.
bool parse_point_shape(const std::string& text, std::string& stage, core::Strategy& strategy, CalibrationShape& shape) {
  std::istringstream in(text);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  if (words.size() != 6) return false;
  stage = words[0];
  if (words[1] == "hp") {
    strategy = core::Strategy::kHp;
  } else if (words[1] == "ep") {
    strategy = core::Strategy::kEp;
  } else {
    return false;
  }
  shape.model = words[2];
  auto value = [](const std::string& word, std::string_view key) -> std::string_view {
    return word.starts_with(key) ? std::string_view(word).substr(key.size()) : std::string_view();
  };
  return parse_number(value(words[3], "n="), shape.tokens) && parse_number(value(words[4], "k="), shape.top_k) &&
         parse_number(value(words[5], "zipf="), shape.skew);
}

}  // namespace

core::Expected<core::Scenario> calibration_scenario(const CalibrationShape& shape, core::Strategy strategy,
                                                    std::int64_t num_ranks) {
  auto s = core::scenario_preset("paper-4.2b-h200x8-uniform");
  if (!s) return s.error();
  auto m = core::model_preset(shape.model);
  if (!m) return m.error();
  s->model = *m;
  s->model.top_k = shape.top_k;
  s->workload.tokens_per_rank = shape.tokens;
  if (shape.skew > 0) {
    s->workload.routing = core::Routing::kZipf;
    s->workload.zipf_skew = shape.skew;
  }
  s->parallel = {strategy, num_ranks};
  s->cluster.num_nodes = 1;
  s->cluster.gpus_per_node = std::max<std::int64_t>(num_ranks, 1);
  return *s;
}

std::string calibration_label(const CalibrationShape& shape, core::Strategy strategy) {
  return fmt::format("{} {} n={} k={} zipf={:g}", core::to_string(strategy), shape.model, shape.tokens, shape.top_k,
                     shape.skew);
}

core::Expected<std::map<std::string, StageCounts>> calibration_stage_counts(const core::Scenario& scenario,
                                                                            core::Strategy strategy,
                                                                            const core::Profile& base) {
  model::PlanOptions po;
  po.save_expert_hidden = strategy == core::Strategy::kEp;  // HP's fused MLP recomputes
  auto routing = forced_workload(scenario, strategy);
  if (!routing) return routing.error();
  auto plan = model::build_layer_plan(scenario, base, *routing, po);
  if (!plan) return plan.error();
  std::map<std::string, StageCounts> out;
  for (const auto& st : plan->stages) {
    if (st.kind != model::StageKind::kCompute || st.kernel.empty()) continue;
    if (out.contains(st.name)) {
      return core::Error{core::ErrorCode::kInvalidArgument,
                         fmt::format("stage name {} occurs twice in one layer's plan", st.name)};
    }
    out[st.name] = {st.kernel, st.phase, st.flops[0], st.bytes[0], st.selections[0]};
  }
  return out;
}

core::Expected<core::Profile> recount_points(const core::Profile& profile, std::int64_t num_ranks) {
  core::Profile out = profile;
  std::map<std::string, std::map<std::string, StageCounts>> plans;  // by label
  for (auto& [family, fit] : out.kernels) {
    for (auto& point : fit.points) {
      std::string stage;
      core::Strategy strategy{};
      CalibrationShape shape;
      if (!parse_point_shape(point.shape, stage, strategy, shape)) {
        return core::Error::field(fmt::format("kernels.{}.points", family),
                                  fmt::format("\"{}\" is not a calibration point's shape (<stage> <hp|ep> <model> "
                                              "n=<tokens> k=<top_k> zipf=<skew>)",
                                              point.shape));
      }
      const std::string label = calibration_label(shape, strategy);
      auto it = plans.find(label);
      if (it == plans.end()) {
        auto scenario = calibration_scenario(shape, strategy, num_ranks);
        if (!scenario) return core::Error{scenario.error().code, label + ": " + scenario.error().message};
        auto counts = calibration_stage_counts(*scenario, strategy, profile);
        if (!counts) return core::Error{counts.error().code, label + ": " + counts.error().message};
        it = plans.emplace(label, std::move(*counts)).first;
      }
      auto st = it->second.find(stage);
      if (st == it->second.end()) {
        return core::Error::field(fmt::format("kernels.{}.points", family),
                                  fmt::format("\"{}\": the plan of {} has no compute stage {}", point.shape, label, stage));
      }
      point.flops = st->second.flops;
      point.bytes = st->second.bytes;
      point.selections = st->second.selections;
    }
  }
  return out;
}

}  // namespace hpsim::exec
