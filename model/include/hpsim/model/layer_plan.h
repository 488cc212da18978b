#pragma once
// LayerPlan: what happens in one MoE layer (or a step of several), not when. The model builds it
// (build_layer_plan in plan_builder.h); the simulator places it in time on a topology; the
// analytic estimate walks it without contention. Symbols as in DESIGN.md section 2.
//
// The layers are SPMD: every rank runs every stage, with its own quantities. So a plan is one
// list of stages, each holding per-rank vectors (index = rank) rather than W copies of the list.
//
// Semantics (the simulator and the analytic estimate both follow them):
//  - A stage may start on rank r once every stage in `deps` has finished on rank r.
//  - A compute stage occupies rank r's compute lane for duration_ns[r].
//  - A collective stage (lane kComm) starts on rank r when its deps are done there; rank r's flows
//    to each peer leave then (after alpha_ns of software latency). It ends on rank r when r has
//    sent all its flows and received every flow addressed to it. So a slow sender delays its
//    receivers, and EP's hot rank delays everyone's combine.
//  - A collective stage may also spend local_ns on every rank before its flows leave (after
//    alpha_ns): the device copy of a one-rank group's own block, and EP's metadata host round trip.
//  - `traffic` holds the bytes of the collective: entry (src, dst) is what src sends to dst; the
//    diagonal is local and costs nothing on the network.

#include <cstdint>
#include <string>
#include <vector>

#include "hpsim/core/timeline.h"
#include "hpsim/core/traffic.h"

namespace hpsim::model {

enum class StageKind { kCompute, kCollective };

struct PlanStage {
  std::int64_t id = 0;      // index in LayerPlan::stages
  std::string name;         // "w_in", "router", "dispatch", "expert_mlp", ... (docs/model.md)
  core::Phase phase = core::Phase::kForward;
  core::Lane lane = core::Lane::kCompute;
  StageKind kind = StageKind::kCompute;
  std::int64_t layer = 0;
  std::int64_t micro_batch = 0;

  // Compute stages: per rank.
  std::string kernel;               // kernel family (kernel_families.h), e.g. "hp_expert_mlp_fwd"
  std::vector<double> duration_ns;  // from the profile's kernel fit
  std::vector<double> flops;
  std::vector<double> bytes;        // device-memory bytes the kernels move
  std::vector<double> selections;   // top-k candidate tests (router forward stages; else zeros)

  // Collective stages.
  std::string collective;     // "all_to_all", "all_to_all_v", "all_reduce", "all_gather"
  core::TrafficMatrix traffic;  // W x W bytes
  double alpha_ns = 0;        // software latency from the profile (per collective call)
  double local_ns = 0;        // time on the rank itself: local copy (W = 1), host round trip (EP metadata)
  std::string tier;           // "intra_node" or "inter_node": the link tier the group crosses
  double bandwidth_gbps = 0;  // efficiency x tier link bandwidth (GB/s per direction), for the analytic walk
  double efficiency = 1;      // the profile's fitted fraction of the link: the simulator sends bytes / efficiency

  std::vector<std::int64_t> deps;  // stage ids that must finish on the same rank first
};

struct LayerPlan {
  std::string strategy;  // "ep" or "hp"
  std::int64_t num_ranks = 0;
  std::vector<PlanStage> stages;  // topologically ordered: deps always point backwards
};

}  // namespace hpsim::model
