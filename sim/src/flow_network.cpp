// FlowNetwork: grouping of flows, incremental max-min rates, completions (flow_network.h).
//
// Channels: ids [0, L) are the topology's links, [L, L + B) its blocks, [L + B, L + B + C) its link
// classes. A block is the set of links of one class that share their switch end (the uplinks under
// one leaf, the spine links into one leaf, ...); block and class channels stand for their average
// link: capacity = one link's, a group spread over n links in use weighs flows / n there.
#include "hpsim/sim/flow_network.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <queue>
#include <set>
#include <tuple>
#include <unordered_map>

#include "hpsim/core/error.h"
#include "hpsim/sim/max_min.h"
#include "flow_groups.h"

namespace hpsim::sim {

std::int64_t flow_bytes(double bytes) {
  // Round half up; a plan's bytes are far below 2^53.
  return bytes >= 0.5 && bytes < 9e15 ? static_cast<std::int64_t>(bytes + 0.5) : 0;
}

namespace {

using detail::count_at;
using detail::count_in;
using detail::FootprintBuilder;
using detail::GroupKey;
using detail::GroupKeyHash;
using detail::kMaxHops;
using detail::to_rank_runs;
using detail::Run;

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

}  // namespace

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
  bool need_full = false;

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

  std::priority_queue<Finish, std::vector<Finish>, FinishLater> finish_heap;
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

  State(const Topology& t, EventQueue& q, FlowListener& sink, NetworkOptions o) : topo(t), queue(q), listener(sink), options(o) {
    num_links = static_cast<std::int32_t>(topo.num_links());
    num_classes = static_cast<std::int32_t>(topo.link_classes().size());
    num_gpus = topo.num_gpus();
    const auto nl = static_cast<std::size_t>(num_links);
    const auto nc = static_cast<std::size_t>(num_classes);
    build_blocks();
    const auto nb = static_cast<std::size_t>(num_blocks);
    const std::size_t nch = nl + nb + nc;
    capacity.resize(nch);
    for (std::size_t l = 0; l < nl; ++l) capacity[l] = topo.link(static_cast<LinkId>(l)).bandwidth_gbps;  // GB/s = B/ns
    for (std::size_t b = 0; b < nb; ++b) capacity[nl + b] = topo.link_classes()[static_cast<std::size_t>(block_class[b])].bandwidth_gbps;
    for (std::size_t c = 0; c < nc; ++c) capacity[nl + nb + c] = topo.link_classes()[c].bandwidth_gbps;
    load.assign(nch, 0.0);
    level.assign(nch, -1.0);
    members.assign(nch, {});
    bottlenecked.assign(nch, {});
    touched.assign(nch, 0);
    dead_in_.assign(nch, 0);
    by_dst_.assign(static_cast<std::size_t>(num_gpus), -1);
    channel_seen_.assign(nch, 0);
    class_groups_.assign(nc, {});
    block_groups_.assign(nb, {});
    local_of_.assign(nch, 0);
    pinned_count.assign(nl, 0);
    block_spread.assign(nb, 0);
    class_pinned.assign(nc, 0);
    class_block_spread.assign(nc, 0);
    class_spread.assign(nc, 0);
    pinned_links_of.assign(nc, {});
    pinned_links_in.assign(nb, {});
    listed_link.assign(nl, 0);
    spread_blocks_of.assign(nc, {});
    listed_block.assign(nb, 0);
    link_used.assign(nl, 0);
    class_used.assign(nc, 0);
    cover_.assign(nl, 0);
    union_block_.assign(nb, 0);
    union_class_.assign(nc, 0);
    link_capacity_ = capacity;
    for (std::size_t c = nl; c < nch; ++c) capacity[c] = 0;  // nothing covered yet
    class_load.assign(nc, 0.0);
    class_bytes.assign(nc, 0.0);
    class_util.assign(nc, {});
    class_truncated.assign(nc, 0);
    batch_count.assign(nl, 0);
    block_max_.assign(nb, 0);
    block_total_.assign(nb, 0);
    block_touched_.assign(nb, 0);
    block_new_.assign(nb, 0);
    problem.capacity = capacity;
  }

  std::int32_t block_channel(std::int32_t b) const { return num_links + b; }
  std::int32_t class_channel(std::int32_t k) const { return num_links + num_blocks + k; }

  // Blocks: links of a class grouped by their switch end (for a GPU link, its switch; between
  // switches, the one nearer the GPUs). Class-local indices list each block's links together.
  void build_blocks() {
    const auto nl = static_cast<std::size_t>(num_links);
    const auto nv = static_cast<std::size_t>(topo.num_vertices());
    std::vector<std::int64_t> tier(nv, -1);
    std::vector<VertexId> frontier;
    for (VertexId g = 0; g < static_cast<VertexId>(num_gpus); ++g) {
      tier[static_cast<std::size_t>(g)] = 0;
      frontier.push_back(g);
    }
    std::vector<std::vector<VertexId>> neighbours(nv);
    for (std::size_t l = 0; l < nl; ++l) {
      const Link& link = topo.link(static_cast<LinkId>(l));
      neighbours[static_cast<std::size_t>(link.from)].push_back(link.to);
      neighbours[static_cast<std::size_t>(link.to)].push_back(link.from);
    }
    for (std::size_t head = 0; head < frontier.size(); ++head) {
      const VertexId v = frontier[head];
      for (VertexId u : neighbours[static_cast<std::size_t>(v)]) {
        if (tier[static_cast<std::size_t>(u)] < 0) {
          tier[static_cast<std::size_t>(u)] = tier[static_cast<std::size_t>(v)] + 1;
          frontier.push_back(u);
        }
      }
    }
    link_class.resize(nl);
    std::vector<VertexId> end(nl);
    for (std::size_t l = 0; l < nl; ++l) {
      const Link& link = topo.link(static_cast<LinkId>(l));
      link_class[l] = link.link_class;
      const bool from_gpu = topo.vertex(link.from).kind == VertexKind::kGpu;
      const bool to_gpu = topo.vertex(link.to).kind == VertexKind::kGpu;
      if (from_gpu != to_gpu) {
        end[l] = from_gpu ? link.to : link.from;
      } else {
        end[l] = tier[static_cast<std::size_t>(link.from)] < tier[static_cast<std::size_t>(link.to)] ? link.from : link.to;
      }
    }
    std::vector<std::int32_t> order(nl);
    for (std::size_t l = 0; l < nl; ++l) order[l] = static_cast<std::int32_t>(l);
    std::stable_sort(order.begin(), order.end(), [&](std::int32_t a, std::int32_t b) {
      const auto ia = static_cast<std::size_t>(a);
      const auto ib = static_cast<std::size_t>(b);
      return std::tie(link_class[ia], end[ia], a) < std::tie(link_class[ib], end[ib], b);
    });
    class_index.assign(nl, 0);
    block_of.assign(nl, 0);
    std::vector<std::int32_t> next_index(static_cast<std::size_t>(num_classes), 0);
    for (std::size_t i = 0; i < nl; ++i) {
      const auto l = static_cast<std::size_t>(order[i]);
      const auto k = static_cast<std::size_t>(link_class[l]);
      const std::int32_t index = next_index[k]++;
      class_index[l] = index;
      const bool new_block = i == 0 || link_class[static_cast<std::size_t>(order[i - 1])] != link_class[l] ||
                             end[static_cast<std::size_t>(order[i - 1])] != end[l];
      if (new_block) {
        block_lo.push_back(index);
        block_hi.push_back(index);
        block_class.push_back(link_class[l]);
      }
      block_hi.back() = index;
      block_of[l] = static_cast<std::int32_t>(block_lo.size()) - 1;
    }
    num_blocks = static_cast<std::int32_t>(block_lo.size());
    class_links_.assign(static_cast<std::size_t>(num_classes), {});
    for (std::size_t i = 0; i < nl; ++i) {
      const auto l = static_cast<std::size_t>(order[i]);
      class_links_[static_cast<std::size_t>(link_class[l])].push_back(order[i]);
    }
  }

