#include "hpsim/sim/max_min.h"

#include <algorithm>

#include "hpsim/core/error.h"

namespace hpsim::sim {

std::int64_t MaxMinProblem::add_group(const std::vector<std::pair<std::int32_t, double>>& memberships) {
  HPSIM_ASSERT(!memberships.empty(), "a group needs at least one channel");
  for (const auto& [c, w] : memberships) {
    HPSIM_ASSERT(c >= 0 && c < num_channels(), "channel {} out of range ({} channels)", c, num_channels());
    HPSIM_ASSERT(w > 0, "weight must be > 0, got {}", w);
    channel.push_back(c);
    weight.push_back(w);
  }
  offsets.push_back(static_cast<std::int64_t>(channel.size()));
  return num_groups() - 1;
}

void MaxMinProblem::clear_groups() {
  offsets.assign(1, 0);
  channel.clear();
  weight.clear();
}

void solve_max_min(const MaxMinProblem& p, MaxMinSolution& s) {
  MaxMinWorkspace w;
  solve_max_min(p, s, w);
}

void solve_max_min(const MaxMinProblem& p, MaxMinSolution& s, MaxMinWorkspace& ws) {
  const auto num_groups = static_cast<std::size_t>(p.num_groups());
  const auto num_channels = static_cast<std::size_t>(p.num_channels());
  s.rate.assign(num_groups, 0.0);
  s.bottleneck.assign(num_groups, -1);
  s.load.assign(num_channels, 0.0);
  s.level.assign(num_channels, -1.0);

  // Channel -> memberships (transpose), unfrozen weight and count per channel.
  auto& ch_offsets = ws.ch_offsets;
  ch_offsets.assign(num_channels + 1, 0);
  for (std::int32_t c : p.channel) ++ch_offsets[static_cast<std::size_t>(c) + 1];
  for (std::size_t c = 0; c < num_channels; ++c) ch_offsets[c + 1] += ch_offsets[c];
  auto& ch_group = ws.ch_group;
  auto& ch_weight = ws.ch_weight;
  ch_group.resize(p.channel.size());
  ch_weight.resize(p.channel.size());
  ws.fill.assign(ch_offsets.begin(), ch_offsets.end() - 1);
  for (std::size_t g = 0; g < num_groups; ++g) {
    for (std::int64_t m = p.offsets[g]; m < p.offsets[g + 1]; ++m) {
      const auto c = static_cast<std::size_t>(p.channel[static_cast<std::size_t>(m)]);
      const auto slot = static_cast<std::size_t>(ws.fill[c]++);
      ch_group[slot] = static_cast<std::int64_t>(g);
      ch_weight[slot] = p.weight[static_cast<std::size_t>(m)];
    }
  }
  auto& unfrozen_weight = ws.unfrozen_weight;
  auto& unfrozen_count = ws.unfrozen_count;
  unfrozen_weight.assign(num_channels, 0.0);
  unfrozen_count.assign(num_channels, 0);
  for (std::size_t c = 0; c < num_channels; ++c) {
    for (std::int64_t m = ch_offsets[c]; m < ch_offsets[c + 1]; ++m) unfrozen_weight[c] += ch_weight[static_cast<std::size_t>(m)];
    unfrozen_count[c] = ch_offsets[c + 1] - ch_offsets[c];
  }

  using Entry = MaxMinWorkspace::Entry;
  auto later = [](const Entry& a, const Entry& b) {
    if (a.level != b.level) return a.level > b.level;
    return a.channel > b.channel;
  };
  auto& heap = ws.heap;
  heap.clear();
  auto push = [&](Entry e) {
    heap.push_back(e);
    std::push_heap(heap.begin(), heap.end(), later);
  };
  // Freezing groups elsewhere only raises a channel's level, so a channel's key in the heap is a
  // lower bound: when it comes up, its level is recomputed and, if it rose, it goes back in.
  auto level_of = [&](std::size_t c) { return std::max(0.0, p.capacity[c] - s.load[c]) / unfrozen_weight[c]; };
  for (std::size_t c = 0; c < num_channels; ++c) {
    if (unfrozen_count[c] > 0) heap.push_back(Entry{level_of(c), static_cast<std::int32_t>(c)});
  }
  std::make_heap(heap.begin(), heap.end(), later);
  auto& frozen = ws.frozen;
  frozen.assign(num_groups, 0);
  double water = 0;
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    const Entry top = heap.back();
    heap.pop_back();
    const auto c = static_cast<std::size_t>(top.channel);
    if (unfrozen_count[c] == 0) continue;
    const double current = level_of(c);
    if (current > top.level && current > water) {
      push(Entry{current, top.channel});
      continue;
    }
    water = std::max(water, current);  // levels only rise; rounding must not undo that
    s.level[c] = water;
    for (std::int64_t m = ch_offsets[c]; m < ch_offsets[c + 1]; ++m) {
      const auto g = static_cast<std::size_t>(ch_group[static_cast<std::size_t>(m)]);
      if (frozen[g]) continue;
      frozen[g] = 1;
      s.rate[g] = water;
      s.bottleneck[g] = static_cast<std::int32_t>(c);
      for (std::int64_t k = p.offsets[g]; k < p.offsets[g + 1]; ++k) {
        const auto c2 = static_cast<std::size_t>(p.channel[static_cast<std::size_t>(k)]);
        const double w = p.weight[static_cast<std::size_t>(k)];
        s.load[c2] += w * water;
        unfrozen_weight[c2] -= w;
        --unfrozen_count[c2];
      }
    }
  }
  // Channels that filled up only through groups frozen elsewhere (ties) are bottlenecks too.
  for (std::size_t c = 0; c < num_channels; ++c) {
    if (s.level[c] >= 0 || ch_offsets[c] == ch_offsets[c + 1]) continue;
    if (s.load[c] >= p.capacity[c] * (1 - kRateTolerance)) {
      double top_rate = 0;
      for (std::int64_t m = ch_offsets[c]; m < ch_offsets[c + 1]; ++m) {
        top_rate = std::max(top_rate, s.rate[static_cast<std::size_t>(ch_group[static_cast<std::size_t>(m)])]);
      }
      s.level[c] = top_rate;
    }
  }
}

}  // namespace hpsim::sim
