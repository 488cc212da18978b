#pragma once
// Private to the flow network: the state behind FlowNetwork (flow_network.h), shared by
// flow_network.cpp (events, completions, the public calls), flow_grouping.cpp (grouping the flows
// of an instant, blocks, footprints, carving) and flow_rates.cpp (max-min rates: memberships,
// full recomputation, local repair).
//
// Channels: ids [0, L) are the topology's links, [L, L + B) its blocks, [L + B, L + B + C) its link
// classes. A block is the set of links of one class that share their switch end (the uplinks under
// one leaf, the spine links into one leaf, ...); block and class channels stand for their average
// covered link: capacity = one link's x the links spread groups cover, weight = flows.

#include <algorithm>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "flow_groups.h"
#include "hpsim/sim/flow_network.h"
#include "hpsim/sim/max_min.h"

namespace hpsim::sim {
namespace detail {

// Where a group's flows cross one hop: all on one link, spread over one block, or over a class.
enum class Level : std::uint8_t { kLink, kBlock, kClass };

struct Hop {
  std::int32_t id = 0;          // link, block or class, by level
  std::int32_t link_class = 0;
  Level level = Level::kLink;
  std::vector<Run> footprint;   // block and class levels: flows per link (class-local indices)
};

struct Group {
  std::int64_t tag = 0;
  std::int64_t bytes = 0;
  std::int64_t num_flows = 0;
  std::int64_t latency_ns = 0;
  TimeNs start = 0;
  TimeNs sent = 0;
  TimeNs updated_at = 0;
  double remaining = 0;  // per flow, at updated_at
  double rate = 0;       // per flow, bytes per ns
  bool has_rate = false;
  bool alive = true;
  bool listed = false;  // in the members lists of its channels
  std::uint32_t version = 0;
  std::int32_t example_src = 0;
  std::int32_t example_dst = 0;
  std::int32_t bottleneck = -1;
  std::vector<Hop> hops;
  std::vector<std::pair<std::int32_t, double>> members;  // channel, weight
  std::vector<RankRun> senders;
  std::vector<RankRun> receivers;
};

struct Building {
  GroupKey key;
  std::int64_t num_flows = 0;
  std::int64_t latency_ns = 0;
  std::int32_t example_src = 0;
  std::int32_t example_dst = 0;
  std::array<LinkId, kMaxHops> first{};
  std::array<bool, kMaxHops> same{};
  std::vector<FootprintBuilder> footprints;  // per hop (used where the key does not pin it)
  FootprintBuilder senders;    // runs of GPU indices
  FootprintBuilder receivers;
};

struct PendingRow {
  std::int64_t tag = 0;
  std::int64_t src = 0;
  std::span<const double> row;  // empty for a single flow
  std::int64_t dst = 0;
  std::int64_t bytes = 0;
};

struct Finish {
  TimeNs t;
  std::int32_t group;
  std::uint32_t version;
};
struct FinishLater {
  bool operator()(const Finish& a, const Finish& b) const {
    if (a.t != b.t) return a.t > b.t;
    return a.group > b.group;
  }
};

}  // namespace detail

// The detail names the three FlowNetwork sources (flow_network.cpp, flow_grouping.cpp,
// flow_rates.cpp) use unqualified; this header is private to them.
using detail::count_at;
using detail::count_in;
using detail::FootprintBuilder;
using detail::GroupKey;
using detail::GroupKeyHash;
using detail::kMaxHops;
using detail::Run;
using detail::to_rank_runs;
using Group = detail::Group;
using Hop = detail::Hop;
using Level = detail::Level;
using Building = detail::Building;
using PendingRow = detail::PendingRow;
using Finish = detail::Finish;
using FinishLater = detail::FinishLater;

struct FlowNetwork::State {
  const Topology& topo;
  EventQueue& queue;
  FlowListener& listener;
  NetworkOptions options;
  std::int32_t num_links = 0;
  std::int32_t num_classes = 0;
  std::int64_t num_gpus = 0;
  std::int32_t num_blocks = 0;
  std::vector<std::int32_t> link_class;
  std::vector<std::int32_t> class_index;  // per link: its index in its class, links sorted by block
  std::vector<std::int32_t> block_of;     // per link
  std::vector<std::int32_t> block_lo;     // per block: first class-local index
  std::vector<std::int32_t> block_hi;     // per block: last class-local index
  std::vector<std::int32_t> block_class;  // per block
  std::vector<double> capacity;  // per channel

  std::vector<Group> groups;
  std::vector<std::int32_t> active;  // alive groups, and dead ones until the next recompute
  std::int64_t num_alive = 0;
  std::vector<PendingRow> pending;
  std::vector<std::int32_t> ended_now;
  bool settle_scheduled = false;