  // Adds (sign +1) or removes the links a group's spread hops cover; block and class channels
  // follow with their capacity, and the groups that relied on them are checked.
  void cover(const Group& g, int sign) {
    changed_.clear();
    for (const Hop& h : g.hops) {
      if (h.level == Level::kLink) continue;
      const auto& links = class_links_[static_cast<std::size_t>(h.link_class)];
      for (const Run& run : h.footprint) {
        for (std::int32_t i = run.lo; i <= run.hi; ++i) {
          const auto l = static_cast<std::size_t>(links[static_cast<std::size_t>(i)]);
          const std::int32_t before = cover_[l];
          cover_[l] += sign;
          if ((before == 0) == (cover_[l] == 0)) continue;
          const std::int64_t d = sign;
          union_block_[static_cast<std::size_t>(block_of[l])] += d;
          union_class_[static_cast<std::size_t>(link_class[l])] += d;
          changed_.push_back(block_channel(block_of[l]));
          changed_.push_back(class_channel(link_class[l]));
        }
      }
    }
    if (changed_.empty()) return;
    std::sort(changed_.begin(), changed_.end());
    changed_.erase(std::unique(changed_.begin(), changed_.end()), changed_.end());
    for (std::int32_t c : changed_) {
      const auto k = static_cast<std::size_t>(c);
      const std::int64_t links = c < num_links + num_blocks ? union_block_[k - static_cast<std::size_t>(num_links)]
                                                             : union_class_[k - static_cast<std::size_t>(num_links + num_blocks)];
      const double old = capacity[k];
      capacity[k] = link_capacity_[k] * static_cast<double>(links);
      mark_touched(c);
      if (capacity[k] < old && load[k] > capacity[k] * (1 + kRateTolerance)) {
        for (std::int32_t gi : alive_members(k)) affected_.push_back(gi);
      }
    }
  }

  void request_settle() {
    if (settle_scheduled) return;
    settle_scheduled = true;
    queue.schedule(queue.now(), &State::on_settle, this, 0, EventQueue::Priority::kLate);
  }

  static void on_settle(void* self, std::int64_t) { static_cast<State*>(self)->settle(); }
  static void on_wake(void* self, std::int64_t generation) { static_cast<State*>(self)->wake(static_cast<std::uint64_t>(generation)); }
  static void on_arrival(void* self, std::int64_t group) { static_cast<State*>(self)->arrive(static_cast<std::int32_t>(group)); }

  // --- bookkeeping of rates --------------------------------------------------------------------

  void advance_in_flight(TimeNs now) {
    in_flight_bytes -= total_rate * static_cast<double>(now - in_flight_at);
    if (in_flight_bytes < 0) in_flight_bytes = 0;
    in_flight_at = now;
  }

  // Rate changes leave stale entries behind in the finish heap: rebuild it when they dominate.
  void compact_finish_heap() {
    if (finish_heap.size() < 4096 || finish_heap.size() < 4 * static_cast<std::size_t>(num_alive)) return;
    std::vector<Finish> live;
    live.reserve(static_cast<std::size_t>(num_alive));
    while (!finish_heap.empty()) {
      const Finish f = finish_heap.top();
      finish_heap.pop();
      const Group& g = groups[static_cast<std::size_t>(f.group)];
      if (g.alive && g.version == f.version) live.push_back(f);
    }
    finish_heap = std::priority_queue<Finish, std::vector<Finish>, FinishLater>(FinishLater{}, std::move(live));
  }

  void schedule_finish(std::int32_t gi) {
    Group& g = groups[static_cast<std::size_t>(gi)];
    HPSIM_ASSERT(g.rate > 0, "group of tag {} has rate {} (a link of zero capacity?)", g.tag, g.rate);
    const double ns = g.remaining / g.rate;
    TimeNs t = g.updated_at + static_cast<TimeNs>(std::ceil(std::max(0.0, ns - 1e-6)));
    if (t < queue.now()) t = queue.now();
    g.sent = t;
    ++g.version;
    finish_heap.push(Finish{t, gi, g.version});
  }

  // Sets a group's rate at the current time (progressing its bytes at the old rate first).
  void set_rate(std::int32_t gi, double rate) {
    Group& g = groups[static_cast<std::size_t>(gi)];
    const TimeNs now = queue.now();
    if (g.has_rate && g.rate == rate) return;
    const double flows = static_cast<double>(g.num_flows);
    if (g.has_rate) {
      g.remaining -= g.rate * static_cast<double>(now - g.updated_at);
      if (g.remaining < 0) g.remaining = 0;
      total_rate -= flows * g.rate;
      for (const Hop& h : g.hops) class_load[static_cast<std::size_t>(h.link_class)] -= flows * g.rate;
    }
    g.updated_at = now;
    g.rate = rate;
    g.has_rate = true;
    total_rate += flows * rate;
    for (const Hop& h : g.hops) class_load[static_cast<std::size_t>(h.link_class)] += flows * rate;
    schedule_finish(gi);
  }

  void mark_touched(std::int32_t c) {
    if (!touched[static_cast<std::size_t>(c)]) {
      touched[static_cast<std::size_t>(c)] = 1;
      touched_list.push_back(c);
    }
  }

  void add_hop_counts(const Group& g, int sign) {
    for (const Hop& h : g.hops) {
      const auto k = static_cast<std::size_t>(h.link_class);
      const auto id = static_cast<std::size_t>(h.id);
      switch (h.level) {
        case Level::kLink:
          class_pinned[k] += sign;
          pinned_count[id] += sign;
          if (sign > 0 && pinned_count[id] == 1) activated_links_.push_back(h.id);
          if (pinned_count[id] > 0 && !listed_link[id]) {
            listed_link[id] = 1;
            pinned_links_of[k].push_back(h.id);
            pinned_links_in[static_cast<std::size_t>(block_of[id])].push_back(h.id);
          }
          break;
        case Level::kBlock:
          class_block_spread[k] += sign;
          block_spread[id] += sign;
          if (sign > 0 && block_spread[id] == 1) activated_blocks_.push_back(h.id);
          if (block_spread[id] > 0 && !listed_block[id]) {
            listed_block[id] = 1;
            spread_blocks_of[k].push_back(h.id);
          }
          break;
        case Level::kClass:
          class_spread[k] += sign;
          break;
      }
    }
  }

  // Lists of the groups spread over each block and each class (dead ones are skipped).
  void list_levels(std::int32_t gi) {
    for (const Hop& h : groups[static_cast<std::size_t>(gi)].hops) {
      if (h.level == Level::kBlock) block_groups_[static_cast<std::size_t>(h.id)].push_back(gi);
      if (h.level == Level::kClass) class_groups_[static_cast<std::size_t>(h.id)].push_back(gi);
    }
  }

  // Adds membership (c, w) to a listed group, with its load; the group's rate is then repaired.
  void couple(std::int32_t gi, std::int32_t c, double w) {
    Group& g = groups[static_cast<std::size_t>(gi)];
    auto it = std::lower_bound(g.members.begin(), g.members.end(), std::make_pair(c, 0.0),
                               [](const auto& a, const auto& b) { return a.first < b.first; });
    if (it != g.members.end() && it->first == c) return;  // coupled already
    g.members.insert(it, std::make_pair(c, w));
    members[static_cast<std::size_t>(c)].push_back(gi);
    if (g.has_rate) load[static_cast<std::size_t>(c)] += w * g.rate;
    affected_.push_back(gi);
  }

