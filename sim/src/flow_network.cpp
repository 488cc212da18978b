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
#include <queue>
#include <tuple>
#include <unordered_map>

#include "hpsim/core/error.h"
#include "hpsim/sim/max_min.h"
#include "flow_groups.h"

namespace hpsim::sim {

std::int64_t flow_bytes(double bytes) { return bytes >= 0.5 && std::isfinite(bytes) ? std::llround(bytes) : 0; }

namespace {

using detail::count_at;
using detail::count_in;
using detail::FootprintBuilder;
using detail::GroupKey;
using detail::GroupKeyHash;
using detail::kMaxHops;
using detail::RankCounter;
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
  std::uint32_t version = 0;
  std::int32_t example_src = 0;
  std::int32_t example_dst = 0;
  std::int32_t bottleneck = -1;
  std::vector<Hop> hops;
  std::vector<std::pair<std::int32_t, double>> members;  // channel, weight
  std::vector<RankCount> senders;
  std::vector<RankCount> receivers;
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
  RankCounter senders;
  RankCounter receivers;
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
  std::vector<std::int32_t> active;
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
  std::vector<std::int64_t> block_used;
  std::vector<std::int64_t> class_used;

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
  MaxMinProblem problem;
  MaxMinSolution solution;

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
    block_used.assign(nb, 0);
    class_used.assign(nc, 0);
    class_load.assign(nc, 0.0);
    class_bytes.assign(nc, 0.0);
    class_util.assign(nc, {});
    class_truncated.assign(nc, 0);
    batch_count.assign(nl, 0);
    block_max_.assign(nb, 0);
    block_total_.assign(nb, 0);
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
          if (pinned_count[id] > 0 && !listed_link[id]) {
            listed_link[id] = 1;
            pinned_links_of[k].push_back(h.id);
            pinned_links_in[static_cast<std::size_t>(block_of[id])].push_back(h.id);
          }
          break;
        case Level::kBlock:
          class_block_spread[k] += sign;
          block_spread[id] += sign;
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

  // More than one level of hops alive in a class: its links, blocks and class channel couple.
  bool mixed(std::size_t k) const {
    return (class_pinned[k] > 0 ? 1 : 0) + (class_block_spread[k] > 0 ? 1 : 0) + (class_spread[k] > 0 ? 1 : 0) > 1;
  }

