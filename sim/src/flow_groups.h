#pragma once
// Private helpers of flow_network.cpp: the key that groups flows, per-rank flow counts, and the
// footprint of a spread group (how many of its flows cross each link of a class).

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "hpsim/sim/flow_network.h"

namespace hpsim::sim::detail {

constexpr int kMaxHops = 16;

inline std::uint64_t mix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

struct GroupKey {
  std::int64_t tag = 0;
  std::int64_t bytes = 0;
  std::int32_t path_class = 0;
  std::int32_t num_hops = 0;
  std::int32_t dst = -1;                // the destination, where flows are told apart by it
  std::array<LinkId, kMaxHops> pins{};  // the link at each hop where the key tells flows apart, else -1

  bool operator==(const GroupKey& o) const {
    if (tag != o.tag || bytes != o.bytes || path_class != o.path_class || num_hops != o.num_hops || dst != o.dst) return false;
    for (int i = 0; i < num_hops; ++i) {
      if (pins[static_cast<std::size_t>(i)] != o.pins[static_cast<std::size_t>(i)]) return false;
    }
    return true;
  }
};

struct GroupKeyHash {
  std::size_t operator()(const GroupKey& k) const {
    std::uint64_t h = mix64(static_cast<std::uint64_t>(k.tag));
    h = mix64(h ^ static_cast<std::uint64_t>(k.bytes));
    h = mix64(h ^ static_cast<std::uint64_t>(k.path_class));
    h = mix64(h ^ static_cast<std::uint64_t>(static_cast<std::uint32_t>(k.dst)));
    for (int i = 0; i < k.num_hops; ++i) h = mix64(h ^ static_cast<std::uint64_t>(static_cast<std::uint32_t>(k.pins[static_cast<std::size_t>(i)])));
    return static_cast<std::size_t>(h);
  }
};

// Flows per link of one class at one hop of a spread group, as runs of consecutive class-local
// link indices [lo, hi] that carry `count` flows each. Exact, and a handful of runs for the
// usual all-to-all patterns (e.g. "every uplink but those of the destination's node").
struct Run {
  std::int32_t lo = 0;
  std::int32_t hi = 0;
  std::int32_t count = 0;
};

class FootprintBuilder {
 public:
  void add(std::int32_t index, std::int32_t class_size) {
    if (!dense_.empty()) {
      ++dense_[static_cast<std::size_t>(index)];
      return;
    }
    if (index == current_) {
      ++current_count_;
      return;
    }
    if (current_ >= 0 && index < current_) {
      // Out of order: count densely from here on.
      dense_.assign(static_cast<std::size_t>(class_size), 0);
      flush();
      for (const Run& r : runs_) {
        for (std::int32_t i = r.lo; i <= r.hi; ++i) dense_[static_cast<std::size_t>(i)] += r.count;
      }
      runs_.clear();
      current_ = -1;
      ++dense_[static_cast<std::size_t>(index)];
      return;
    }
    flush();
    current_ = index;
    current_count_ = 1;
  }

  // Do all links it touches carry the same number of flows? Also the first and last index.
  bool uniform(std::int32_t* lo, std::int32_t* hi) const {
    std::int32_t count = -1;
    bool same = true;
    *lo = -1;
    *hi = -1;
    auto see = [&](std::int32_t a, std::int32_t b, std::int32_t c) {
      if (*lo < 0) *lo = a;
      *hi = b;
      if (count >= 0 && c != count) same = false;
      count = c;
    };
    if (!dense_.empty()) {
      for (std::size_t i = 0; i < dense_.size(); ++i) {
        if (dense_[i] > 0) see(static_cast<std::int32_t>(i), static_cast<std::int32_t>(i), dense_[i]);
      }
      return same;
    }
    for (const Run& r : runs_) see(r.lo, r.hi, r.count);
    if (current_ >= 0) see(current_, current_, current_count_);
    return same;
  }

  // The runs so far, without consuming them.
  std::vector<Run> snapshot() const {
    std::vector<Run> out;
    auto push = [&](std::int32_t lo, std::int32_t hi, std::int32_t c) {
      if (!out.empty() && out.back().hi + 1 == lo && out.back().count == c) {
        out.back().hi = hi;
      } else {
        out.push_back(Run{lo, hi, c});
      }
    };
    if (!dense_.empty()) {
      for (std::size_t i = 0; i < dense_.size(); ++i) {
        if (dense_[i] > 0) push(static_cast<std::int32_t>(i), static_cast<std::int32_t>(i), dense_[i]);
      }
      return out;
    }
    for (const Run& r : runs_) push(r.lo, r.hi, r.count);
    if (current_ >= 0) push(current_, current_, current_count_);
    return out;
  }

  std::vector<Run> take() {
    if (dense_.empty()) {
      flush();
      current_ = -1;
      return std::move(runs_);
    }
    std::vector<Run> out;
    for (std::size_t i = 0; i < dense_.size(); ++i) {
      const std::int32_t c = dense_[i];
      if (c == 0) continue;
      const auto idx = static_cast<std::int32_t>(i);
      if (!out.empty() && out.back().hi + 1 == idx && out.back().count == c) {
        out.back().hi = idx;
      } else {
        out.push_back(Run{idx, idx, c});
      }
    }
    dense_.clear();
    return out;
  }

 private:
  void flush() {
    if (current_ < 0) return;
    if (!runs_.empty() && runs_.back().hi + 1 == current_ && runs_.back().count == current_count_) {
      runs_.back().hi = current_;
    } else {
      runs_.push_back(Run{current_, current_, current_count_});
    }
    current_ = -1;
  }

  std::vector<Run> runs_;
  std::int32_t current_ = -1;
  std::int32_t current_count_ = 0;
  std::vector<std::int32_t> dense_;
};

// Runs of ranks (same coding as footprints) as the public RankRun.
inline std::vector<RankRun> to_rank_runs(const std::vector<Run>& runs) {
  std::vector<RankRun> out;
  out.reserve(runs.size());
  for (const Run& r : runs) out.push_back(RankRun{r.lo, r.hi, r.count});
  return out;
}

inline std::int32_t count_at(const std::vector<Run>& runs, std::int32_t index) {
  auto it = std::upper_bound(runs.begin(), runs.end(), index, [](std::int32_t i, const Run& r) { return i < r.lo; });
  if (it == runs.begin()) return 0;
  --it;
  return index <= it->hi ? it->count : 0;
}

// Sum of the counts of the runs over class-local indices [lo, hi].
inline std::int64_t count_in(const std::vector<Run>& runs, std::int32_t lo, std::int32_t hi) {
  std::int64_t sum = 0;
  auto it = std::upper_bound(runs.begin(), runs.end(), lo, [](std::int32_t i, const Run& r) { return i < r.lo; });
  if (it != runs.begin()) --it;
  for (; it != runs.end() && it->lo <= hi; ++it) {
    const std::int32_t a = std::max(lo, it->lo);
    const std::int32_t b = std::min(hi, it->hi);
    if (a <= b) sum += static_cast<std::int64_t>(b - a + 1) * it->count;
  }
  return sum;
}

}  // namespace hpsim::sim::detail