  // A link gets its first pinned group: spread groups with flows on it now see it. Where the
  // link is the first or last hop of a group with one receiver or one sender, the flows of that
  // group on it are carved out into a group of their own (they are one path); otherwise the group
  // is coupled to the link with its flows there.
  void link_became_active(std::int32_t l) {
    const auto li = static_cast<std::size_t>(l);
    const std::int32_t b = block_of[li];
    const std::int32_t k = link_class[li];
    for (int which = 0; which < 2; ++which) {
      const auto& list = which == 0 ? block_groups_[static_cast<std::size_t>(b)] : class_groups_[static_cast<std::size_t>(k)];
      for (std::size_t i = 0; i < list.size(); ++i) {
        const std::int32_t gi = list[i];
        if (!groups[static_cast<std::size_t>(gi)].alive || !groups[static_cast<std::size_t>(gi)].listed) continue;
        std::int32_t count = 0;
        std::int32_t hop = -1;
        const auto& hops = groups[static_cast<std::size_t>(gi)].hops;
        for (std::size_t j = 0; j < hops.size(); ++j) {
          const Hop& h = hops[j];
          if ((h.level == Level::kBlock && h.id == b) || (h.level == Level::kClass && h.id == k)) {
            const std::int32_t c = count_at(h.footprint, class_index[li]);
            if (c > 0) hop = static_cast<std::int32_t>(j);
            count += c;
          }
        }
        if (count == 0) continue;
        if (carve(gi, hop, l) < 0) couple(gi, l, static_cast<double>(count));
      }
    }
  }

  void process_activations() {
    while (!activated_links_.empty() || !activated_blocks_.empty()) {
      if (!activated_links_.empty()) {
        const std::int32_t l = activated_links_.back();
        activated_links_.pop_back();
        link_became_active(l);
      } else {
        const std::int32_t b = activated_blocks_.back();
        activated_blocks_.pop_back();
        block_became_active(b);
      }
    }
  }

  // New groups against links already active: carve where possible (see link_became_active).
  // Returns the groups carved out.
  std::vector<std::int32_t> carve_fresh(const std::vector<std::int32_t>& fresh) {
    std::vector<std::int32_t> carved;
    for (std::int32_t gi : fresh) {
      for (std::size_t j = 0; j < groups[static_cast<std::size_t>(gi)].hops.size(); ++j) {
        const Hop h = groups[static_cast<std::size_t>(gi)].hops[j];  // copy: carving edits the group
        if (h.level == Level::kLink) continue;
        const auto k = static_cast<std::size_t>(h.link_class);
        if (class_pinned[k] == 0) continue;
        const auto& links = h.level == Level::kBlock ? pinned_links_in[static_cast<std::size_t>(h.id)] : pinned_links_of[k];
        for (std::size_t i = 0; i < links.size(); ++i) {
          const std::int32_t l = links[i];
          if (pinned_count[static_cast<std::size_t>(l)] == 0) continue;
          if (count_at(groups[static_cast<std::size_t>(gi)].hops[j].footprint, class_index[static_cast<std::size_t>(l)]) == 0) continue;
          const std::int32_t n = carve(gi, static_cast<std::int32_t>(j), l);
          if (n >= 0) carved.push_back(n);
        }
      }
    }
    return carved;
  }

  // Moves the flows of group gi that cross link l (at hop `hop`, its first or last) into a new
  // group along their one path. Needs gi to have one receiver (first hop) or one sender (last
  // hop). Returns the new group, or -1 when that does not apply.
  std::int32_t carve(std::int32_t gi, std::int32_t hop, LinkId l) {
    const auto li = static_cast<std::size_t>(l);
    std::int32_t src = -1;
    std::int32_t dst = -1;
    std::int32_t count = 0;
    {
      const Group& g = groups[static_cast<std::size_t>(gi)];
      const auto last_hop = static_cast<std::int32_t>(g.hops.size()) - 1;
      const auto single = [](const std::vector<RankRun>& runs) { return runs.size() == 1 && runs[0].first == runs[0].last; };
      if (hop == 0 && single(g.receivers)) {
        src = topo.link(l).from;
        dst = g.receivers[0].first;
      } else if (hop == last_hop && single(g.senders)) {
        src = g.senders[0].first;
        dst = topo.link(l).to;
      } else {
        return -1;
      }
      count = count_at(g.hops[static_cast<std::size_t>(hop)].footprint, class_index[li]);
      if (count <= 0 || count >= g.num_flows) return -1;
    }
    const Route r = topo.route(src, dst);
    const TimeNs now = queue.now();
    Group n;
    {
      Group& g = groups[static_cast<std::size_t>(gi)];
      HPSIM_ASSERT(r.num_hops() == static_cast<std::int32_t>(g.hops.size()), "carved path of {} hops from a group of {}",
                   r.num_hops(), g.hops.size());
      const bool listed = g.listed;
      if (listed && g.has_rate) {
        for (const auto& [c, w] : g.members) load[static_cast<std::size_t>(c)] -= w * g.rate;
      }
      // The carved flows keep moving at the parent's rate until the repair says otherwise.
      n.has_rate = g.has_rate;
      n.rate = g.rate;
      n.tag = g.tag;
      n.bytes = g.bytes;
      n.num_flows = count;
      n.latency_ns = g.latency_ns;
      n.start = g.start;
      n.updated_at = now;
      n.remaining = g.has_rate ? std::max(0.0, g.remaining - g.rate * static_cast<double>(now - g.updated_at)) : g.remaining;
      n.example_src = src;
      n.example_dst = dst;
      n.senders = {RankRun{src, src, count}};
      n.receivers = {RankRun{dst, dst, count}};
      for (std::int32_t i = 0; i < r.num_hops(); ++i) {
        const LinkId hl = r.hop(i);
        n.hops.push_back(Hop{hl, link_class[static_cast<std::size_t>(hl)], Level::kLink, {}});
      }
      // Take the flows out of the parent: its counts, footprints and the links it covers.
      cover(g, -1);
      g.num_flows -= count;
      auto take = [&](std::vector<RankRun>& list, std::int32_t rank) {
        std::vector<Run> runs;
        for (const RankRun& run : list) runs.push_back(Run{run.first, run.last, run.count});
        remove_from(runs, rank, count);
        list = to_rank_runs(runs);
      };
      take(g.senders, src);
      take(g.receivers, dst);
      for (std::size_t j = 0; j < g.hops.size(); ++j) {
        Hop& h = g.hops[j];
        if (h.level == Level::kLink) continue;
        remove_from(h.footprint, class_index[static_cast<std::size_t>(r.hop(static_cast<std::int32_t>(j)))], count);
      }
      cover(g, +1);
    }
    const auto ni = static_cast<std::int32_t>(groups.size());
    add_hop_counts(n, +1);
    ++stats.groups;
    groups.push_back(std::move(n));
    ++num_alive;
    in_u_.push_back(0);
    active.push_back(ni);
    Group& g = groups[static_cast<std::size_t>(gi)];
    if (!g.listed) {
      carved_.push_back(ni);  // rated with the new groups of this instant
      return ni;
    }
    // Listed parent: new weights for it, the carved group listed beside it, and the channels that
    // now carry less marked so that groups relying on them are checked.
    std::vector<std::pair<std::int32_t, double>> old = g.members;
    build_members(g);
    Group& c_group = groups[static_cast<std::size_t>(ni)];
    build_members(c_group);
    c_group.listed = true;
    if (c_group.has_rate) {
      schedule_finish(ni);
      for (const auto& [c, w] : c_group.members) load[static_cast<std::size_t>(c)] += w * c_group.rate;
    }
    for (const auto& [c, w] : c_group.members) members[static_cast<std::size_t>(c)].push_back(ni);
    for (const auto& [c, w] : g.members) {
      if (g.has_rate) load[static_cast<std::size_t>(c)] += w * g.rate;
      if (!std::binary_search(old.begin(), old.end(), std::make_pair(c, 0.0),
                              [](const auto& a, const auto& b) { return a.first < b.first; })) {
        members[static_cast<std::size_t>(c)].push_back(gi);
      }
    }
    for (const auto& [c, w] : old) mark_touched(c);
    affected_.push_back(gi);
    affected_.push_back(ni);
    return ni;
  }