  std::vector<double> load;
  std::vector<double> level;
  std::vector<std::vector<std::int32_t>> members;
  std::vector<std::vector<std::int32_t>> bottlenecked;
  std::vector<char> touched;
  std::vector<std::int32_t> touched_list;

  // Alive hops at each level, and the links and blocks that have (or had) some.
  std::vector<std::int32_t> pinned_count;                   // per link
  std::vector<std::int64_t> block_spread;                   // per block
  std::vector<std::int64_t> class_pinned;                   // per class: alive link-level hops
  std::vector<std::int64_t> class_block_spread;             // per class: alive block-level hops
  std::vector<std::int64_t> class_spread;                   // per class: alive class-level hops
  std::vector<std::vector<std::int32_t>> pinned_links_of;   // per class
  std::vector<std::vector<std::int32_t>> pinned_links_in;   // per block
  std::vector<char> listed_link;
  std::vector<std::vector<std::int32_t>> spread_blocks_of;  // per class
  std::vector<char> listed_block;
  std::vector<char> link_used;
  std::vector<std::int64_t> class_used;                     // links that ever carried a flow
  std::vector<std::vector<std::int32_t>> class_links_;      // per class: links by class-local index
  std::vector<std::int32_t> cover_;                         // per link: alive spread hops covering it
  std::vector<std::int64_t> union_block_;                   // per block: links covered
  std::vector<std::int64_t> union_class_;                   // per class: links covered
  std::vector<double> link_capacity_;                       // per channel: one link's capacity

  // Min-heap of (finish time, group, version) under FinishLater; stale entries are skipped.
  std::vector<Finish> finish_heap;
  void push_finish(const Finish& f) {
    finish_heap.push_back(f);
    std::push_heap(finish_heap.begin(), finish_heap.end(), FinishLater{});
  }
  void pop_finish() {
    std::pop_heap(finish_heap.begin(), finish_heap.end(), FinishLater{});
    finish_heap.pop_back();
  }
  std::uint64_t wake_generation = 0;

  NetworkStats stats;
  std::vector<double> class_load;   // sum over alive hops of flows * rate
  std::vector<double> class_bytes;  // carried
  std::vector<std::vector<TimeValue>> class_util;
  std::vector<char> class_truncated;
  std::vector<TimeValue> in_flight;
  bool in_flight_truncated = false;
  double in_flight_bytes = 0;
  double total_rate = 0;
  TimeNs in_flight_at = 0;

  std::vector<std::int64_t> batch_count;
  std::vector<std::int32_t> batch_touched;
  std::vector<std::int64_t> block_max_;
  std::vector<std::int64_t> block_total_;
  std::vector<std::int64_t> block_touched_;
  std::vector<std::int64_t> block_new_;
  MaxMinProblem problem;
  MaxMinSolution solution;
  MaxMinWorkspace workspace_;
  MaxMinProblem repair_problem_;
  MaxMinSolution repair_solution_;
  std::vector<std::int32_t> affected_;      // groups coupled to a newly active channel
  std::vector<std::int32_t> carved_;        // groups carved out of others
  std::vector<std::int32_t> activated_links_;
  std::vector<std::int32_t> activated_blocks_;
  std::vector<std::int32_t> changed_;
  std::vector<std::int32_t> by_dst_;  // grouping: the group last used for flows to each GPU
  std::vector<std::size_t> dead_in_;  // per channel: dead entries in its members list (about)
  std::vector<std::vector<std::int32_t>> class_groups_;  // per class: groups spread over it
  std::vector<std::vector<std::int32_t>> block_groups_;  // per block: groups spread over it
  std::vector<std::uint32_t> in_u_;         // per group: stamp when in the repair set
  std::uint32_t stamp_ = 0;
  std::vector<std::uint32_t> channel_seen_;  // per channel: stamp when local to a repair
  std::vector<std::int32_t> local_of_;
  std::uint32_t channel_stamp_ = 0;

  State(const Topology& t, EventQueue& q, FlowListener& sink, NetworkOptions o);

  std::int32_t block_channel(std::int32_t b) const { return num_links + b; }
  std::int32_t class_channel(std::int32_t k) const { return num_links + num_blocks + k; }

  // Blocks: links of a class grouped by their switch end (for a GPU link, its switch; between
  // switches, the one nearer the GPUs). Class-local indices list each block's links together.
  void build_blocks();

  // Adds (sign +1) or removes the links a group's spread hops cover; block and class channels
  // follow with their capacity, and the groups that relied on them are checked.
  void cover(const Group& g, int sign);

  void request_settle();

