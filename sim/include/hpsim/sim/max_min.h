#pragma once
// Max-min fair rates by progressive filling (water-filling).
//
// A problem has channels (each with a capacity, bytes per ns = GB/s) and groups of identical flows.
// Group g puts weight w(g, c) flows on channel c, so at a rate r per flow it loads c with w * r.
// (A plain flow on a plain link has weight 1. A group of m flows that all cross one link has
// weight m there; a group spread evenly over the k links of a class has weight m / k on the
// class channel. flow_network.h builds both.)
//
// All unfrozen groups rise together; when a channel fills, every unfrozen group on it freezes at
// that level, which is then its rate. The result is the unique max-min fair allocation: no
// group's rate can grow without shrinking the rate of a group that has no more than it.
// Cost O(M + C log C) for M memberships and C channels (keys in the heap are lower bounds,
// refreshed when they come up). Ties go to the lower channel index, so the
// same problem always gives the same bottlenecks.

#include <cstdint>
#include <vector>

namespace hpsim::sim {

struct MaxMinProblem {
  std::vector<double> capacity;  // per channel, > 0
  // Memberships of group g: [offsets[g], offsets[g+1]) in channel / weight. Every group has at
  // least one membership with weight > 0.
  std::vector<std::int64_t> offsets{0};
  std::vector<std::int32_t> channel;
  std::vector<double> weight;

  std::int64_t num_groups() const { return static_cast<std::int64_t>(offsets.size()) - 1; }
  std::int64_t num_channels() const { return static_cast<std::int64_t>(capacity.size()); }
  // Appends a group; returns its index.
  std::int64_t add_group(const std::vector<std::pair<std::int32_t, double>>& memberships);
  void clear_groups();
};

struct MaxMinSolution {
  std::vector<double> rate;               // per group: the rate of each of its flows
  std::vector<std::int32_t> bottleneck;   // per group: the channel that froze it
  std::vector<double> load;               // per channel: sum of weight * rate
  // Per channel: the highest rate among its groups if the channel is full, else -1. A full
  // channel is a bottleneck of each of its groups whose rate equals that level.
  std::vector<double> level;
};

// Scratch space of the solver, reused between calls to save allocations.
struct MaxMinWorkspace {
  std::vector<std::int64_t> ch_offsets;
  std::vector<std::int64_t> ch_group;
  std::vector<double> ch_weight;
  std::vector<std::int64_t> fill;
  std::vector<double> unfrozen_weight;
  std::vector<std::int64_t> unfrozen_count;
  std::vector<char> frozen;
  struct Entry {
    double level;
    std::int32_t channel;
  };
  std::vector<Entry> heap;
};

// Solves `problem` into `solution` (its vectors are reused).
void solve_max_min(const MaxMinProblem& problem, MaxMinSolution& solution);
void solve_max_min(const MaxMinProblem& problem, MaxMinSolution& solution, MaxMinWorkspace& workspace);

// Relative tolerance under which two rates or a load and a capacity count as equal.
inline constexpr double kRateTolerance = 1e-9;

}  // namespace hpsim::sim
