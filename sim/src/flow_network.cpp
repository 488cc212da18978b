// FlowNetwork: events, completions and the public calls (flow_network.h); the state is in
// flow_network_state.h.
#include "hpsim/sim/flow_network.h"

#include <algorithm>
#include <cmath>

#include "flow_network_state.h"
#include "hpsim/core/error.h"

namespace hpsim::sim {

std::int64_t flow_bytes(double bytes) {
  // Round half up; a plan's bytes are far below 2^53.
  return bytes >= 0.5 && bytes < 9e15 ? static_cast<std::int64_t>(bytes + 0.5) : 0;
}

FlowNetwork::State::State(const Topology& t, EventQueue& q, FlowListener& sink, NetworkOptions o) : topo(t), queue(q), listener(sink), options(o) {
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

void FlowNetwork::State::request_settle() {
  if (settle_scheduled) return;
  settle_scheduled = true;
  queue.schedule(queue.now(), &State::on_settle, this, 0, EventQueue::Priority::kLate);
}

void FlowNetwork::State::advance_in_flight(TimeNs now) {
  in_flight_bytes -= total_rate * static_cast<double>(now - in_flight_at);
  if (in_flight_bytes < 0) in_flight_bytes = 0;
  in_flight_at = now;
}

void FlowNetwork::State::compact_finish_heap() {
  if (finish_heap.size() < 4096 || finish_heap.size() < 4 * static_cast<std::size_t>(num_alive)) return;
  std::erase_if(finish_heap, [&](const Finish& f) {
    const Group& g = groups[static_cast<std::size_t>(f.group)];
    return !g.alive || g.version != f.version;
  });
  std::make_heap(finish_heap.begin(), finish_heap.end(), FinishLater{});
}

void FlowNetwork::State::schedule_finish(std::int32_t gi) {
  Group& g = groups[static_cast<std::size_t>(gi)];
  HPSIM_ASSERT(g.rate > 0, "group of tag {} has rate {} (a link of zero capacity?)", g.tag, g.rate);
  const double ns = g.remaining / g.rate;
  TimeNs t = g.updated_at + static_cast<TimeNs>(std::ceil(std::max(0.0, ns - 1e-6)));
  if (t < queue.now()) t = queue.now();
  g.sent = t;
  ++g.version;
  push_finish(Finish{t, gi, g.version});
}

void FlowNetwork::State::set_rate(std::int32_t gi, double rate) {
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

void FlowNetwork::State::mark_touched(std::int32_t c) {
  if (!touched[static_cast<std::size_t>(c)]) {
    touched[static_cast<std::size_t>(c)] = 1;
    touched_list.push_back(c);
  }
}

void FlowNetwork::State::settle() {
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

void FlowNetwork::State::check_against_recompute() {
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

void FlowNetwork::State::schedule_wake() {
  compact_finish_heap();
  while (!finish_heap.empty()) {
    const Finish& top = finish_heap.front();
    const Group& g = groups[static_cast<std::size_t>(top.group)];
    if (g.alive && g.version == top.version) break;
    pop_finish();
  }
  if (finish_heap.empty()) return;
  ++wake_generation;
  queue.schedule(finish_heap.front().t, &State::on_wake, this, static_cast<std::int64_t>(wake_generation));
}

void FlowNetwork::State::wake(std::uint64_t generation) {
  if (generation != wake_generation) return;
  const TimeNs now = queue.now();
  bool ended = false;
  while (!finish_heap.empty() && finish_heap.front().t <= now) {
    const Finish f = finish_heap.front();
    pop_finish();
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

void FlowNetwork::State::end_group(std::int32_t gi) {
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

void FlowNetwork::State::arrive(std::int32_t gi) {
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

void FlowNetwork::State::record_samples(TimeNs now) {
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