  // Removes `count` flows at class-local index `index` from a footprint.
  static void remove_from(std::vector<Run>& runs, std::int32_t index, std::int32_t count) {
    auto it = std::upper_bound(runs.begin(), runs.end(), index, [](std::int32_t i, const Run& r) { return i < r.lo; });
    if (it == runs.begin()) return;
    --it;
    if (index > it->hi) return;
    const Run old = *it;
    std::vector<Run> pieces;
    if (old.lo < index) pieces.push_back(Run{old.lo, index - 1, old.count});
    if (old.count > count) pieces.push_back(Run{index, index, old.count - count});
    if (index < old.hi) pieces.push_back(Run{index + 1, old.hi, old.count});
    const auto pos = it - runs.begin();
    runs.erase(it);
    runs.insert(runs.begin() + pos, pieces.begin(), pieces.end());
  }

  // A block gets its first block-spread group: class-spread groups with flows in it now see it.
  void block_became_active(std::int32_t b) {
    const auto bb = static_cast<std::size_t>(b);
    const std::int32_t k = block_class[bb];
    for (std::int32_t gi : class_groups_[static_cast<std::size_t>(k)]) {
      const Group& g = groups[static_cast<std::size_t>(gi)];
      if (!g.alive || !g.listed) continue;
      std::int64_t count = 0;
      for (const Hop& h : g.hops) {
        if (h.level == Level::kClass && h.id == k) count += count_in(h.footprint, block_lo[bb], block_hi[bb]);
      }
      if (count > 0) {
        couple(gi, block_channel(b), static_cast<double>(count));
      }
    }
  }

  // More than one level of hops alive in a class: its links, blocks and class channel couple.
  bool mixed(std::size_t k) const {
    return (class_pinned[k] > 0 ? 1 : 0) + (class_block_spread[k] > 0 ? 1 : 0) + (class_spread[k] > 0 ? 1 : 0) > 1;
  }

  // Memberships of a group under the current couplings. A block or class channel stands for the
  // links of it that spread groups cover now (capacity = one link's x that many), so a spread hop
  // weighs its number of flows there. A spread hop also loads the channels below it that carry
  // hops of their own (blocks with block-spread groups, links with pinned groups) with the flows
  // it really has there. Pinned hops load their link only.
  void build_members(Group& g) {
    g.members.clear();
    const double flows = static_cast<double>(g.num_flows);
    for (const Hop& h : g.hops) {
      const auto k = static_cast<std::size_t>(h.link_class);
      switch (h.level) {
        case Level::kLink:
          g.members.emplace_back(h.id, flows);
          break;
        case Level::kBlock: {
          const auto b = static_cast<std::size_t>(h.id);
          g.members.emplace_back(block_channel(h.id), flows);
          g.members.emplace_back(class_channel(h.link_class), flows);
          for (std::int32_t l : pinned_links_in[b]) {
            if (pinned_count[static_cast<std::size_t>(l)] == 0) continue;
            const std::int32_t c = count_at(h.footprint, class_index[static_cast<std::size_t>(l)]);
            if (c > 0) g.members.emplace_back(l, static_cast<double>(c));
          }
          break;
        }
        case Level::kClass: {
          g.members.emplace_back(class_channel(h.link_class), flows);
          for (std::int32_t b : spread_blocks_of[k]) {
            const auto bb = static_cast<std::size_t>(b);
            if (block_spread[bb] == 0) continue;
            const std::int64_t c = count_in(h.footprint, block_lo[bb], block_hi[bb]);
            if (c > 0) g.members.emplace_back(block_channel(b), static_cast<double>(c));
          }
          for (std::int32_t l : pinned_links_of[k]) {
            if (pinned_count[static_cast<std::size_t>(l)] == 0) continue;
            const std::int32_t c = count_at(h.footprint, class_index[static_cast<std::size_t>(l)]);
            if (c > 0) g.members.emplace_back(l, static_cast<double>(c));
          }
          break;
        }
      }
    }
    std::sort(g.members.begin(), g.members.end());
    std::size_t out = 0;
    for (std::size_t i = 0; i < g.members.size(); ++i) {
      if (out > 0 && g.members[out - 1].first == g.members[i].first) {
        g.members[out - 1].second += g.members[i].second;
      } else {
        g.members[out++] = g.members[i];
      }
    }
    g.members.resize(out);
  }

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

