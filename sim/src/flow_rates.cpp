// FlowNetwork: max-min rates of the groups in progress: memberships, recomputation, and the
// local repair that keeps the allocation a recomputation would give (flow_network.h).
#include <algorithm>
#include <cmath>

#include "flow_network_state.h"
#include "hpsim/core/error.h"

namespace hpsim::sim {

void FlowNetwork::State::build_members(Group& g) {
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

void FlowNetwork::State::full_recompute() {
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

std::vector<std::int32_t> FlowNetwork::State::invalid_after_end() {
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

const std::vector<std::int32_t>& FlowNetwork::State::live_bottlenecked(std::size_t k) {
  auto& list = bottlenecked[k];
  const auto c = static_cast<std::int32_t>(k);
  std::erase_if(list, [&](std::int32_t gi) {
    const Group& g = groups[static_cast<std::size_t>(gi)];
    return !g.alive || g.bottleneck != c;
  });
  return list;
}

const std::vector<std::int32_t>& FlowNetwork::State::alive_members(std::size_t k) {
  auto& list = members[k];
  if (list.size() > 64 && dead_in_[k] * 2 > list.size()) {
    std::erase_if(list, [&](std::int32_t gi) { return !groups[static_cast<std::size_t>(gi)].alive; });
    dead_in_[k] = 0;
  }
  return list;
}

std::int32_t FlowNetwork::State::find_bottleneck(const Group& g, bool skip_touched) const {
  for (const auto& [c, w] : g.members) {
    const auto k = static_cast<std::size_t>(c);
    if ((skip_touched && touched[k]) || level[k] < 0) continue;
    if (load[k] < capacity[k] * (1 - 1e-7)) continue;
    if (g.rate >= level[k] * (1 - kRateTolerance)) return c;
  }
  return -1;
}

bool FlowNetwork::State::repair(std::vector<std::int32_t> u) {
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

}  // namespace hpsim::sim
