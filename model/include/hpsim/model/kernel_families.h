#pragma once
// The kernel families and collectives whose costs a Profile holds, defined once. Calibration
// measures these names, datasheet profiles list them all, the plan builder and the step estimate
// look them up. docs/model.md ("Kernel families") gives each one's FLOPs and bytes.

#include <array>
#include <string_view>

namespace hpsim::model {

enum class KernelFamily {
  // HP (Multi-Head LatentMoE), per rank: its H/W heads, W n sub-tokens per head.
  kHpWIn,
  kHpWInBwd,
  kHpRouterFwd,
  kHpRouterBwd,
  kHpGroup,
  kHpGroupBwd,
  kHpExpertMlpFwd,
  kHpExpertMlpBwd,
  kHpCombineFwd,
  kHpCombineBwd,
  kHpWOut,
  kHpWOutBwd,
  // EP, per rank: its n tokens and the L_r (token, slot) rows its E/W experts receive.
  kEpRouterFwd,
  kEpRouterBwd,
  kEpPermute,
  kEpPermuteBwd,
  kEpRegroup,
  kEpExpertMlpFwd,
  kEpExpertMlpBwd,
  kEpUnpermute,
  kEpUnpermuteBwd,
  // The rest of a training step.
  kDenseGemm,
  kAttentionFwd,
  kAttentionBwd,
  kOptimizerStep,
};

struct KernelFamilyInfo {
  KernelFamily family;
  std::string_view name;  // key in Profile::kernels
  std::string_view what;
};

inline constexpr std::array<KernelFamilyInfo, 25> kKernelFamilies = {{
    {KernelFamily::kHpWIn, "hp_w_in", "W_in GEMM d -> H h (n rows)"},
    {KernelFamily::kHpWInBwd, "hp_w_in_bwd", "W_in backward: dX and dW_in GEMMs"},
    {KernelFamily::kHpRouterFwd, "hp_router_fwd", "per-head fp32 router h -> E, top-k with bias, softmax over k"},
    {KernelFamily::kHpRouterBwd, "hp_router_bwd", "router backward through the k selected columns"},
    {KernelFamily::kHpGroup, "hp_group", "counting sort by (head, expert) and gather of the k copies"},
    {KernelFamily::kHpGroupBwd, "hp_group_bwd", "sum of the k copies' gradients back to their sub-tokens"},
    {KernelFamily::kHpExpertMlpFwd, "hp_expert_mlp_fwd", "grouped expert MLP h -> f -> h with GELU"},
    {KernelFamily::kHpExpertMlpBwd, "hp_expert_mlp_bwd", "expert MLP backward: dX, dK, dV"},
    {KernelFamily::kHpCombineFwd, "hp_combine_fwd", "gate-weighted sum of the k expert outputs per sub-token"},
    {KernelFamily::kHpCombineBwd, "hp_combine_bwd", "combine backward: output and gate gradients"},
    {KernelFamily::kHpWOut, "hp_w_out", "W_out GEMM H h -> d (n rows)"},
    {KernelFamily::kHpWOutBwd, "hp_w_out_bwd", "W_out backward: dX and dW_out GEMMs"},
    {KernelFamily::kEpRouterFwd, "ep_router_fwd", "fp32 router d -> E, top-k with bias, softmax over k, counts"},
    {KernelFamily::kEpRouterBwd, "ep_router_bwd", "router backward through the k selected columns"},
    {KernelFamily::kEpPermute, "ep_permute", "k-fold copy of each token, grouped by destination rank"},
    {KernelFamily::kEpPermuteBwd, "ep_permute_bwd", "sum of the k copies' gradients back to their token"},
    {KernelFamily::kEpRegroup, "ep_regroup", "reorder received rows by local expert (and back), both passes"},
    {KernelFamily::kEpExpertMlpFwd, "ep_expert_mlp_fwd", "grouped expert MLP d -> f -> d with GELU"},
    {KernelFamily::kEpExpertMlpBwd, "ep_expert_mlp_bwd", "expert MLP backward: dX, dW1, dW2"},
    {KernelFamily::kEpUnpermute, "ep_unpermute", "gate-weighted sum of the k returned copies per token"},
    {KernelFamily::kEpUnpermuteBwd, "ep_unpermute_bwd", "unpermute backward: copy and gate gradients"},
    {KernelFamily::kDenseGemm, "dense_gemm", "bf16 GEMM of the dense parts (attention projections, dense FFN, LM head)"},
    {KernelFamily::kAttentionFwd, "attention_fwd", "causal attention core, forward (flash-style)"},
    {KernelFamily::kAttentionBwd, "attention_bwd", "causal attention core, backward"},
    {KernelFamily::kOptimizerStep, "optimizer_step", "Adam update, memory-bound"},
}};

constexpr std::string_view name_of(KernelFamily family) {
  for (const auto& info : kKernelFamilies) {
    if (info.family == family) return info.name;
  }
  return "";
}

// Collectives (keys in Profile::collectives[tier]) and link tiers.
inline constexpr std::string_view kAllToAll = "all_to_all";      // equal splits; also EP's metadata
inline constexpr std::string_view kAllToAllV = "all_to_all_v";   // EP's data: optional, falls back to all_to_all
inline constexpr std::string_view kAllReduce = "all_reduce";
inline constexpr std::string_view kAllGather = "all_gather";
inline constexpr std::array<std::string_view, 3> kRequiredCollectives = {kAllToAll, kAllReduce, kAllGather};

inline constexpr std::string_view kTierIntraNode = "intra_node";
inline constexpr std::string_view kTierInterNode = "inter_node";
inline constexpr std::array<std::string_view, 2> kTiers = {kTierIntraNode, kTierInterNode};

}  // namespace hpsim::model