  // Turns the pending flows into groups; returns them. Sets need_full when a class gets new links.
  std::vector<std::int32_t> build_groups() {
    std::vector<std::int32_t> fresh;
    if (pending.empty()) return fresh;
    const bool aggregate = options.aggregate;
    // Optimistic first: every block and class spreadable, the links' loads counted in the same
    // pass; the decisions below then say where that was wrong, and only then is it regrouped.
    std::vector<char> spreadable(static_cast<std::size_t>(num_classes), aggregate ? 1 : 0);
    std::vector<char> block_spreadable(static_cast<std::size_t>(num_blocks), aggregate ? 1 : 0);
    std::vector<char> class_ok(static_cast<std::size_t>(num_classes), 1);
    std::vector<char> block_ok(static_cast<std::size_t>(num_blocks), 1);
    auto decide = [&]() {
      std::vector<char>& spreadable_out = class_ok;
      std::vector<char>& block_spreadable_out = block_ok;
      // Spread over a block or a class only where this instant's flows load it evenly: the links
      // they touch are at least spread_min_coverage of the links of it in use (covered by spread
      // groups, these included), and the busiest carries at most (1 + spread_tolerance) x the
      // mean over the touched ones.
      const auto nc = static_cast<std::size_t>(num_classes);
      std::vector<std::int64_t> max_count(nc, 0);
      std::vector<std::int64_t> total(nc, 0);
      std::vector<std::int64_t> links_touched(nc, 0);
      std::vector<std::int64_t> newly_covered(nc, 0);
      std::vector<std::int32_t> blocks_touched;
      for (std::int32_t l : batch_touched) {
        const auto li = static_cast<std::size_t>(l);
        const auto k = static_cast<std::size_t>(link_class[li]);
        const std::int64_t c = batch_count[li];
        max_count[k] = std::max(max_count[k], c);
        total[k] += c;
        ++links_touched[k];
        const auto b = static_cast<std::size_t>(block_of[li]);
        if (block_touched_[b] == 0) blocks_touched.push_back(static_cast<std::int32_t>(b));
        ++block_touched_[b];
        if (cover_[li] == 0) {
          ++newly_covered[k];
          ++block_new_[b];
        }
        block_max_[b] = std::max(block_max_[b], c);
        block_total_[b] += c;
        batch_count[li] = 0;
      }
      batch_touched.clear();
      const double slack = 1 + options.spread_tolerance;
      auto even = [&](std::int64_t max_c, std::int64_t sum, std::int64_t touched_links, std::int64_t used) {
        const double mean = static_cast<double>(sum) / static_cast<double>(touched_links);
        return static_cast<double>(max_c) <= slack * mean &&
               static_cast<double>(touched_links) >= options.spread_min_coverage * static_cast<double>(used);
      };
      // "In use": the links spread groups cover now, with those this instant adds.
      for (std::size_t k = 0; k < nc; ++k) {
        if (total[k] > 0) spreadable_out[k] = even(max_count[k], total[k], links_touched[k], union_class_[k] + newly_covered[k]) ? 1 : 0;
      }
      for (std::int32_t b : blocks_touched) {
        const auto bb = static_cast<std::size_t>(b);
        block_spreadable_out[bb] = even(block_max_[bb], block_total_[bb], block_touched_[bb], union_block_[bb] + block_new_[bb]) ? 1 : 0;
        block_max_[bb] = 0;
        block_total_[bb] = 0;
        block_touched_[bb] = 0;
        block_new_[bb] = 0;
      }
      // Flows through an uneven block are pinned by link (below) and leave the class-level groups
      // to the even blocks.
    };

    // Rows in source order: footprints then grow in link order (runs stay few).
    std::stable_sort(pending.begin(), pending.end(), [](const PendingRow& a, const PendingRow& b) { return a.src < b.src; });
    std::unordered_map<GroupKey, std::int32_t, GroupKeyHash> index;
    std::set<std::pair<std::int64_t, std::int64_t>> by_destination;  // (tag, bytes) told apart by destination
    std::vector<Building> building;
    GroupKey key;
    std::int32_t last = -1;
    for (int round = 0;; ++round) {
    index.clear();
    building.clear();
    last = -1;
    std::fill(by_dst_.begin(), by_dst_.end(), -1);
    for_each_pending_flow([&](std::int64_t tag, std::int64_t s, std::int64_t d, std::int64_t bytes) {
      const Route r = topo.route(s, d);
      const std::int32_t hops = r.num_hops();
      if (round == 0 && aggregate) {
        for (std::int32_t i = 0; i < hops; ++i) {
          const auto l = static_cast<std::size_t>(r.hop(i));
          if (batch_count[l]++ == 0) batch_touched.push_back(static_cast<std::int32_t>(l));
          if (!link_used[l]) {
            link_used[l] = 1;
            ++class_used[static_cast<std::size_t>(link_class[l])];
          }
        }
      }
      HPSIM_ASSERT(hops <= kMaxHops, "path of {} hops from gpu{} to gpu{}: at most {} supported", hops, s, d, kMaxHops);
      key.tag = tag;
      key.bytes = bytes;
      key.path_class = r.path_class;
      key.num_hops = hops;
      key.dst = !by_destination.empty() && by_destination.count(std::make_pair(tag, bytes)) != 0 ? static_cast<std::int32_t>(d) : -1;
      // The key tells flows apart by link where the link's block is uneven, by block where only
      // the class is, not at all where both are even.
      for (std::int32_t i = 0; i < hops; ++i) {
        const LinkId l = r.hop(i);
        std::int32_t pin = l;
        if (round == 0) {
          pin = aggregate ? -1 : l;  // the optimistic first pass
        } else if (aggregate) {
          const auto li = static_cast<std::size_t>(l);
          if (block_spreadable[static_cast<std::size_t>(block_of[li])]) {
            pin = spreadable[static_cast<std::size_t>(link_class[li])] ? -1 : -2 - block_of[li];
          }
        }
        key.pins[static_cast<std::size_t>(i)] = pin;
      }
      std::int32_t b = -1;
      auto& cached = by_dst_[static_cast<std::size_t>(d)];
      if (last >= 0 && building[static_cast<std::size_t>(last)].key == key) {
        b = last;
      } else if (cached >= 0 && cached < static_cast<std::int32_t>(building.size()) &&
                 building[static_cast<std::size_t>(cached)].key == key) {
        b = cached;
        last = b;
      } else {
        auto it = index.find(key);
        if (it == index.end()) {
          it = index.emplace(key, static_cast<std::int32_t>(building.size())).first;
          Building fresh_building;
          fresh_building.key = key;
          fresh_building.latency_ns = r.latency_ns;
          fresh_building.example_src = static_cast<std::int32_t>(s);
          fresh_building.example_dst = static_cast<std::int32_t>(d);
          for (std::int32_t i = 0; i < hops; ++i) {
            fresh_building.first[static_cast<std::size_t>(i)] = r.hop(i);
            fresh_building.same[static_cast<std::size_t>(i)] = true;
          }
          fresh_building.footprints.resize(static_cast<std::size_t>(hops));
          building.push_back(std::move(fresh_building));
        }
        b = it->second;
        last = b;
      }
      cached = b;
      Building& bb = building[static_cast<std::size_t>(b)];
      ++bb.num_flows;
      bb.senders.add(static_cast<std::int32_t>(s), static_cast<std::int32_t>(num_gpus));
      bb.receivers.add(static_cast<std::int32_t>(d), static_cast<std::int32_t>(num_gpus));
      for (std::int32_t i = 0; i < hops; ++i) {
        const LinkId l = r.hop(i);
        if (bb.first[static_cast<std::size_t>(i)] != l) bb.same[static_cast<std::size_t>(i)] = false;
        if (key.pins[static_cast<std::size_t>(i)] < 0) {
          const auto lc = static_cast<std::size_t>(link_class[static_cast<std::size_t>(l)]);
          bb.footprints[static_cast<std::size_t>(i)].add(class_index[static_cast<std::size_t>(l)],
                                                         static_cast<std::int32_t>(class_links_[lc].size()));
        }
      }
    });
    if (round == 0 && aggregate) decide();
    // A group spreads over links only where the block and class allow it, and only if it puts as
    // many flows on each link (ECMP hashing, for one, does not): otherwise tell its flows apart
    // there and group again.
    bool regroup = false;
    for (const Building& bb : building) {
      for (std::int32_t i = 0; i < bb.key.num_hops; ++i) {
        const auto ii = static_cast<std::size_t>(i);
        if (bb.key.pins[ii] >= 0 || bb.same[ii]) continue;
        {
          const auto l = static_cast<std::size_t>(bb.first[ii]);
          const auto b = static_cast<std::size_t>(block_of[l]);
          const auto k = static_cast<std::size_t>(link_class[l]);
          bool wrong = false;
          if (!block_ok[b] && block_spreadable[b]) {
            block_spreadable[b] = 0;
            wrong = true;
          }
          if (bb.key.pins[ii] == -1 && !class_ok[k] && spreadable[k]) {
            spreadable[k] = 0;
            wrong = true;
          }
          if (wrong) {
            regroup = true;
            continue;
          }
        }
        std::int32_t lo = 0;
        std::int32_t hi = 0;
        if (bb.footprints[ii].uniform(&lo, &hi)) continue;
        // Uneven. Flows of equal size to several destinations that met by chance: tell them apart
        // by destination first.
        std::int32_t first_dst = 0;
        std::int32_t last_dst = 0;
        bb.receivers.uniform(&first_dst, &last_dst);
        if (bb.key.dst < 0 && first_dst != last_dst) {
          by_destination.emplace(bb.key.tag, bb.key.bytes);
          regroup = true;
          break;
        }
        // Otherwise the links that carry other than the usual count of this group's flows have
        // their blocks' flows told apart by link; the rest may still spread.
        const auto k = static_cast<std::size_t>(link_class[static_cast<std::size_t>(bb.first[ii])]);
        const std::vector<Run> runs = bb.footprints[ii].snapshot();
        std::map<std::int32_t, std::int64_t> links_with;
        for (const Run& r : runs) links_with[r.count] += r.hi - r.lo + 1;
        std::int32_t usual = 0;
        std::int64_t most = -1;
        for (const auto& [count, n] : links_with) {
          if (n > most) {
            most = n;
            usual = count;
          }
        }
        for (const Run& r : runs) {
          if (r.count == usual) continue;
          for (std::int32_t idx = r.lo; idx <= r.hi; ++idx) {
            const auto b = static_cast<std::size_t>(block_of[static_cast<std::size_t>(class_links_[k][static_cast<std::size_t>(idx)])]);
            block_spreadable[b] = 0;
          }
        }
        regroup = true;
      }
    }
    HPSIM_ASSERT(round < 8 || !regroup, "grouping did not settle after {} rounds", round);
    if (!regroup) break;
    }
    pending.clear();

    const TimeNs now = queue.now();
    for (Building& bb : building) {
      Group g;
      g.tag = bb.key.tag;
      g.bytes = bb.key.bytes;
      g.num_flows = bb.num_flows;
      g.latency_ns = bb.latency_ns;
      g.start = now;
      g.updated_at = now;
      g.remaining = static_cast<double>(bb.key.bytes);
      g.example_src = bb.example_src;
      g.example_dst = bb.example_dst;
      for (std::int32_t i = 0; i < bb.key.num_hops; ++i) {
        const LinkId l = bb.first[static_cast<std::size_t>(i)];
        const std::int32_t k = link_class[static_cast<std::size_t>(l)];
        if (bb.same[static_cast<std::size_t>(i)]) {
          g.hops.push_back(Hop{l, k, Level::kLink, {}});
          continue;
        }
        std::vector<Run> footprint = bb.footprints[static_cast<std::size_t>(i)].take();
        const std::int32_t b = block_of[static_cast<std::size_t>(l)];
        const bool in_block = footprint.front().lo >= block_lo[static_cast<std::size_t>(b)] &&
                              footprint.back().hi <= block_hi[static_cast<std::size_t>(b)];
        if (in_block) {
          g.hops.push_back(Hop{b, k, Level::kBlock, std::move(footprint)});
        } else {
          g.hops.push_back(Hop{k, k, Level::kClass, std::move(footprint)});
        }
      }
      g.senders = to_rank_runs(bb.senders.take());
      g.receivers = to_rank_runs(bb.receivers.take());
      const auto gi = static_cast<std::int32_t>(groups.size());
      add_hop_counts(g, +1);
      cover(g, +1);
      in_flight_bytes += static_cast<double>(g.num_flows) * static_cast<double>(g.bytes);
      stats.flows += g.num_flows;
      ++stats.groups;
      groups.push_back(std::move(g));
      ++num_alive;
      in_u_.push_back(0);
      list_levels(gi);
      active.push_back(gi);
      fresh.push_back(gi);
    }
    return fresh;
  }