  // Memberships of a group under the current couplings. A hop loads its own channel; the channels
  // above it in its class (its block, the class), as their average link; and the channels below
  // it that carry hops of their own (blocks, links), with the flows it actually has there.
  void build_members(Group& g) {
    g.members.clear();
    const double flows = static_cast<double>(g.num_flows);
    for (const Hop& h : g.hops) {
      const auto k = static_cast<std::size_t>(h.link_class);
      const double per_class_link = flows / static_cast<double>(std::max<std::int64_t>(class_used[k], 1));
      switch (h.level) {
        case Level::kLink: {
          const auto b = static_cast<std::size_t>(block_of[static_cast<std::size_t>(h.id)]);
          g.members.emplace_back(h.id, flows);
          if (block_spread[b] > 0) {
            g.members.emplace_back(block_channel(static_cast<std::int32_t>(b)), flows / static_cast<double>(std::max<std::int64_t>(block_used[b], 1)));
          }
          if (class_spread[k] > 0) g.members.emplace_back(class_channel(h.link_class), per_class_link);
          break;
        }
        case Level::kBlock: {
          const auto b = static_cast<std::size_t>(h.id);
          g.members.emplace_back(block_channel(h.id), flows / static_cast<double>(std::max<std::int64_t>(block_used[b], 1)));
          if (class_spread[k] > 0) g.members.emplace_back(class_channel(h.link_class), per_class_link);
          for (std::int32_t l : pinned_links_in[b]) {
            if (pinned_count[static_cast<std::size_t>(l)] == 0) continue;
            const std::int32_t c = count_at(h.footprint, class_index[static_cast<std::size_t>(l)]);
            if (c > 0) g.members.emplace_back(l, static_cast<double>(c));
          }
          break;
        }
        case Level::kClass: {
          g.members.emplace_back(class_channel(h.link_class), per_class_link);
          for (std::int32_t b : spread_blocks_of[k]) {
            const auto bb = static_cast<std::size_t>(b);
            if (block_spread[bb] == 0) continue;
            const std::int64_t c = count_in(h.footprint, block_lo[bb], block_hi[bb]);
            if (c > 0) g.members.emplace_back(block_channel(b), static_cast<double>(c) / static_cast<double>(std::max<std::int64_t>(block_used[bb], 1)));
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
    std::vector<char> spreadable(static_cast<std::size_t>(num_classes), 0);
    std::vector<char> block_spreadable(static_cast<std::size_t>(num_blocks), 0);
    if (aggregate) {
      for_each_pending_flow([&](std::int64_t, std::int64_t s, std::int64_t d, std::int64_t) {
        const Route r = topo.route(s, d);
        for (std::int32_t i = 0; i < r.num_hops(); ++i) {
          const auto l = static_cast<std::size_t>(r.hop(i));
          if (batch_count[l]++ == 0) batch_touched.push_back(static_cast<std::int32_t>(l));
          if (!link_used[l]) {
            link_used[l] = 1;
            ++class_used[static_cast<std::size_t>(link_class[l])];
            ++block_used[static_cast<std::size_t>(block_of[l])];
            need_full = true;
          }
        }
      });
      // Even enough to spread: the busiest link carries at most (1 + tolerance) x the mean over
      // the links in use, in the class and in each block.
      std::vector<std::int64_t> max_count(static_cast<std::size_t>(num_classes), 0);
      std::vector<std::int64_t> total(static_cast<std::size_t>(num_classes), 0);
      std::vector<std::int32_t> blocks_touched;
      for (std::int32_t l : batch_touched) {
        const auto k = static_cast<std::size_t>(link_class[static_cast<std::size_t>(l)]);
        const std::int64_t c = batch_count[static_cast<std::size_t>(l)];
        max_count[k] = std::max(max_count[k], c);
        total[k] += c;
        const std::int32_t b = block_of[static_cast<std::size_t>(l)];
        if (block_max_[static_cast<std::size_t>(b)] == 0) blocks_touched.push_back(b);
        block_max_[static_cast<std::size_t>(b)] = std::max(block_max_[static_cast<std::size_t>(b)], c);
        block_total_[static_cast<std::size_t>(b)] += c;
        batch_count[static_cast<std::size_t>(l)] = 0;
      }
      batch_touched.clear();
      const double slack = 1 + options.spread_tolerance;
      for (std::size_t k = 0; k < spreadable.size(); ++k) {
        if (total[k] == 0) continue;
        const double mean = static_cast<double>(total[k]) / static_cast<double>(class_used[k]);
        spreadable[k] = static_cast<double>(max_count[k]) <= slack * mean ? 1 : 0;
      }
      for (std::int32_t b : blocks_touched) {
        const auto bb = static_cast<std::size_t>(b);
        const double mean = static_cast<double>(block_total_[bb]) / static_cast<double>(block_used[bb]);
        block_spreadable[bb] = static_cast<double>(block_max_[bb]) <= slack * mean ? 1 : 0;
        block_max_[bb] = 0;
        block_total_[bb] = 0;
      }
      // A class spreads only where each of its blocks does.
      for (std::int32_t b : blocks_touched) {
        if (!block_spreadable[static_cast<std::size_t>(b)]) spreadable[static_cast<std::size_t>(block_class[static_cast<std::size_t>(b)])] = 0;
      }
    }

    // Rows in source order: footprints then grow in link order (runs stay few).
    std::stable_sort(pending.begin(), pending.end(), [](const PendingRow& a, const PendingRow& b) { return a.src < b.src; });
    std::unordered_map<GroupKey, std::int32_t, GroupKeyHash> index;
    std::vector<Building> building;
    GroupKey key;
    std::int32_t last = -1;
    for (int round = 0;; ++round) {
    index.clear();
    building.clear();
    last = -1;
    for_each_pending_flow([&](std::int64_t tag, std::int64_t s, std::int64_t d, std::int64_t bytes) {
      const Route r = topo.route(s, d);
      const std::int32_t hops = r.num_hops();
      HPSIM_ASSERT(hops <= kMaxHops, "path of {} hops from gpu{} to gpu{}: at most {} supported", hops, s, d, kMaxHops);
      key.tag = tag;
      key.bytes = bytes;
      key.path_class = r.path_class;
      key.num_hops = hops;
      // The key tells flows apart by link where the link's block is uneven, by block where only
      // the class is, not at all where both are even.
      for (std::int32_t i = 0; i < hops; ++i) {
        const LinkId l = r.hop(i);
        const auto li = static_cast<std::size_t>(l);
        std::int32_t pin = l;
        if (aggregate && block_spreadable[static_cast<std::size_t>(block_of[li])]) {
          pin = spreadable[static_cast<std::size_t>(link_class[li])] ? -1 : -2 - block_of[li];
        }
        key.pins[static_cast<std::size_t>(i)] = pin;
      }
      std::int32_t b = -1;
      if (last >= 0 && building[static_cast<std::size_t>(last)].key == key) {
        b = last;
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
      Building& bb = building[static_cast<std::size_t>(b)];
      ++bb.num_flows;
      bb.senders.add(static_cast<std::int32_t>(s), num_gpus);
      bb.receivers.add(static_cast<std::int32_t>(d), num_gpus);
      for (std::int32_t i = 0; i < hops; ++i) {
        const LinkId l = r.hop(i);
        if (bb.first[static_cast<std::size_t>(i)] != l) bb.same[static_cast<std::size_t>(i)] = false;
        if (key.pins[static_cast<std::size_t>(i)] < 0) {
          const auto lc = static_cast<std::size_t>(link_class[static_cast<std::size_t>(l)]);
          bb.footprints[static_cast<std::size_t>(i)].add(class_index[static_cast<std::size_t>(l)],
                                                         static_cast<std::int32_t>(topo.link_classes()[lc].num_links));
        }
      }
    });
    // A group spreads over links only if it puts as many flows on each (ECMP hashing, for one,
    // does not): otherwise tell its flows apart there and group again.
    bool regroup = false;
    for (const Building& bb : building) {
      for (std::int32_t i = 0; i < bb.key.num_hops; ++i) {
        const auto ii = static_cast<std::size_t>(i);
        if (bb.key.pins[ii] >= 0 || bb.same[ii]) continue;
        std::int32_t lo = 0;
        std::int32_t hi = 0;
        if (bb.footprints[ii].uniform(&lo, &hi)) continue;
        const auto l = static_cast<std::size_t>(bb.first[ii]);
        const auto b = static_cast<std::size_t>(block_of[l]);
        spreadable[static_cast<std::size_t>(link_class[l])] = 0;
        if (bb.key.pins[ii] != -1 || (lo >= block_lo[b] && hi <= block_hi[b])) block_spreadable[b] = 0;
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
      g.senders = bb.senders.take();
      g.receivers = bb.receivers.take();
      const auto gi = static_cast<std::int32_t>(groups.size());
      add_hop_counts(g, +1);
      in_flight_bytes += static_cast<double>(g.num_flows) * static_cast<double>(g.bytes);
      stats.flows += g.num_flows;
      ++stats.groups;
      groups.push_back(std::move(g));
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
    for (std::int32_t gi : active) {
      Group& g = groups[static_cast<std::size_t>(gi)];
      build_members(g);
      problem.add_group(g.members);
    }
    solve_max_min(problem, solution);
    const std::size_t nch = capacity.size();
    for (std::size_t c = 0; c < nch; ++c) {
      members[c].clear();
      bottlenecked[c].clear();
    }
    load = solution.load;
    level = solution.level;
    std::fill(class_load.begin(), class_load.end(), 0.0);
    total_rate = 0;
    for (std::size_t i = 0; i < active.size(); ++i) {
      const std::int32_t gi = active[i];
      Group& g = groups[static_cast<std::size_t>(gi)];
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

  // After groups ended: is every remaining group still bottlenecked somewhere untouched?
  bool keep_after_end() {
    bool ok = true;
    for (std::int32_t c : touched_list) {
      if (!ok) break;
      if (level[static_cast<std::size_t>(c)] < 0) continue;
      for (std::int32_t gi : bottlenecked[static_cast<std::size_t>(c)]) {
        Group& g = groups[static_cast<std::size_t>(gi)];
        if (!g.alive || g.bottleneck != c) continue;
        std::int32_t alternative = -1;
        for (const auto& [c2, w] : g.members) {
          const auto k = static_cast<std::size_t>(c2);
          if (touched[k] || level[k] < 0) continue;
          if (g.rate >= level[k] * (1 - kRateTolerance)) {
            alternative = c2;
            break;
          }
        }
        if (alternative < 0) {
          ok = false;
          break;
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
    return ok;
  }

  // New groups into the spare capacity; false when that would not be max-min fair.
  bool keep_after_start(const std::vector<std::int32_t>& fresh) {
    // Classes with hops at several levels couple their channels: recompute.
    for (std::int32_t gi : fresh) {
      for (const Hop& h : groups[static_cast<std::size_t>(gi)].hops) {
        if (mixed(static_cast<std::size_t>(h.link_class))) return false;
      }
    }
    std::vector<std::int32_t> channels;
    std::unordered_map<std::int32_t, std::int32_t> local;
    MaxMinProblem residual;
    for (std::int32_t gi : fresh) {
      Group& g = groups[static_cast<std::size_t>(gi)];
      build_members(g);
      std::vector<std::pair<std::int32_t, double>> mapped;
      for (const auto& [c, w] : g.members) {
        auto [it, inserted] = local.emplace(c, static_cast<std::int32_t>(channels.size()));
        if (inserted) {
          channels.push_back(c);
          const double spare = capacity[static_cast<std::size_t>(c)] - load[static_cast<std::size_t>(c)];
          if (level[static_cast<std::size_t>(c)] >= 0 || spare <= capacity[static_cast<std::size_t>(c)] * kRateTolerance) {
            return false;  // a full channel: someone must give way
          }
          residual.capacity.push_back(spare);
        }
        mapped.emplace_back(it->second, w);
      }
      residual.add_group(mapped);
    }
    MaxMinSolution fill;
    solve_max_min(residual, fill);
    for (std::size_t i = 0; i < fresh.size(); ++i) {
      const double x = fill.rate[i];
      const std::int32_t c = channels[static_cast<std::size_t>(fill.bottleneck[i])];
      if (!(x > 0)) return false;
      for (std::int32_t other : members[static_cast<std::size_t>(c)]) {
        const Group& o = groups[static_cast<std::size_t>(other)];
        if (o.alive && o.has_rate && o.rate > x * (1 + kRateTolerance)) return false;
      }
    }
    for (std::size_t i = 0; i < fresh.size(); ++i) {
      const std::int32_t gi = fresh[i];
      Group& g = groups[static_cast<std::size_t>(gi)];
      for (const auto& [c, w] : g.members) {
        load[static_cast<std::size_t>(c)] += w * fill.rate[i];
        members[static_cast<std::size_t>(c)].push_back(gi);
      }
      const std::int32_t c = channels[static_cast<std::size_t>(fill.bottleneck[i])];
      g.bottleneck = c;
      level[static_cast<std::size_t>(c)] = std::max(level[static_cast<std::size_t>(c)], fill.rate[i]);
      bottlenecked[static_cast<std::size_t>(c)].push_back(gi);
      set_rate(gi, fill.rate[i]);
    }
    return true;
  }

  // --- events ------------------------------------------------------------------------------

  void settle() {
    settle_scheduled = false;
    const TimeNs now = queue.now();
    advance_in_flight(now);
    ++stats.instants;
    bool full = !options.incremental;
    if (!ended_now.empty() && !full) {
      const bool kept = keep_after_end();
      if (kept) {
        ++stats.kept_after_end;
      } else {
        full = true;
      }
    }
    if (full) {
      for (std::int32_t c : touched_list) touched[static_cast<std::size_t>(c)] = 0;
      touched_list.clear();
    }
    ended_now.clear();
    const std::vector<std::int32_t> fresh = build_groups();
    if (need_full) full = true;
    need_full = false;
    if (!fresh.empty() && !full) {
      if (keep_after_start(fresh)) {
        ++stats.kept_after_start;
      } else {
        full = true;
      }
    }
    if (full) full_recompute();
    std::int64_t alive = 0;
    for (std::int32_t gi : active) alive += groups[static_cast<std::size_t>(gi)].alive ? 1 : 0;
    stats.max_active_groups = std::max(stats.max_active_groups, alive);
    record_samples(now);
    schedule_wake();
  }

  void schedule_wake() {
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
    g.sent = now;
    total_rate -= flows * g.rate;
    for (const Hop& h : g.hops) {
      const auto k = static_cast<std::size_t>(h.link_class);
      class_load[k] -= flows * g.rate;
      class_bytes[k] += flows * static_cast<double>(g.bytes);
    }
    for (const auto& [c, w] : g.members) {
      load[static_cast<std::size_t>(c)] -= w * g.rate;
      mark_touched(c);
    }
    add_hop_counts(g, -1);
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
    std::vector<RankCount>().swap(g.senders);
    std::vector<RankCount>().swap(g.receivers);
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
