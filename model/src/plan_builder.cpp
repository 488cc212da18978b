// LayerPlan builder (plan_builder.h). Stage lists follow DESIGN.md section 2.
#include "hpsim/model/plan_builder.h"

#include <algorithm>

#include "hpsim/core/units.h"
#include "hpsim/model/cost.h"
#include "hpsim/model/segments.h"
#include "hpsim/model/traffic.h"

namespace hpsim::model {
namespace {

using core::Phase;
using KF = KernelFamily;

StageTemplate compute(std::string_view name, Phase phase, KernelFamily family) {
  return {name, phase, false, family, {}, {}};
}
StageTemplate comm(std::string_view name, Phase phase, std::string_view collective, std::string_view traffic_phase) {
  return {name, phase, true, KF::kDenseGemm, collective, traffic_phase};
}

}  // namespace

const std::vector<StageTemplate>& layer_stages(core::Strategy strategy) {
  static const std::vector<StageTemplate> ep = {
      compute("router", Phase::kForward, KF::kEpRouterFwd),
      comm("metadata", Phase::kForward, kAllToAll, kPhaseMetadata),
      compute("permute", Phase::kForward, KF::kEpPermute),
      comm("dispatch", Phase::kForward, kAllToAllV, kPhaseDispatch),
      compute("regroup", Phase::kForward, KF::kEpRegroup),
      compute("expert_mlp", Phase::kForward, KF::kEpExpertMlpFwd),
      compute("unregroup", Phase::kForward, KF::kEpRegroup),
      comm("combine", Phase::kForward, kAllToAllV, kPhaseCombine),
      compute("unpermute", Phase::kForward, KF::kEpUnpermute),
      compute("unpermute_bwd", Phase::kBackward, KF::kEpUnpermuteBwd),
      comm("combine_bwd", Phase::kBackward, kAllToAllV, kPhaseCombineBwd),
      compute("unregroup_bwd", Phase::kBackward, KF::kEpRegroup),
      compute("expert_mlp_bwd", Phase::kBackward, KF::kEpExpertMlpBwd),
      compute("regroup_bwd", Phase::kBackward, KF::kEpRegroup),
      comm("dispatch_bwd", Phase::kBackward, kAllToAllV, kPhaseDispatchBwd),
      compute("permute_bwd", Phase::kBackward, KF::kEpPermuteBwd),
      compute("router_bwd", Phase::kBackward, KF::kEpRouterBwd),
  };
  static const std::vector<StageTemplate> hp = {
      compute("w_in", Phase::kForward, KF::kHpWIn),
      comm("dispatch", Phase::kForward, kAllToAll, kPhaseDispatch),
      compute("router", Phase::kForward, KF::kHpRouterFwd),
      compute("group", Phase::kForward, KF::kHpGroup),
      compute("expert_mlp", Phase::kForward, KF::kHpExpertMlpFwd),
      compute("weighted_sum", Phase::kForward, KF::kHpCombineFwd),
      comm("combine", Phase::kForward, kAllToAll, kPhaseCombine),
      compute("w_out", Phase::kForward, KF::kHpWOut),
      compute("w_out_bwd", Phase::kBackward, KF::kHpWOutBwd),
      comm("combine_bwd", Phase::kBackward, kAllToAll, kPhaseCombineBwd),
      compute("weighted_sum_bwd", Phase::kBackward, KF::kHpCombineBwd),
      compute("expert_mlp_bwd", Phase::kBackward, KF::kHpExpertMlpBwd),
      compute("group_bwd", Phase::kBackward, KF::kHpGroupBwd),
      compute("router_bwd", Phase::kBackward, KF::kHpRouterBwd),
      comm("dispatch_bwd", Phase::kBackward, kAllToAll, kPhaseDispatchBwd),
      compute("w_in_bwd", Phase::kBackward, KF::kHpWInBwd),
  };
  return strategy == core::Strategy::kEp ? ep : hp;
}

core::Expected<LayerPlan> build_layer_plan(const core::Scenario& scenario, const core::Profile& profile,
                                           core::Strategy strategy, const PlanOptions& options) {
  auto workload = build_workload(scenario, strategy);
  if (!workload) return workload.error();
  return build_layer_plan(scenario, profile, *workload, options);
}

core::Expected<LayerPlan> build_layer_plan(const core::Scenario& scenario, const core::Profile& profile,
                                           const RoutingWorkload& workload, const PlanOptions& options) {
  return build_layer_plan(scenario, profile, workload, layer_traffic(scenario.model, workload), options);
}

core::Expected<LayerPlan> build_layer_plan(const core::Scenario& scenario, const core::Profile& profile,
                                           const RoutingWorkload& workload, LayerTraffic traffic,
                                           const PlanOptions& options) {
  HPSIM_ASSERT(options.num_layers > 0 && options.micro_batches > 0,
               "PlanOptions needs num_layers and micro_batches > 0, got {} and {}", options.num_layers,
               options.micro_batches);
  const core::Strategy strategy = workload.strategy;
  const std::int64_t W = workload.num_ranks;
  const auto uW = static_cast<std::size_t>(W);
  const LayerShape shape = LayerShape::of(scenario, options.save_expert_hidden);
  const std::vector<double> rows = strategy == core::Strategy::kEp
                                       ? workload.rank_loads()
                                       : std::vector<double>(uW, shape.n * shape.H * shape.k);
  // EP's item rows do not depend on the rank's rows; HP's ranks all hold n H k rows.
  const std::vector<SegmentTiles> tiles = segment_tiles(
      workload, wgrad_item_rows(strategy, static_cast<std::int64_t>(rows.front()), scenario.model.expert_hidden));

  // One layer's stages, priced once; layers and micro-batches repeat them.
  std::vector<PlanStage> layer;
  for (const StageTemplate& t : layer_stages(strategy)) {
    if (t.phase == Phase::kBackward && !options.include_backward) continue;
    PlanStage st;
    st.name = std::string(t.name);
    st.phase = t.phase;
    if (t.is_collective) {
      st.kind = StageKind::kCollective;
      st.lane = core::Lane::kComm;
      st.collective = std::string(t.collective);
      auto m = std::find_if(traffic.phases.begin(), traffic.phases.end(),
                            [&](const core::TrafficMatrix& x) { return x.phase == t.traffic_phase; });
      HPSIM_ASSERT(m != traffic.phases.end(), "no traffic matrix for phase {}", t.traffic_phase);
      st.traffic = std::move(*m);  // each phase has one collective stage per layer
      // The bottleneck rank's bytes pick the profile's line (small or large messages).
      auto model = collective_model(profile, scenario.cluster, W, t.collective,
                                    std::max(st.traffic.max_sent(), st.traffic.max_received()));
      if (!model) return model.error();
      st.alpha_ns = model->alpha_us * core::kNsPerUs;
      if (W == 1 && profile.hbm_gbps > 0) {
        // One rank: the all-to-all is a device copy of the rank's own block (read + written).
        st.local_ns = 2 * st.traffic.at(0, 0) / profile.hbm_gbps;  // GB/s = bytes per ns
      }
      if (t.traffic_phase == kPhaseMetadata) {
        // The counts go to the host, which waits for them before it sizes the receive buffers.
        st.local_ns += profile.host_sync_us * core::kNsPerUs;
      }
      st.tier = std::string(tier_name(model->tier));
      st.bandwidth_gbps = model->bandwidth_gbps();
      st.efficiency = model->efficiency;
    } else {
      st.kind = StageKind::kCompute;
      st.lane = core::Lane::kCompute;
      st.kernel = std::string(name_of(t.family));
      auto fit = kernel_fit(profile, t.family);
      if (!fit) return fit.error();
      st.duration_ns.resize(uW);
      st.flops.resize(uW);
      st.bytes.resize(uW);
      st.selections.resize(uW);
      const double copy_gbps = has_copy_floor(t.family) ? profile.hbm_gbps : 0.0;
      for (std::size_t r = 0; r < uW; ++r) {
        const KernelWork work = moe_kernel_work(t.family, shape, rows[r], tiles[r]);
        st.flops[r] = work.flops;
        st.bytes[r] = work.bytes;
        st.selections[r] = work.selections;
        st.duration_ns[r] = kernel_time_us(*fit, work, copy_gbps) * core::kNsPerUs;
      }
    }
    layer.push_back(std::move(st));
  }

  std::vector<Phase> layer_phase;
  for (const auto& st : layer) layer_phase.push_back(st.phase);

  LayerPlan plan;
  plan.strategy = core::to_string(strategy);
  plan.num_ranks = W;
  // Each priced stage is used num_layers * micro_batches times; the last use takes it.
  const std::int64_t uses = options.num_layers * options.micro_batches;
  std::vector<std::int64_t> used(layer.size(), 0);
  plan.stages.reserve(static_cast<std::size_t>(uses) * layer.size());
  auto append = [&](std::size_t index, std::int64_t layer_index, std::int64_t micro_batch) {
    PlanStage st = ++used[index] == uses ? std::move(layer[index]) : layer[index];
    st.id = static_cast<std::int64_t>(plan.stages.size());
    st.layer = layer_index;
    st.micro_batch = micro_batch;
    if (st.id > 0) st.deps = {st.id - 1};
    plan.stages.push_back(std::move(st));
  };
  for (std::int64_t mb = 0; mb < options.micro_batches; ++mb) {
    for (std::int64_t l = 0; l < options.num_layers; ++l) {
      for (std::size_t i = 0; i < layer.size(); ++i) {
        if (layer_phase[i] == Phase::kForward) append(i, l, mb);
      }
    }
    for (std::int64_t l = options.num_layers - 1; l >= 0; --l) {
      for (std::size_t i = 0; i < layer.size(); ++i) {
        if (layer_phase[i] == Phase::kBackward) append(i, l, mb);
      }
    }
  }
  return plan;
}

}  // namespace hpsim::model