  // --- allocation ----------------------------------------------------------------------------

  void full_recompute() {
    ++stats.full_recomputes;
    std::erase_if(active, [&](std::int32_t gi) { return !groups[static_cast<std::size_t>(gi)].alive; });
    problem.clear_groups();
    problem.capacity = capacity;
    for (std::int32_t gi : active) {
      Group& g = groups[static_cast<std::size_t>(gi)];
      build_members(g);
      problem.add_group(g.members);
    }
    solve_max_min(problem, solution, workspace_);
    const std::size_t nch = capacity.size();
    for (std::size_t c = 0; c < nch; ++c) {
      members[c].clear();
      bottlenecked[c].clear();
      dead_in_[c] = 0;
    }
    load = solution.load;
    level = solution.level;
    std::fill(class_load.begin(), class_load.end(), 0.0);
    total_rate = 0;
    for (auto& list : class_groups_) list.clear();
    for (auto& list : block_groups_) list.clear();
    for (std::size_t i = 0; i < active.size(); ++i) {
      const std::int32_t gi = active[i];
      Group& g = groups[static_cast<std::size_t>(gi)];
      g.listed = true;
      list_levels(gi);
      for (const auto& [c, w] : g.members) members[static_cast<std::size_t>(c)].push_back(gi);
      g.bottleneck = solution.bottleneck[i];
      bottlenecked[static_cast<std::size_t>(g.bottleneck)].push_back(gi);
      // Rebuild the sums from scratch: set_rate adjusts them relative to the old rate.
      if (g.has_rate) {
        const double flows = static_cast<double>(g.num_flows);
        total_rate += flows * g.rate;
        for (const Hop& h : g.hops) class_load[static_cast<std::size_t>(h.link_class)] += flows * g.rate;
      }
    }
    for (std::size_t i = 0; i < active.size(); ++i) set_rate(active[i], solution.rate[i]);
  }

  // After groups ended: the remaining groups whose bottleneck was a link the ended ones used and
  // that have no other full link on which they are the fastest. Their rates need repair.
  std::vector<std::int32_t> invalid_after_end() {
    std::vector<std::int32_t> invalid;
    for (std::int32_t c : touched_list) {
      if (level[static_cast<std::size_t>(c)] < 0) continue;
      for (std::int32_t gi : bottlenecked[static_cast<std::size_t>(c)]) {
        Group& g = groups[static_cast<std::size_t>(gi)];
        if (!g.alive || g.bottleneck != c) continue;
        const std::int32_t alternative = find_bottleneck(g, /*skip_touched=*/true);
        if (alternative < 0) {
          g.bottleneck = -1;
          invalid.push_back(gi);
          continue;
        }
        g.bottleneck = alternative;
        bottlenecked[static_cast<std::size_t>(alternative)].push_back(gi);
      }
    }
    for (std::int32_t c : touched_list) {
      const auto k = static_cast<std::size_t>(c);
      touched[k] = 0;
      level[k] = -1;
      bottlenecked[k].clear();
    }
    touched_list.clear();
    return invalid;
  }

  // The groups whose bottleneck is channel k (entries of groups that died or moved dropped).
  const std::vector<std::int32_t>& live_bottlenecked(std::size_t k) {
    auto& list = bottlenecked[k];
    const auto c = static_cast<std::int32_t>(k);
    std::erase_if(list, [&](std::int32_t gi) {
      const Group& g = groups[static_cast<std::size_t>(gi)];
      return !g.alive || g.bottleneck != c;
    });
    return list;
  }

  // The groups on channel k, dead ones dropped first when they are many.
  const std::vector<std::int32_t>& alive_members(std::size_t k) {
    auto& list = members[k];
    if (list.size() > 64 && dead_in_[k] * 2 > list.size()) {
      std::erase_if(list, [&](std::int32_t gi) { return !groups[static_cast<std::size_t>(gi)].alive; });
      dead_in_[k] = 0;
    }
    return list;
  }

  // A full channel of g on which g's rate is the highest, or -1.
  std::int32_t find_bottleneck(const Group& g, bool skip_touched) const {
    for (const auto& [c, w] : g.members) {
      const auto k = static_cast<std::size_t>(c);
      if ((skip_touched && touched[k]) || level[k] < 0) continue;
      if (load[k] < capacity[k] * (1 - 1e-7)) continue;
      if (g.rate >= level[k] * (1 - kRateTolerance)) return c;
    }
    return -1;
  }

