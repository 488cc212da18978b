// Kernel work from shapes, and kernel and collective times from a profile (cost.h, docs/model.md).
#include "hpsim/model/cost.h"

#include <algorithm>

#include "hpsim/core/units.h"
#include "hpsim/model/calibration_fit.h"

namespace hpsim::model {

LayerShape LayerShape::of(const core::Scenario& scenario, bool save_expert_hidden) {
  const auto& m = scenario.model;
  LayerShape x;
  x.n = static_cast<double>(scenario.workload.tokens_per_rank);
  x.d = static_cast<double>(m.d_model);
  x.H = static_cast<double>(m.num_heads);
  x.h = static_cast<double>(m.head_dim);
  x.E = static_cast<double>(m.num_experts);
  x.k = static_cast<double>(m.top_k);
  x.f = static_cast<double>(m.expert_hidden);
  x.W = static_cast<double>(scenario.parallel.num_ranks);
  x.s = static_cast<double>(m.bytes_per_element);
  x.save_expert_hidden = save_expert_hidden;
  return x;
}

KernelWork gemm_work(double M, double K, double N, double s) { return {2 * M * K * N, (M * K + K * N + M * N) * s}; }

KernelWork moe_kernel_work(KernelFamily family, const LayerShape& x, double R, const SegmentTiles& tiles) {
  const double n = x.n, d = x.d, H = x.H, h = x.h, E = x.E, k = x.k, f = x.f, W = x.W, s = x.s;
  const double S = n * H;          // HP sub-tokens a rank routes (W n per local head, H/W heads)
  const double fp32 = 4;           // router weights and gates
  const double slot_meta = 4 + 4;  // fp32 gate + int32 index per slot
  const double saved = x.save_expert_hidden ? 2 : 0;      // f-wide tensors written forward, read backward
  const double recompute = x.save_expert_hidden ? 0 : 1;  // the backward redoes the first GEMM
  // Expert MLPs (docs/model.md, "Segments and row tiles"): FLOPs on tile-padded rows P_T; the
  // weights of every non-empty segment come from device memory once per pass (the work items of a
  // segment run side by side and share them through L2); the backward writes every segment's
  // gradients, zeros for the empty ones.
  const double segments = tiles.segments, nonempty = tiles.nonempty;
  const double P_dw = tiles.padded_rows(kMlpWgradTileRows);
  // A segment longer than one weight-gradient item: each of its items writes fp32 partial sums of
  // the expert's two gradients (2 w f values), which the slot sums read back (8 bytes per value).
  const double partials = tiles.split_items * 2 * f * 8;
  switch (family) {
    case KernelFamily::kHpWIn: return gemm_work(n, d, H * h, s);
    case KernelFamily::kHpWOut: return gemm_work(n, H * h, d, s);
    case KernelFamily::kHpWInBwd:
    case KernelFamily::kHpWOutBwd: {
      const KernelWork g = gemm_work(n, d, H * h, s);  // dX and dW: two GEMMs of the forward's size
      return {2 * g.flops, 2 * g.bytes};
    }
    case KernelFamily::kHpRouterFwd:
      return {2 * S * h * E, S * h * s + H / W * h * E * fp32 + S * k * slot_meta + H / W * E * 4, S * E * k};
    case KernelFamily::kHpRouterBwd:
      return {4 * S * k * h, 2 * S * h * s + S * k * slot_meta + 2 * H / W * h * E * fp32};
    case KernelFamily::kHpGroup: return {0, S * h * s + R * h * s + R * slot_meta};
    case KernelFamily::kHpGroupBwd: return {R * h, R * h * s + S * h * s};
    case KernelFamily::kHpExpertMlpFwd:
      return {4 * tiles.padded_rows(kHpMlpFwdItemRows) * h * f,
              2 * R * h * s + saved * R * f * s + nonempty * 2 * h * f * s};
    case KernelFamily::kHpExpertMlpBwd:
      // One fused pass per weight-gradient item and 64-row tile: S (recomputed), dA, dX, dK and dV;
      // it reads the non-empty segments' weights once and writes every segment's gradients (zeros
      // for an empty one, whose weights it skips).
      return {(8 + 2 * recompute) * P_dw * h * f,
              3 * R * h * s + saved * R * f * s + (nonempty + segments) * 2 * h * f * s + partials * h};
    case KernelFamily::kHpCombineFwd: return {2 * R * h, R * h * s + R * fp32 + S * h * s};
    case KernelFamily::kHpCombineBwd: return {3 * R * h, S * h * s + 2 * R * h * s + R * slot_meta};
    case KernelFamily::kEpRouterFwd: return {2 * n * d * E, n * d * s + d * E * fp32 + n * k * slot_meta + E * 4, n * E * k};
    case KernelFamily::kEpRouterBwd: return {4 * n * k * d, 2 * n * d * s + n * k * slot_meta + 2 * d * E * fp32};
    case KernelFamily::kEpPermute: return {0, n * d * s + n * k * d * s + n * k * slot_meta};
    case KernelFamily::kEpPermuteBwd: return {n * k * d, n * k * d * s + n * d * s};
    case KernelFamily::kEpRegroup: return {0, 2 * R * d * s + R * 4};
    case KernelFamily::kEpExpertMlpFwd:
      return {4 * tiles.padded_rows(kEpMlpTileRows) * d * f,
              2 * R * d * s + saved * R * f * s + nonempty * 2 * d * f * s};
    case KernelFamily::kEpExpertMlpBwd:
      return {(4 + 2 * recompute) * tiles.padded_rows(kEpMlpTileRows) * d * f + 4 * P_dw * d * f,
              3 * R * d * s + saved * R * f * s + (nonempty + segments) * 2 * d * f * s + partials * d};
    case KernelFamily::kEpUnpermute: return {2 * n * k * d, n * k * d * s + n * k * fp32 + n * d * s};
    case KernelFamily::kEpUnpermuteBwd: return {3 * n * k * d, n * d * s + 2 * n * k * d * s + n * k * slot_meta};
    case KernelFamily::kDenseGemm:
    case KernelFamily::kAttentionFwd:
    case KernelFamily::kAttentionBwd:
    case KernelFamily::kOptimizerStep: break;
  }
  HPSIM_ASSERT(false, "moe_kernel_work: {} is not a MoE-layer family", name_of(family));
  return {};
}

core::Expected<core::KernelFit> kernel_fit(const core::Profile& profile, KernelFamily family) {
  const std::string_view name = name_of(family);
  auto it = profile.kernels.find(std::string(name));
  if (it == profile.kernels.end()) {
    return core::Error::field(fmt::format("profile \"{}\": kernels.{}", profile.name, name),
                              "missing (every family of docs/model.md is needed)");
  }
  return it->second;
}

double kernel_time_us(const core::KernelFit& fit, const KernelWork& work) {
  return kernel_time_us(fit, work.flops, work.bytes, work.selections);
}

bool has_copy_floor(KernelFamily family) {
  switch (family) {
    case KernelFamily::kHpExpertMlpFwd:
    case KernelFamily::kHpExpertMlpBwd:
    case KernelFamily::kEpExpertMlpFwd:
    case KernelFamily::kEpExpertMlpBwd: return true;
    default: return false;
  }
}

double kernel_time_us(const core::KernelFit& fit, const KernelWork& work, double copy_gbps) {
  const double t = kernel_time_us(fit, work);
  if (!(copy_gbps > 0)) return t;
  return std::max(t, fit.alpha_us + work.bytes / (copy_gbps * 1e9) * 1e6);
}

LinkTier group_tier(const core::ClusterSpec& cluster, std::int64_t num_ranks) {
  return num_ranks <= cluster.gpus_per_node ? LinkTier::kIntraNode : LinkTier::kInterNode;
}

std::string_view tier_name(LinkTier tier) { return tier == LinkTier::kIntraNode ? kTierIntraNode : kTierInterNode; }

double tier_link_gbps(const core::ClusterSpec& cluster, LinkTier tier) {
  return tier == LinkTier::kIntraNode ? cluster.intra_node.bandwidth_gbps : cluster.inter_node.bandwidth_gbps;
}

core::Expected<CollectiveModel> collective_model(const core::Profile& profile, const core::ClusterSpec& cluster,
                                                 std::int64_t num_ranks, std::string_view collective, double bytes) {
  CollectiveModel out;
  out.tier = group_tier(cluster, num_ranks);
  out.num_ranks = num_ranks;
  out.link_gbps = tier_link_gbps(cluster, out.tier);
  const std::string tier(tier_name(out.tier));
  auto tier_it = profile.collectives.find(tier);
  const core::CollectiveFit* fit = nullptr;
  std::string used(collective);
  if (tier_it != profile.collectives.end()) {
    auto it = tier_it->second.find(used);
    if (it == tier_it->second.end() && collective == kAllToAllV) {
      used = std::string(kAllToAll);
      it = tier_it->second.find(used);
    }
    if (it != tier_it->second.end()) fit = &it->second;
  }
  if (fit == nullptr) {
    return core::Error::field(fmt::format("profile \"{}\": collectives.{}.{}", profile.name, tier, used),
                              "missing (every collective of docs/model.md is needed on both tiers)");
  }
  out.name = used;
  const bool large = bytes >= 0 && out.link_gbps > 0 && takes_large_line(*fit, bytes, out.link_gbps);
  out.efficiency = large ? fit->large_efficiency : fit->efficiency;
  const double alpha = large ? fit->large_alpha_us : fit->alpha_us;
  out.alpha_us = num_ranks > 1 ? alpha : 0.0;
  return out;
}

double collective_time_us(const CollectiveModel& model, double bytes) {
  if (model.num_ranks <= 1) return 0.0;
  return model.alpha_us + core::transfer_us(bytes, model.bandwidth_gbps());
}

std::vector<std::string> missing_profile_entries(const core::Profile& profile) {
  std::vector<std::string> missing;
  for (const auto& info : kKernelFamilies) {
    if (!profile.kernels.contains(std::string(info.name))) {
      missing.push_back(fmt::format("kernels.{}: missing ({})", info.name, info.what));
    }
  }
  for (auto tier : kTiers) {
    auto it = profile.collectives.find(std::string(tier));
    for (auto name : kRequiredCollectives) {
      if (it == profile.collectives.end() || !it->second.contains(std::string(name))) {
        missing.push_back(fmt::format("collectives.{}.{}: missing", tier, name));
      }
    }
  }
  return missing;
}

}  // namespace hpsim::model
