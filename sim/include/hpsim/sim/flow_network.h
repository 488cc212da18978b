#pragma once
// FlowNetwork: flow-level model of the links of a Topology.
//
// Each transfer is a flow along its route. Flows in progress share every link max-min fairly
// (max_min.h); rates are recomputed when flows start or end, once per instant (after every flow
// of that instant has been added, via an EventQueue kLate event). A flow's last byte leaves when
// its bytes have been sent at those rates; it arrives a path latency (sum over its links) later,
// and the listener hears of it then.
//
// Aggregation (NetworkOptions::aggregate, on by default). Flows that leave at the same instant
// with the same tag, the same size and the same path class (the same sequence of link classes)
// form one group that moves as one: same rate, same end. At each hop a group is
//  - on one link, when all its flows cross it (weight there = its number of flows);
//  - spread over a block: the links of one class that share a switch end (the NIC uplinks under
//    one leaf, the spine links into one leaf, ...), when its flows stay in one block; or
//  - spread over the class, otherwise.
// A block or class channel stands for its average covered link: its capacity is one link's times
// the number of its links that spread groups cover now, and a spread hop weighs its number of
// flows there. Where a spread group also crosses links or blocks that carry groups of a lower
// level, it loads those with the flows it really has there (its footprint is kept per link), so
// mixed levels stay consistent; where such a link is the first or last hop of a group with one
// receiver or one sender, the flows on it are carved out into a group of their own.
//
// Spreading is allowed only where the flows of that instant load the block or class evenly: they
// touch at least spread_min_coverage of its covered links (theirs included), the busiest link
// carries at most 1 + spread_tolerance times the mean over the links touched, and each group puts
// as many flows on every link it touches; otherwise flows are told apart by destination, block or
// link there. This is exact when the traffic is symmetric under the grouping (HP's equal
// all-to-all; EP's per-destination sizes leaving together) and an approximation otherwise
// (docs/simulator.md gives measured differences). With aggregate = false every flow is its own
// group: plain per-link max-min.
//
// Incremental rates: after groups end, a remaining group keeps its rate if it still has a full
// link on which no group is faster (the max-min condition). The groups that lose that, the new
// groups, and those whose links changed are re-rated with every other rate held, and the set is
// widened until the condition holds for all; only when it grows past three quarters of the groups
// are all rates recomputed. The result is the same allocation as a recomputation.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "hpsim/sim/event_queue.h"
#include "hpsim/sim/topology.h"

namespace hpsim::sim {

// Bytes of a flow from a plan's double: rounded to whole bytes; a flow of 0 bytes does not exist.
std::int64_t flow_bytes(double bytes);

struct NetworkOptions {
  bool aggregate = true;
  double spread_tolerance = 0.1;       // busiest link / mean over the touched links, minus 1
  double spread_min_coverage = 0.75;   // touched links / links of the block or class covered
  bool incremental = true;            // false: recompute all rates at every change (for checking)
  bool check_incremental = false;     // assert after each incremental update that a recomputation agrees
  std::int64_t max_samples = 200000;  // per series (utilisation per link class, bytes in flight)
};

// GPUs first .. last each send (or receive) `count` flows of a group.
struct RankRun {
  std::int32_t first = 0;
  std::int32_t last = 0;
  std::int32_t count = 0;
};

// A group of flows that has arrived.
struct FlowArrival {
  std::int64_t tag = 0;             // as given to add_row / add_flow
  std::int64_t bytes_per_flow = 0;
  std::int64_t num_flows = 0;
  TimeNs start_ns = 0;              // first byte left
  TimeNs sent_ns = 0;               // last byte left
  TimeNs end_ns = 0;                // last byte arrived (sent_ns + path latency)
  std::int32_t example_src = 0;     // one flow of the group
  std::int32_t example_dst = 0;
  std::span<const RankRun> senders;    // flows per sending GPU, as runs of GPUs
  std::span<const RankRun> receivers;  // flows per receiving GPU
};

class FlowListener {
 public:
  virtual void on_arrival(const FlowArrival& arrival) = 0;

 protected:
  ~FlowListener() = default;
};

struct TimeValue {
  TimeNs t_ns = 0;
  double value = 0;
};

// Mean utilisation of the links of one class in use (load / capacity), after each change.
struct LinkClassSeries {
  std::string name;
  double bandwidth_gbps = 0;
  std::int64_t num_links = 0;       // in the topology
  std::int64_t num_links_used = 0;  // carried at least one flow
  double bytes_carried = 0;         // summed over the class's links
  std::vector<TimeValue> utilisation;
  bool truncated = false;           // more than NetworkOptions::max_samples changes
};

struct NetworkStats {
  std::int64_t flows = 0;
  std::int64_t groups = 0;
  std::int64_t instants = 0;           // instants with a rate update
  std::int64_t full_recomputes = 0;
  std::int64_t local_repairs = 0;      // instants settled by re-rating only the groups affected
  std::int64_t repaired_groups = 0;    // groups re-rated by those, summed
  std::int64_t max_active_groups = 0;
};

class FlowNetwork {
 public:
  FlowNetwork(const Topology& topology, EventQueue& queue, FlowListener& listener, NetworkOptions options = {});
  ~FlowNetwork();
  FlowNetwork(const FlowNetwork&) = delete;
  FlowNetwork& operator=(const FlowNetwork&) = delete;

  // Flows leaving GPU `src` now, flow_bytes(bytes_by_dst[d]) to each GPU d != src. The span must
  // stay valid until the current instant has been processed.
  void add_row(std::int64_t tag, std::int64_t src, std::span<const double> bytes_by_dst);
  // One flow leaving now.
  void add_flow(std::int64_t tag, std::int64_t src, std::int64_t dst, std::int64_t bytes);

  // No flow in progress and none waiting to start.
  bool idle() const;
  const NetworkStats& stats() const;
  std::vector<LinkClassSeries> link_class_series() const;
  // Bytes of flows not yet sent, after each change.
  const std::vector<TimeValue>& bytes_in_flight() const;
  // Current rate (bytes per ns) of each flow of the group `tag` from src to dst; -1 when no such
  // flow is in progress. For tests and debugging; linear in the number of groups.
  double current_rate(std::int64_t tag, std::int64_t src, std::int64_t dst) const;

  struct State;

 private:
  std::unique_ptr<State> state_;
};

}  // namespace hpsim::sim