  // Local repair: new rates for the groups in `u` with every other group's rate held, widening
  // `u` until the result meets the max-min condition (each group has a full channel on which no
  // group is faster). False when `u` grows past a quarter of the groups: recompute everything.
  bool repair(std::vector<std::int32_t> u) {
    const std::size_t limit = static_cast<std::size_t>(num_alive) + 1;
    ++stamp_;
    for (std::int32_t gi : u) in_u_[static_cast<std::size_t>(gi)] = stamp_;
    std::vector<std::int32_t> channels;
    std::vector<double> before;  // U's load per local channel before
    std::vector<double> after;
    MaxMinProblem& residual = repair_problem_;
    MaxMinSolution& fill = repair_solution_;
    std::vector<std::pair<std::int32_t, std::int32_t>> repoint;
    for (int round = 0; round < 16; ++round) {
      if (u.size() > limit) return false;
      // Local channels and U's current share of them.
      channels.clear();
      before.clear();
      residual.capacity.clear();
      residual.clear_groups();
      ++channel_stamp_;
      std::vector<std::pair<std::int32_t, double>> mapped;
      for (std::int32_t gi : u) {
        const Group& g = groups[static_cast<std::size_t>(gi)];
        mapped.clear();
        for (const auto& [c, w] : g.members) {
          const auto k = static_cast<std::size_t>(c);
          if (channel_seen_[k] != channel_stamp_) {
            channel_seen_[k] = channel_stamp_;
            local_of_[k] = static_cast<std::int32_t>(channels.size());
            channels.push_back(c);
            before.push_back(0.0);
            residual.capacity.push_back(0.0);  // set below
          }
          const auto local = static_cast<std::size_t>(local_of_[k]);
          if (g.has_rate) before[local] += w * g.rate;
          mapped.emplace_back(static_cast<std::int32_t>(local), w);
        }
        residual.add_group(mapped);
      }
      std::vector<std::int32_t> additions;
      auto add = [&](std::int32_t gi) {
        if (in_u_[static_cast<std::size_t>(gi)] == stamp_) return;
        in_u_[static_cast<std::size_t>(gi)] = stamp_;
        additions.push_back(gi);
      };
      for (std::size_t i = 0; i < channels.size(); ++i) {
        const auto k = static_cast<std::size_t>(channels[i]);
        const double others = load[k] - before[i];
        const double spare = capacity[k] - others;
        if (spare <= capacity[k] * kRateTolerance) {
          // Full with other groups: they must share it with U.
          for (std::int32_t o : alive_members(k)) {
            if (groups[static_cast<std::size_t>(o)].alive) add(o);
          }
        }
        residual.capacity[i] = std::max(spare, capacity[k] * kRateTolerance);
      }
      if (!additions.empty()) {
        u.insert(u.end(), additions.begin(), additions.end());
        continue;
      }
      solve_max_min(residual, fill, workspace_);
      after.assign(channels.size(), 0.0);
      for (std::size_t i = 0; i < u.size(); ++i) {
        for (std::int64_t m = residual.offsets[i]; m < residual.offsets[i + 1]; ++m) {
          after[static_cast<std::size_t>(residual.channel[static_cast<std::size_t>(m)])] +=
              residual.weight[static_cast<std::size_t>(m)] * fill.rate[i];
        }
      }
      // Outsiders faster than a U group on that group's bottleneck must slow down: take them in.
      // (Per channel, the slowest U group frozen there decides; each list is walked once.)
      std::vector<double> slowest_frozen(channels.size(), -1.0);
      for (std::size_t i = 0; i < u.size(); ++i) {
        auto& x = slowest_frozen[static_cast<std::size_t>(fill.bottleneck[i])];
        x = x < 0 ? fill.rate[i] : std::min(x, fill.rate[i]);
      }
      for (std::size_t i = 0; i < channels.size(); ++i) {
        const double x = slowest_frozen[i];
        if (x < 0) continue;
        for (std::int32_t o : alive_members(static_cast<std::size_t>(channels[i]))) {
          const Group& og = groups[static_cast<std::size_t>(o)];
          if (og.alive && og.has_rate && in_u_[static_cast<std::size_t>(o)] != stamp_ && og.rate > x * (1 + kRateTolerance)) add(o);
        }
      }
      // Outsiders bottlenecked on a channel U now loads less lose that bottleneck: another full
      // channel where they are the fastest will do, else they are repaired too.
      repoint.clear();
      for (std::size_t i = 0; i < channels.size(); ++i) {
        const auto k = static_cast<std::size_t>(channels[i]);
        if (level[k] < 0 || after[i] >= before[i] - capacity[k] * kRateTolerance) continue;
        for (std::int32_t o : live_bottlenecked(k)) {
          const Group& og = groups[static_cast<std::size_t>(o)];
          if (in_u_[static_cast<std::size_t>(o)] == stamp_) continue;
          std::int32_t alternative = -1;
          for (const auto& [c2, w2] : og.members) {
            const auto k2 = static_cast<std::size_t>(c2);
            if (level[k2] < 0 || og.rate < level[k2] * (1 - kRateTolerance)) continue;
            if (channel_seen_[k2] == channel_stamp_) {
              const auto l2 = static_cast<std::size_t>(local_of_[k2]);
              if (after[l2] < before[l2] - capacity[k2] * kRateTolerance) continue;
            }
            alternative = c2;
            break;
          }
          if (alternative < 0) {
            add(o);
          } else {
            repoint.emplace_back(o, alternative);
          }
        }
      }
      // A U group faster than the groups bottlenecked on one of its channels takes their claim.
      std::vector<double> fastest(channels.size(), 0.0);
      for (std::size_t i = 0; i < u.size(); ++i) {
        for (std::int64_t m = residual.offsets[i]; m < residual.offsets[i + 1]; ++m) {
          auto& f = fastest[static_cast<std::size_t>(residual.channel[static_cast<std::size_t>(m)])];
          f = std::max(f, fill.rate[i]);
        }
      }
      for (std::size_t i = 0; i < channels.size(); ++i) {
        const auto k = static_cast<std::size_t>(channels[i]);
        if (level[k] < 0) continue;
        for (std::int32_t o : live_bottlenecked(k)) {
          const Group& og = groups[static_cast<std::size_t>(o)];
          if (og.rate * (1 + kRateTolerance) < fastest[i]) add(o);
        }
      }
      if (!additions.empty()) {
        u.insert(u.end(), additions.begin(), additions.end());
        continue;
      }
      // Accept.
      stats.repaired_groups += static_cast<std::int64_t>(u.size());
      for (const auto& [o, c] : repoint) {
        groups[static_cast<std::size_t>(o)].bottleneck = c;
        bottlenecked[static_cast<std::size_t>(c)].push_back(o);
      }
      for (std::size_t i = 0; i < channels.size(); ++i) {
        const auto k = static_cast<std::size_t>(channels[i]);
        load[k] += after[i] - before[i];
        if (after[i] < before[i] - capacity[k] * kRateTolerance) {
          level[k] = -1;
          bottlenecked[k].clear();
        } else if (level[k] >= 0) {
          // Still full; its level is the fastest group on it.
          level[k] = std::max(level[k], fastest[i]);
        }
      }
      for (std::size_t i = 0; i < u.size(); ++i) {
        const std::int32_t gi = u[i];
        Group& g = groups[static_cast<std::size_t>(gi)];
        if (!g.listed) {
          g.listed = true;
          for (const auto& [c, w] : g.members) members[static_cast<std::size_t>(c)].push_back(gi);
        }
        const std::int32_t c = channels[static_cast<std::size_t>(fill.bottleneck[i])];
        g.bottleneck = c;
        level[static_cast<std::size_t>(c)] = std::max(level[static_cast<std::size_t>(c)], fill.rate[i]);
        bottlenecked[static_cast<std::size_t>(c)].push_back(gi);
      }
      for (std::size_t i = 0; i < u.size(); ++i) set_rate(u[i], fill.rate[i]);
      return true;
    }
    return false;
  }

  // --- events ------------------------------------------------------------------------------

  void settle() {
    settle_scheduled = false;
    const TimeNs now = queue.now();
    advance_in_flight(now);
    ++stats.instants;
    bool full = !options.incremental;
    std::vector<std::int32_t> u;
    if (!ended_now.empty() && !full) u = invalid_after_end();
    if (full) {
      for (std::int32_t c : touched_list) touched[static_cast<std::size_t>(c)] = 0;
      touched_list.clear();
    }
    ended_now.clear();
    std::vector<std::int32_t> fresh = build_groups();
    if (need_full) full = true;
    need_full = false;
    // Links and blocks that became active couple (or carve) the groups already there; new groups
    // carve against links already active; carved groups may activate further links.
    process_activations();
    {
      std::vector<std::int32_t> round = fresh;
      while (!round.empty()) {
        round = carve_fresh(round);
        process_activations();
        fresh.insert(fresh.end(), round.begin(), round.end());
      }
      fresh.insert(fresh.end(), carved_.begin(), carved_.end());
      carved_.clear();
      if (!touched_list.empty()) {
        if (full) {
          for (std::int32_t c : touched_list) touched[static_cast<std::size_t>(c)] = 0;
          touched_list.clear();
        } else {
          const auto more = invalid_after_end();
          u.insert(u.end(), more.begin(), more.end());
        }
      }
      std::sort(fresh.begin(), fresh.end());
      fresh.erase(std::unique(fresh.begin(), fresh.end()), fresh.end());
    }
    if (!full) {
      for (std::int32_t gi : fresh) build_members(groups[static_cast<std::size_t>(gi)]);
      u.insert(u.end(), fresh.begin(), fresh.end());
      u.insert(u.end(), affected_.begin(), affected_.end());
      ++stamp_;
      std::erase_if(u, [&](std::int32_t gi) {
        auto& mark = in_u_[static_cast<std::size_t>(gi)];
        if (mark == stamp_ || !groups[static_cast<std::size_t>(gi)].alive) return true;
        mark = stamp_;
        return false;
      });
      if (!u.empty()) {
        if (repair(std::move(u))) {
          ++stats.local_repairs;
        } else {
          full = true;
        }
      }
    }
    affected_.clear();
    if (full) full_recompute();
    if (options.check_incremental && !full) check_against_recompute();
    stats.max_active_groups = std::max(stats.max_active_groups, num_alive);
    record_samples(now);
    schedule_wake();
  }

