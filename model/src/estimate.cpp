// The analytic walk of a LayerPlan and the StrategyReport built from it (estimate.h).
#include "hpsim/model/estimate.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "hpsim/core/units.h"
#include "hpsim/core/validate.h"
#include "hpsim/model/plan_builder.h"
#include "hpsim/model/step.h"
#include "hpsim/model/traffic.h"

namespace hpsim::model {

double PlanWalk::end_ns_max() const {
  double end = 0;
  for (const auto& stage : end_ns) {
    for (double e : stage) end = std::max(end, e);
  }
  return end;
}

PlanWalk walk_plan(const LayerPlan& plan) {
  const auto W = static_cast<std::size_t>(plan.num_ranks);
  PlanWalk walk;
  walk.start_ns.resize(plan.stages.size());
  walk.end_ns.resize(plan.stages.size());
  walk.comm_bytes.resize(plan.stages.size());
  std::vector<double> ready(W);
  for (std::size_t i = 0; i < plan.stages.size(); ++i) {
    const PlanStage& st = plan.stages[i];
    for (std::size_t r = 0; r < W; ++r) {
      double t = 0;
      for (auto dep : st.deps) {
        HPSIM_ASSERT(dep >= 0 && static_cast<std::size_t>(dep) < i, "stage {} depends on {}, not an earlier stage",
                     st.id, dep);
        t = std::max(t, walk.end_ns[static_cast<std::size_t>(dep)][r]);
      }
      ready[r] = t;
    }
    walk.start_ns[i] = ready;
    if (st.kind == StageKind::kCompute) {
      HPSIM_ASSERT(st.duration_ns.size() == W, "stage {} has {} durations for {} ranks", st.name,
                   st.duration_ns.size(), W);
      walk.end_ns[i].resize(W);
      for (std::size_t r = 0; r < W; ++r) walk.end_ns[i][r] = ready[r] + st.duration_ns[r];
    } else {
      const RankBytes totals = rank_bytes(st.traffic);
      auto& comm_bytes = walk.comm_bytes[i];
      comm_bytes.resize(W);
      double end = 0;
      for (std::size_t r = 0; r < W; ++r) {
        const double bytes = std::max(totals.sent[r], totals.received[r]);
        comm_bytes[r] = bytes;
        double t = ready[r] + st.local_ns;
        if (plan.num_ranks > 1) {
          HPSIM_ASSERT(st.bandwidth_gbps > 0, "collective stage {} has no bandwidth", st.name);
          t += st.alpha_ns + bytes / st.bandwidth_gbps;  // GB/s = bytes per ns
        }
        end = std::max(end, t);
      }
      walk.end_ns[i].assign(W, end);
    }
  }
  return walk;
}

std::vector<core::StageCost> stage_costs(const LayerPlan& plan, const PlanWalk& walk) {
  std::vector<core::StageCost> rows;
  const auto W = static_cast<std::size_t>(plan.num_ranks);
  for (std::size_t i = 0; i < plan.stages.size(); ++i) {
    const PlanStage& st = plan.stages[i];
    core::StageCost c;
    c.stage = st.name;
    c.phase = st.phase;
    c.lane = st.lane;
    double sum = 0;
    for (std::size_t r = 0; r < W; ++r) {
      const double us = (walk.end_ns[i][r] - walk.start_ns[i][r]) / core::kNsPerUs;
      c.max_us = std::max(c.max_us, us);
      sum += us;
      if (st.kind == StageKind::kCompute) {
        c.bytes = std::max(c.bytes, st.bytes[r]);
        c.flops = std::max(c.flops, st.flops[r]);
      } else {
        c.bytes = std::max(c.bytes, walk.comm_bytes[i][r]);
      }
    }
    c.mean_us = W > 0 ? sum / static_cast<double>(W) : 0;
    rows.push_back(c);
  }
  return rows;
}

core::Timeline analytic_timeline(const LayerPlan& plan, const PlanWalk& walk) {
  core::Timeline t;
  t.source = "analytic";
  t.strategy = plan.strategy;
  for (std::int64_t r = 0; r < plan.num_ranks; ++r) {
    core::RankTimeline rt;
    rt.rank = r;
    const auto ur = static_cast<std::size_t>(r);
    for (std::size_t i = 0; i < plan.stages.size(); ++i) {
      const PlanStage& st = plan.stages[i];
      core::Span span;
      span.bytes = st.kind == StageKind::kCompute ? st.bytes[ur] : st.traffic.sent(r);
      span.stage = st.name;
      span.phase = st.phase;
      span.lane = st.lane;
      span.start_ns = std::llround(walk.start_ns[i][ur]);
      span.end_ns = std::llround(walk.end_ns[i][ur]);
      span.flops = st.kind == StageKind::kCompute ? st.flops[ur] : 0.0;
      span.layer = st.layer;
      span.micro_batch = st.micro_batch;
      rt.spans.push_back(std::move(span));
    }
    t.ranks.push_back(std::move(rt));
  }
  return t;
}

core::Expected<core::StrategyReport> estimate_strategy(const core::Scenario& scenario, const core::Profile& profile,
                                                       core::Strategy strategy, const EstimateOptions& options) {
  auto workload = build_workload(scenario, strategy);
  if (!workload) return workload.error();
  PlanOptions plan_options;
  plan_options.save_expert_hidden = options.memory.save_expert_hidden;
  LayerTraffic traffic = layer_traffic(scenario.model, *workload);
  const double metadata_bytes_per_rank = traffic.metadata_bytes_per_rank;
  auto plan = build_layer_plan(scenario, profile, *workload, std::move(traffic), plan_options);
  if (!plan) return plan.error();
  const PlanWalk walk = walk_plan(*plan);

  core::StrategyReport out;
  out.strategy = core::to_string(strategy);
  out.stages = stage_costs(*plan, walk);
  double forward_end = 0;
  for (std::size_t i = 0; i < plan->stages.size(); ++i) {
    if (plan->stages[i].phase != core::Phase::kForward) continue;
    for (double e : walk.end_ns[i]) forward_end = std::max(forward_end, e);
  }
  out.layer_total_us = walk.end_ns_max() / core::kNsPerUs;
  out.layer_forward_us = forward_end / core::kNsPerUs;
  out.layer_backward_us = out.layer_total_us - out.layer_forward_us;

  out.metadata_bytes_per_rank = metadata_bytes_per_rank;
  out.memory = layer_memory(scenario, *workload, options.memory);
  if (options.with_step) {
    auto step = estimate_step(scenario, profile, strategy, out.layer_total_us);
    if (!step) return step.error();
    out.step_us = step->step_us;
    out.tokens_per_second = step->tokens_per_second;
    out.hours_for_budget = step->hours_for_budget;
  }
  if (options.with_timeline) out.timeline = analytic_timeline(*plan, walk);
  // The plan is done with: its collectives (one per phase in a one-layer plan, in the order of
  // LayerTraffic::phases) hand their matrices over.
  for (auto& st : plan->stages) {
    if (st.kind == StageKind::kCollective) out.traffic.push_back(std::move(st.traffic));
  }
  return out;
}

core::Expected<Estimate> estimate(const core::Scenario& scenario, const core::Profile& profile,
                                  const std::vector<core::Strategy>& strategies, const EstimateOptions& options) {
  Estimate out;
  out.report.scenario = scenario.name;
  out.report.engine = "analytic";
  out.report.profile = profile.name;
  for (core::Strategy strategy : strategies) {
    const auto problems = core::check_strategy(scenario, strategy);
    if (!problems.empty()) {
      for (const auto& p : problems) out.notes.push_back(fmt::format("{}: {}", core::to_string(strategy), p.to_string()));
      continue;
    }
    auto report = estimate_strategy(scenario, profile, strategy, options);
    if (!report) return report.error();
    out.report.strategies.push_back(std::move(*report));
  }
  if (out.report.strategies.empty()) {
    std::string message;
    for (const auto& note : out.notes) message += (message.empty() ? "" : "\n") + note;
    return core::Error{core::ErrorCode::kInvalidArgument, message};
  }
  return out;
}

}  // namespace hpsim::model