  static void on_settle(void* self, std::int64_t) { static_cast<State*>(self)->settle(); }
  static void on_wake(void* self, std::int64_t generation) { static_cast<State*>(self)->wake(static_cast<std::uint64_t>(generation)); }
  static void on_arrival(void* self, std::int64_t group) { static_cast<State*>(self)->arrive(static_cast<std::int32_t>(group)); }

  // --- bookkeeping of rates --------------------------------------------------------------------

  void advance_in_flight(TimeNs now);

  // Rate changes leave stale entries behind in the finish heap: rebuild it when they dominate.
  void compact_finish_heap();

  void schedule_finish(std::int32_t gi);

  // Sets a group's rate at the current time (progressing its bytes at the old rate first).
  void set_rate(std::int32_t gi, double rate);

  void mark_touched(std::int32_t c);

  void add_hop_counts(const Group& g, int sign);

  // Lists of the groups spread over each block and each class (dead ones are skipped).
  void list_levels(std::int32_t gi);

  // Adds membership (c, w) to a listed group, with its load; the group's rate is then repaired.
  void couple(std::int32_t gi, std::int32_t c, double w);

  // A link gets its first pinned group: spread groups with flows on it now see it. Where the
  // link is the first or last hop of a group with one receiver or one sender, the flows of that
  // group on it are carved out into a group of their own (they are one path); otherwise the group
  // is coupled to the link with its flows there.
  void link_became_active(std::int32_t l);

  void process_activations();

  // New groups against links already active: carve where possible (see link_became_active).
  // Returns the groups carved out.
  std::vector<std::int32_t> carve_fresh(const std::vector<std::int32_t>& fresh);

  // Moves the flows of group gi that cross link l (at hop `hop`, its first or last) into a new
  // group along their one path. Needs gi to have one receiver (first hop) or one sender (last
  // hop). Returns the new group, or -1 when that does not apply.
  std::int32_t carve(std::int32_t gi, std::int32_t hop, LinkId l);

  // Removes `count` flows at class-local index `index` from a footprint.
  static void remove_from(std::vector<Run>& runs, std::int32_t index, std::int32_t count);

  // A block gets its first block-spread group: class-spread groups with flows in it now see it.
  void block_became_active(std::int32_t b);


  // Memberships of a group under the current couplings. A block or class channel stands for the
  // links of it that spread groups cover now (capacity = one link's x that many), so a spread hop
  // weighs its number of flows there. A spread hop also loads the channels below it that carry
  // hops of their own (blocks with block-spread groups, links with pinned groups) with the flows
  // it really has there. Pinned hops load their link only.
  void build_members(Group& g);

  // --- grouping of the flows that leave now ----------------------------------------------------

  template <typename Fn>
  void for_each_pending_flow(Fn&& fn) {
    for (const PendingRow& p : pending) {
      if (p.row.empty()) {
        fn(p.tag, p.src, p.dst, p.bytes);
        continue;
      }
      const auto n = static_cast<std::int64_t>(p.row.size());
      for (std::int64_t d = 0; d < n; ++d) {
        if (d == p.src) continue;
        const std::int64_t b = flow_bytes(p.row[static_cast<std::size_t>(d)]);
        if (b > 0) fn(p.tag, p.src, d, b);
      }
    }
  }

  // Turns the pending flows into groups; returns them.
  std::vector<std::int32_t> build_groups();

  // --- allocation ----------------------------------------------------------------------------

  void full_recompute();

  // After groups ended: the remaining groups whose bottleneck was a link the ended ones used and
  // that have no other full link on which they are the fastest. Their rates need repair.
  std::vector<std::int32_t> invalid_after_end();

  // The groups whose bottleneck is channel k (entries of groups that died or moved dropped).
  const std::vector<std::int32_t>& live_bottlenecked(std::size_t k);

  // The groups on channel k, dead ones dropped first when they are many.
  const std::vector<std::int32_t>& alive_members(std::size_t k);

  // A full channel of g on which g's rate is the highest, or -1.
  std::int32_t find_bottleneck(const Group& g, bool skip_touched) const;

  // Local repair: new rates for the groups in `u` with every other group's rate held, widening
  // `u` until the result meets the max-min condition (each group has a full channel on which no
  // group is faster). False when `u` grows past a quarter of the groups: recompute everything.
  bool repair(std::vector<std::int32_t> u);

  // --- events ------------------------------------------------------------------------------

  void settle();

  // NetworkOptions::check_incremental: the rates kept and repaired must be those a recomputation
  // from scratch gives.
  void check_against_recompute();

  void schedule_wake();

  void wake(std::uint64_t generation);

  void end_group(std::int32_t gi);

  void arrive(std::int32_t gi);

  void record_samples(TimeNs now);
};

}  // namespace hpsim::sim
