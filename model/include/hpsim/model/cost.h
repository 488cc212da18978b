#pragma once
// Kernel and collective costs from a Profile (docs/model.md, "Time"). Symbols: n, d, H, h, E, k,
// f, W, s as in DESIGN.md section 2; R = (token, slot) rows a rank's experts process (EP: L_r;
// HP: n H k); S = n H sub-tokens a rank routes for HP.
//
//   kernel      t = alpha + flops / (tflops 1e12) + bytes / (gbps 1e9) + selections / (select_gps 1e9);
//               the expert MLPs: alpha + max(flops / (tflops 1e12), bytes / (gbps 1e9)) (the fit's
//               roofline form), and at least alpha + bytes / (copy ceiling)
//   collective  t = alpha + bytes / (efficiency * tier link bandwidth)        (W > 1; 0 for W = 1, whose
//               local copy the plan charges as PlanStage::local_ns); with a large-message line in the
//               profile, the faster of the two lines at the stage's bytes
//   tier        intra_node when the W ranks fit in one node (W <= gpus_per_node), else inter_node

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "hpsim/core/error.h"
#include "hpsim/core/profile.h"
#include "hpsim/core/scenario.h"
#include "hpsim/model/kernel_families.h"
#include "hpsim/model/segments.h"

namespace hpsim::model {

struct KernelWork {
  double flops = 0;
  double bytes = 0;       // device memory read + written
  double selections = 0;  // top-k candidate tests, one per (score, slot): the routers' forward only
};

// The symbols of one MoE layer on one rank, as doubles so that formulas read as in docs/model.md.
struct LayerShape {
  double n = 0, d = 0, H = 0, h = 0, E = 0, k = 0, f = 0, W = 0, s = 0;
  bool save_expert_hidden = true;  // false: the backward recomputes the f-wide activations

  static LayerShape of(const core::Scenario& scenario, bool save_expert_hidden = true);
};

// GEMM (M x K) by (K x N): 2 M K N FLOPs, (M K + K N + M N) s bytes.
KernelWork gemm_work(double M, double K, double N, double s);

// Work of one call of a MoE-layer family on a rank whose experts process `rows` rows, cut into the
// segments `tiles` (read by the expert-MLP families only: tile-padded rows, weights per work item).
// The dense families (dense_gemm, attention_*, optimizer_step) belong to the step estimate.
KernelWork moe_kernel_work(KernelFamily family, const LayerShape& x, double rows, const SegmentTiles& tiles);

// The profile's fit of a family; an error names the profile and the missing "kernels.<name>".
core::Expected<core::KernelFit> kernel_fit(const core::Profile& profile, KernelFamily family);
double kernel_time_us(const core::KernelFit& fit, const KernelWork& work);

// The families whose counted bytes all cross device memory (weights, activations and gradients of
// the expert MLPs): their time has the device copy ceiling as a floor, alpha + bytes / copy rate.
// The fitted byte rate of a family is not physical (it shares the time with the FLOP term) and can
// exceed the copy rate; where the bytes dominate (skewed routing: few rows, every segment's weight
// gradients still written) the floor keeps the prediction from moving them faster than the device can.
bool has_copy_floor(KernelFamily family);
// max(kernel_time_us(fit, work), alpha + bytes / copy_gbps); copy_gbps <= 0: no floor.
double kernel_time_us(const core::KernelFit& fit, const KernelWork& work, double copy_gbps);

enum class LinkTier { kIntraNode, kInterNode };
LinkTier group_tier(const core::ClusterSpec& cluster, std::int64_t num_ranks);
std::string_view tier_name(LinkTier tier);
double tier_link_gbps(const core::ClusterSpec& cluster, LinkTier tier);

// One collective on the tier a group of W ranks crosses.
struct CollectiveModel {
  std::string name;            // profile key actually used ("all_to_all_v" falls back to "all_to_all")
  LinkTier tier = LinkTier::kIntraNode;
  std::int64_t num_ranks = 0;  // W
  double alpha_us = 0;         // 0 when W = 1
  double efficiency = 0;
  double link_gbps = 0;        // the tier's per-direction link bandwidth (cluster)
  double bandwidth_gbps() const { return efficiency * link_gbps; }
};

// `bytes`, per rank as in the profile's points (what the bottleneck rank sends or receives over
// links), picks the line of a fit that has a large-message line: the one that is faster at that
// size; bytes < 0 takes the first line.
core::Expected<CollectiveModel> collective_model(const core::Profile& profile, const core::ClusterSpec& cluster,
                                                 std::int64_t num_ranks, std::string_view collective, double bytes = -1);

// alpha + bytes / (efficiency * link); `bytes` is what the bottleneck rank sends or receives
// (all-to-all) or the nccl-tests bus bytes (all-reduce: 2 (W-1)/W of the buffer). 0 when W = 1.
double collective_time_us(const CollectiveModel& model, double bytes);

// Every family and collective a profile must have for the model to run (docs/model.md): one
// "path: missing ..." line per absent entry ("kernels.hp_group", "collectives.intra_node.all_to_all").
std::vector<std::string> missing_profile_entries(const core::Profile& profile);

}  // namespace hpsim::model
