#pragma once
// The discrete-event engine: places a model::LayerPlan in time on a Topology (docs/simulator.md).
//
// Semantics are the plan's (layer_plan.h): a stage starts on rank r when its deps are done on r;
// a compute stage holds r's compute lane for duration_ns[r]; a collective stage sends r's row of
// its traffic matrix as one flow per peer, all leaving alpha_ns + local_ns after the stage starts
// (local_ns: a one-rank group's device copy, EP metadata's host round trip), and ends on r when
// every flow r sends and every flow addressed to r has arrived. Rank r runs on GPU r.
//
// Each rank executes its stages like a CUDA stream, in plan order:
//  - overlap off (default, as the paper's implementation): one stream per rank for both lanes, so
//    a rank never computes while it communicates;
//  - overlap on: one stream per lane, so compute may run under communication where deps allow.
//
// An all_reduce whose traffic matrix holds only a diagonal (each rank's buffer size B) is run as
// its ring's bus-bytes equivalent: each rank sends 2 (W-1)/W B to rank (r+1) mod W. Any other
// matrix is sent as given.
//
// Same plan, topology and options: the same SimResult, bit for bit.

#include <cstdint>
#include <string>
#include <vector>

#include "hpsim/core/error.h"
#include "hpsim/core/report.h"
#include "hpsim/core/scenario.h"
#include "hpsim/core/timeline.h"
#include "hpsim/model/layer_plan.h"
#include "hpsim/sim/flow_network.h"
#include "hpsim/sim/topology.h"

namespace hpsim::sim {

struct SimOptions {
  bool overlap = false;
  NetworkOptions network;
  TopologyOptions topology;            // used by run_scenario
  std::int64_t max_transfers = 20000;  // transfer records kept (for trace arrows); the rest are counted
};

// One group of flows that arrived (one flow when the network does not aggregate).
struct Transfer {
  std::int64_t stage = 0;      // plan stage id
  std::int64_t src = 0;        // one flow of the group: its sender and receiver
  std::int64_t dst = 0;
  std::int64_t num_flows = 0;  // flows in the group
  double bytes = 0;            // per flow
  std::int64_t start_ns = 0;   // left the sender
  std::int64_t end_ns = 0;     // arrived
};

// One collective on one rank: when it started, when its own flows had all arrived, when every
// flow to it had arrived, and who sent the last of those.
struct CollectiveRecord {
  std::int64_t stage = 0;
  std::int64_t rank = 0;
  std::int64_t start_ns = 0;
  std::int64_t sent_ns = 0;      // its last outgoing flow arrived (start + alpha if none)
  std::int64_t received_ns = 0;  // its last incoming flow arrived (start + alpha if none)
  std::int64_t end_ns = 0;
  std::int64_t last_sender = -1;  // rank of the last incoming flow, -1 if none
};

struct SimResult {
  core::Timeline timeline;  // source "simulated", spans per rank in start order
  std::vector<Transfer> transfers;
  std::int64_t num_transfers = 0;  // recorded or not
  std::vector<CollectiveRecord> collectives;  // by stage, then rank
  std::vector<LinkClassSeries> links;
  std::vector<TimeValue> bytes_in_flight;
  NetworkStats network;
  std::int64_t num_events = 0;
};

// Rule checks of a plan: stage ids, per-rank sizes, W x W matrices, deps pointing backwards (and
// the dependency graph acyclic). Errors name the stage and field.
core::Status check_plan(const model::LayerPlan& plan);

core::Expected<SimResult> simulate(const model::LayerPlan& plan, const Topology& topology, const SimOptions& options = {});

// The topology of scenario.cluster (custom: its topology_file), then simulate().
core::Expected<SimResult> run_scenario(const core::Scenario& scenario, const model::LayerPlan& plan,
                                       const SimOptions& options = {});

// One row per plan stage, in plan order: max and mean over ranks of the span's duration (waits
// included for a collective), max bytes and FLOPs over ranks.
std::vector<core::StageCost> stage_costs(const model::LayerPlan& plan, const core::Timeline& timeline);

struct LayerTimes {
  double forward_us = 0;   // first forward start to last forward end, over all ranks
  double backward_us = 0;  // the same for backward spans
  double total_us = 0;     // first start to last end
};
LayerTimes layer_times(const core::Timeline& timeline);

}  // namespace hpsim::sim