  // NetworkOptions::check_incremental: the rates kept and repaired must be those a recomputation
  // from scratch gives.
  void check_against_recompute() {
    MaxMinProblem p;
    p.capacity = capacity;
    std::vector<std::int32_t> ids;
    for (std::int32_t gi : active) {
      const Group& g = groups[static_cast<std::size_t>(gi)];
      if (!g.alive) continue;
      p.add_group(g.members);
      ids.push_back(gi);
    }
    MaxMinSolution full;
    solve_max_min(p, full);
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const Group& g = groups[static_cast<std::size_t>(ids[i])];
      HPSIM_ASSERT(std::abs(full.rate[i] - g.rate) <= 1e-6 * g.rate,
                   "at {} ns the rate of group {} (tag {}, {} -> {}) is {} per ns, a recomputation gives {}", queue.now(),
                   ids[i], g.tag, g.example_src, g.example_dst, g.rate, full.rate[i]);
    }
  }

  void schedule_wake() {
    compact_finish_heap();
    while (!finish_heap.empty()) {
      const Finish& top = finish_heap.top();
      const Group& g = groups[static_cast<std::size_t>(top.group)];
      if (g.alive && g.version == top.version) break;
      finish_heap.pop();
    }
    if (finish_heap.empty()) return;
    ++wake_generation;
    queue.schedule(finish_heap.top().t, &State::on_wake, this, static_cast<std::int64_t>(wake_generation));
  }

  void wake(std::uint64_t generation) {
    if (generation != wake_generation) return;
    const TimeNs now = queue.now();
    bool ended = false;
    while (!finish_heap.empty() && finish_heap.top().t <= now) {
      const Finish f = finish_heap.top();
      finish_heap.pop();
      Group& g = groups[static_cast<std::size_t>(f.group)];
      if (!g.alive || g.version != f.version) continue;
      end_group(f.group);
      ended = true;
    }
    if (ended) {
      request_settle();
    } else {
      schedule_wake();
    }
  }

  void end_group(std::int32_t gi) {
    Group& g = groups[static_cast<std::size_t>(gi)];
    const TimeNs now = queue.now();
    advance_in_flight(now);
    const double flows = static_cast<double>(g.num_flows);
    // What is left of it (rounding to whole ns) leaves the in-flight count now.
    const double left = std::max(0.0, g.remaining - g.rate * static_cast<double>(now - g.updated_at));
    in_flight_bytes = std::max(0.0, in_flight_bytes - flows * left);
    g.alive = false;
    --num_alive;
    g.sent = now;
    total_rate -= flows * g.rate;
    for (const Hop& h : g.hops) {
      const auto k = static_cast<std::size_t>(h.link_class);
      class_load[k] -= flows * g.rate;
      class_bytes[k] += flows * static_cast<double>(g.bytes);
    }
    for (const auto& [c, w] : g.members) {
      load[static_cast<std::size_t>(c)] -= w * g.rate;
      ++dead_in_[static_cast<std::size_t>(c)];
      mark_touched(c);
    }
    add_hop_counts(g, -1);
    cover(g, -1);
    ended_now.push_back(gi);
    queue.schedule(now + g.latency_ns, &State::on_arrival, this, gi);
  }

  void arrive(std::int32_t gi) {
    Group& g = groups[static_cast<std::size_t>(gi)];
    FlowArrival a;
    a.tag = g.tag;
    a.bytes_per_flow = g.bytes;
    a.num_flows = g.num_flows;
    a.start_ns = g.start;
    a.sent_ns = g.sent;
    a.end_ns = queue.now();
    a.example_src = g.example_src;
    a.example_dst = g.example_dst;
    a.senders = g.senders;
    a.receivers = g.receivers;
    listener.on_arrival(a);
    std::vector<RankRun>().swap(g.senders);
    std::vector<RankRun>().swap(g.receivers);
    std::vector<std::pair<std::int32_t, double>>().swap(g.members);
    for (Hop& h : g.hops) std::vector<Run>().swap(h.footprint);
  }

  void record_samples(TimeNs now) {
    const auto cap = static_cast<std::size_t>(options.max_samples);
    for (std::size_t k = 0; k < class_util.size(); ++k) {
      if (class_used[k] == 0) continue;
      const double util = std::max(0.0, class_load[k]) / (static_cast<double>(class_used[k]) * topo.link_classes()[k].bandwidth_gbps);
      auto& series = class_util[k];
      if (!series.empty() && series.back().value == util) continue;
      if (!series.empty() && series.back().t_ns == now) {
        series.back().value = util;
      } else if (series.size() < cap) {
        series.push_back(TimeValue{now, util});
      } else {
        class_truncated[k] = 1;
      }
    }
    if (!in_flight.empty() && in_flight.back().t_ns == now) {
      in_flight.back().value = in_flight_bytes;
    } else if (in_flight.size() < cap) {
      in_flight.push_back(TimeValue{now, in_flight_bytes});
    } else {
      in_flight_truncated = true;
    }
  }
};

FlowNetwork::FlowNetwork(const Topology& topology, EventQueue& queue, FlowListener& listener, NetworkOptions options)
    : state_(std::make_unique<State>(topology, queue, listener, options)) {}

FlowNetwork::~FlowNetwork() = default;

void FlowNetwork::add_row(std::int64_t tag, std::int64_t src, std::span<const double> bytes_by_dst) {
  HPSIM_ASSERT(src >= 0 && src < state_->num_gpus, "add_row: src {} out of range ({} GPUs)", src, state_->num_gpus);
  HPSIM_ASSERT(static_cast<std::int64_t>(bytes_by_dst.size()) <= state_->num_gpus, "add_row: {} destinations, {} GPUs",
               bytes_by_dst.size(), state_->num_gpus);
  if (bytes_by_dst.empty()) return;
  state_->pending.push_back(PendingRow{tag, src, bytes_by_dst, 0, 0});
  state_->request_settle();
}

void FlowNetwork::add_flow(std::int64_t tag, std::int64_t src, std::int64_t dst, std::int64_t bytes) {
  HPSIM_ASSERT(src >= 0 && src < state_->num_gpus && dst >= 0 && dst < state_->num_gpus && src != dst,
               "add_flow: {} -> {} on {} GPUs", src, dst, state_->num_gpus);
  if (bytes <= 0) return;
  state_->pending.push_back(PendingRow{tag, src, {}, dst, bytes});
  state_->request_settle();
}

bool FlowNetwork::idle() const {
  if (!state_->pending.empty()) return false;
  for (std::int32_t gi : state_->active) {
    if (state_->groups[static_cast<std::size_t>(gi)].alive) return false;
  }
  return true;
}

const NetworkStats& FlowNetwork::stats() const { return state_->stats; }

std::vector<LinkClassSeries> FlowNetwork::link_class_series() const {
  std::vector<LinkClassSeries> out;
  const auto classes = state_->topo.link_classes();
  for (std::size_t k = 0; k < classes.size(); ++k) {
    LinkClassSeries s;
    s.name = classes[k].name;
    s.bandwidth_gbps = classes[k].bandwidth_gbps;
    s.num_links = classes[k].num_links;
    s.num_links_used = state_->class_used[k];
    s.bytes_carried = state_->class_bytes[k];
    s.utilisation = state_->class_util[k];
    s.truncated = state_->class_truncated[k] != 0;
    out.push_back(std::move(s));
  }
  return out;
}

const std::vector<TimeValue>& FlowNetwork::bytes_in_flight() const { return state_->in_flight; }

double FlowNetwork::current_rate(std::int64_t tag, std::int64_t src, std::int64_t dst) const {
  for (std::int32_t gi : state_->active) {
    const Group& g = state_->groups[static_cast<std::size_t>(gi)];
    if (g.alive && g.has_rate && g.tag == tag && g.example_src == src && g.example_dst == dst) return g.rate;
  }
  return -1;
}

}  // namespace hpsim::sim
