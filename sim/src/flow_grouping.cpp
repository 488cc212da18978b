// FlowNetwork: grouping the flows that leave at one instant, blocks, footprints, and carving
// (flow_network.h explains the levels).
#include <algorithm>
#include <map>
#include <set>
#include <tuple>
#include <unordered_map>

#include "flow_network_state.h"
#include "hpsim/core/error.h"

namespace hpsim::sim {

void FlowNetwork::State::build_blocks() {
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

void FlowNetwork::State::cover(const Group& g, int sign) {
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

void FlowNetwork::State::add_hop_counts(const Group& g, int sign) {
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

void FlowNetwork::State::list_levels(std::int32_t gi) {
  for (const Hop& h : groups[static_cast<std::size_t>(gi)].hops) {
    if (h.level == Level::kBlock) block_groups_[static_cast<std::size_t>(h.id)].push_back(gi);
    if (h.level == Level::kClass) class_groups_[static_cast<std::size_t>(h.id)].push_back(gi);
  }
}

void FlowNetwork::State::couple(std::int32_t gi, std::int32_t c, double w) {
  Group& g = groups[static_cast<std::size_t>(gi)];
  auto it = std::lower_bound(g.members.begin(), g.members.end(), std::make_pair(c, 0.0),
                             [](const auto& a, const auto& b) { return a.first < b.first; });
  if (it != g.members.end() && it->first == c) return;  // coupled already
  g.members.insert(it, std::make_pair(c, w));
  members[static_cast<std::size_t>(c)].push_back(gi);
  if (g.has_rate) load[static_cast<std::size_t>(c)] += w * g.rate;
  affected_.push_back(gi);
}

void FlowNetwork::State::link_became_active(std::int32_t l) {
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

void FlowNetwork::State::process_activations() {
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

std::vector<std::int32_t> FlowNetwork::State::carve_fresh(const std::vector<std::int32_t>& fresh) {
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

std::int32_t FlowNetwork::State::carve(std::int32_t gi, std::int32_t hop, LinkId l) {
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

void FlowNetwork::State::remove_from(std::vector<Run>& runs, std::int32_t index, std::int32_t count) {
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

void FlowNetwork::State::block_became_active(std::int32_t b) {
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

std::vector<std::int32_t> FlowNetwork::State::build_groups() {
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

}  // namespace hpsim::sim
