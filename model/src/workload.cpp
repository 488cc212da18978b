// Routing workloads (symbols n, H, E, k, W as in workload.h).
#include "hpsim/model/workload.h"

#include <algorithm>
#include <numeric>

#include "error_lines.h"
#include "hpsim/core/rng.h"

namespace hpsim::model {
namespace {

// Per-expert selection probabilities of one router (sum k): uniform k/E or Zipf inclusion.
std::vector<double> expected_inclusion(const core::WorkloadSpec& w, std::int64_t num_experts, std::int64_t k) {
  if (w.routing == core::Routing::kZipf && w.zipf_skew != 0) return zipf_inclusion(num_experts, k, w.zipf_skew);
  return std::vector<double>(static_cast<std::size_t>(num_experts),
                             static_cast<double>(k) / static_cast<double>(num_experts));
}

// Counts per expert of n tokens each choosing k distinct experts by successive sampling.
class DistinctSampler {
 public:
  DistinctSampler(const std::vector<double>& weights, std::int64_t k)
      : weights_(weights), table_(weights), k_(k), stamp_(weights.size(), 0) {}

  void add_counts(core::Rng& rng, std::int64_t num_tokens, std::vector<double>& counts) {
    std::vector<std::int64_t> chosen(static_cast<std::size_t>(k_));
    for (std::int64_t t = 0; t < num_tokens; ++t) {
      ++token_;
      draw_one(rng, chosen);
      for (auto e : chosen) counts[static_cast<std::size_t>(e)] += 1.0;
    }
  }

 private:
  // Rejection of already chosen experts is exactly "draw among the rest in proportion to weight".
  // After many rejections (a few experts hold nearly all the weight) fall back to a linear scan.
  void draw_one(core::Rng& rng, std::vector<std::int64_t>& chosen) {
    std::int64_t num_chosen = 0;
    std::int64_t tries = 0;
    while (num_chosen < k_) {
      if (tries > 64) {
        draw_rest_by_scan(rng, chosen, num_chosen);
        return;
      }
      ++tries;
      const std::int64_t e = table_.draw(rng);
      auto& s = stamp_[static_cast<std::size_t>(e)];
      if (s == token_) continue;
      s = token_;
      chosen[static_cast<std::size_t>(num_chosen++)] = e;
      tries = 0;
    }
  }

  void draw_rest_by_scan(core::Rng& rng, std::vector<std::int64_t>& chosen, std::int64_t num_chosen) {
    while (num_chosen < k_) {
      double rest = 0;
      for (std::size_t e = 0; e < weights_.size(); ++e) {
        if (stamp_[e] != token_) rest += weights_[e];
      }
      double u = rng.uniform() * rest;
      std::size_t pick = weights_.size();
      for (std::size_t e = 0; e < weights_.size(); ++e) {
        if (stamp_[e] == token_) continue;
        pick = e;
        if (u < weights_[e]) break;
        u -= weights_[e];
      }
      HPSIM_ASSERT(pick < weights_.size(), "successive sampling found no expert left");
      stamp_[pick] = token_;
      chosen[static_cast<std::size_t>(num_chosen++)] = static_cast<std::int64_t>(pick);
    }
  }

  std::vector<double> weights_;
  core::AliasTable table_;
  std::int64_t k_ = 0;
  std::vector<std::uint64_t> stamp_;
  std::uint64_t token_ = 0;
};

// A reproducible stream per (strategy, group, source rank).
core::Rng stream(std::uint64_t seed, core::Strategy strategy, std::int64_t group, std::int64_t src) {
  std::uint64_t x = seed;
  x ^= 0x9E3779B97F4A7C15ULL * (static_cast<std::uint64_t>(group) * 1000003ULL + static_cast<std::uint64_t>(src) + 1);
  x ^= strategy == core::Strategy::kHp ? 0xD1B54A32D192ED03ULL : 0;
  return core::Rng(x);
}

core::Error trace_mismatch(const std::string& file, std::string_view what, std::int64_t in_file, std::string_view field,
                           std::int64_t in_scenario) {
  return core::Error::field("workload.trace_file",
                            fmt::format("{} records {} = {}, but {} = {}", file, what, in_file, field, in_scenario));
}

}  // namespace

std::int64_t RoutingWorkload::owner(std::int64_t group, std::int64_t expert) const {
  if (strategy == core::Strategy::kEp) return ep_owner(expert, experts_per_group, num_ranks, ownership);
  return group / (num_groups / num_ranks);
}

double RoutingWorkload::rank_load(std::int64_t rank) const {
  double sum = 0;
  for (std::int64_t src = 0; src < num_ranks; ++src) sum += slots(src, rank);
  return sum;
}

std::vector<double> RoutingWorkload::rank_loads() const {
  std::vector<double> loads(static_cast<std::size_t>(num_ranks), 0.0);
  for (std::int64_t src = 0; src < num_ranks; ++src) {
    for (std::int64_t dst = 0; dst < num_ranks; ++dst) loads[static_cast<std::size_t>(dst)] += slots(src, dst);
  }
  return loads;
}

double RoutingWorkload::rank_source_slots(std::int64_t rank) const {
  double sum = 0;
  for (std::int64_t dst = 0; dst < num_ranks; ++dst) sum += slots(rank, dst);
  return sum;
}

double RoutingWorkload::total_slots() const {
  return static_cast<double>(num_ranks) * static_cast<double>(tokens_per_rank) * static_cast<double>(top_k) *
         static_cast<double>(num_groups);
}

double RoutingWorkload::load_imbalance() const {
  const auto loads = rank_loads();
  const double total = std::accumulate(loads.begin(), loads.end(), 0.0);
  if (loads.empty() || total <= 0) return 1.0;
  return *std::max_element(loads.begin(), loads.end()) / (total / static_cast<double>(loads.size()));
}

std::int64_t ep_owner(std::int64_t expert, std::int64_t num_experts, std::int64_t num_ranks,
                      core::Ownership ownership) {
  if (ownership == core::Ownership::kStrided) return expert % num_ranks;
  return expert / (num_experts / num_ranks);
}

namespace {

// The shape checks and the empty tallies shared by every source of counts.
core::Expected<RoutingWorkload> empty_workload(const core::Scenario& scenario, core::Strategy strategy) {
  const auto& m = scenario.model;
  const auto& wl = scenario.workload;
  const std::int64_t W = scenario.parallel.num_ranks;
  const std::int64_t n = wl.tokens_per_rank;
  const std::int64_t k = m.top_k;
  const std::int64_t E = m.num_experts;
  const std::int64_t H = m.num_heads;
  if (W <= 0 || n <= 0 || k <= 0 || E <= 0 || k > E) {
    return core::Error::field("scenario", "needs parallel.num_ranks, workload.tokens_per_rank, model.top_k and "
                                          "model.num_experts > 0 with top_k <= num_experts (run validation first)");
  }
  if (strategy == core::Strategy::kEp && E % W != 0) {
    return core::Error::field("parallel.num_ranks",
                              fmt::format("must divide model.num_experts ({}) for EP, got {}", E, W));
  }
  if (strategy == core::Strategy::kHp && (H <= 0 || H % W != 0)) {
    return core::Error::field("parallel.num_ranks", fmt::format("must divide model.num_heads ({}) for HP, got {}", H, W));
  }
  RoutingWorkload out;
  out.strategy = strategy;
  out.num_ranks = W;
  out.num_groups = strategy == core::Strategy::kEp ? 1 : H;
  out.experts_per_group = E;
  out.tokens_per_rank = n;
  out.top_k = k;
  out.ownership = wl.ownership;
  out.rank_slots.assign(static_cast<std::size_t>(W * W), 0.0);
  return out;
}

// Adds one (group, source rank)'s per-expert counts to both tallies.
void add_source_counts(RoutingWorkload& out, std::int64_t g, std::int64_t src, const double* counts) {
  const std::int64_t E = out.experts_per_group;
  for (std::int64_t e = 0; e < E; ++e) {
    const double c = counts[e];
    out.expert_slots[static_cast<std::size_t>(g * E + e)] += c;
    out.rank_slots[static_cast<std::size_t>(src * out.num_ranks + out.owner(g, e))] += c;
  }
}

}  // namespace

core::Expected<RoutingWorkload> workload_from_trace(const core::Scenario& scenario, core::Strategy strategy,
                                                    const RoutingTrace& t) {
  auto made = empty_workload(scenario, strategy);
  if (!made) return made.error();
  RoutingWorkload& out = *made;
  const std::int64_t W = out.num_ranks, n = out.tokens_per_rank, E = out.experts_per_group, k = out.top_k;
  const std::int64_t H = scenario.model.num_heads;
  const std::string& file = scenario.workload.trace_file;
  if (t.num_ranks != W) return trace_mismatch(file, "num_ranks", t.num_ranks, "parallel.num_ranks", W);
  if (t.tokens_per_rank != n) {
    return trace_mismatch(file, "tokens_per_rank", t.tokens_per_rank, "workload.tokens_per_rank", n);
  }
  if (t.num_experts != E) return trace_mismatch(file, "num_experts", t.num_experts, "model.num_experts", E);
  if (t.top_k != k) return trace_mismatch(file, "top_k", t.top_k, "model.top_k", k);
  out.expert_slots.assign(static_cast<std::size_t>(out.num_groups * E), 0.0);
  if (strategy == core::Strategy::kEp) {
    if (t.ep_counts.empty()) {
      return core::Error::field("workload.trace_file", fmt::format("{} has no \"ep\" section (EP routing)", file));
    }
    HPSIM_ASSERT(t.ep_counts.size() == static_cast<std::size_t>(W * E), "routing counts: {} EP counts for W * E = {}",
                 t.ep_counts.size(), W * E);
    for (std::int64_t src = 0; src < W; ++src) {
      add_source_counts(out, 0, src, &t.ep_counts[static_cast<std::size_t>(src * E)]);
    }
    return out;
  }
  if (t.hp_counts.empty()) {
    return core::Error::field("workload.trace_file", fmt::format("{} has no \"hp\" section (HP routing)", file));
  }
  if (t.num_heads != H) return trace_mismatch(file, "num_heads", t.num_heads, "model.num_heads", H);
  HPSIM_ASSERT(t.hp_counts.size() == static_cast<std::size_t>(H * W * E), "routing counts: {} HP counts for H * W * E = {}",
               t.hp_counts.size(), H * W * E);
  for (std::int64_t g = 0; g < H; ++g) {
    for (std::int64_t src = 0; src < W; ++src) {
      add_source_counts(out, g, src, &t.hp_counts[static_cast<std::size_t>((g * W + src) * E)]);
    }
  }
  return out;
}

core::Expected<RoutingWorkload> build_workload(const core::Scenario& scenario, core::Strategy strategy) {
  const auto& wl = scenario.workload;
  if (wl.routing == core::Routing::kTrace) {
    auto trace = load_routing_trace(wl.trace_file);
    if (!trace) return detail::prefix_lines(trace.error(), "workload.trace_file: ");
    return workload_from_trace(scenario, strategy, *trace);
  }
  auto made = empty_workload(scenario, strategy);
  if (!made) return made.error();
  RoutingWorkload& out = *made;
  const std::int64_t W = out.num_ranks, n = out.tokens_per_rank, E = out.experts_per_group, k = out.top_k;
  const std::int64_t G = out.num_groups;
  const auto uW = static_cast<std::size_t>(W);
  const auto uE = static_cast<std::size_t>(E);

  if (wl.mode == core::WorkloadMode::kSampled) {
    out.expert_slots.assign(static_cast<std::size_t>(G) * uE, 0.0);
    const std::vector<double> weights = wl.routing == core::Routing::kZipf
                                            ? zipf_weights(E, wl.zipf_skew)
                                            : std::vector<double>(uE, 1.0);
    DistinctSampler sampler(weights, k);
    std::vector<double> counts(uE);
    for (std::int64_t g = 0; g < G; ++g) {
      for (std::int64_t src = 0; src < W; ++src) {
        std::fill(counts.begin(), counts.end(), 0.0);
        core::Rng rng = stream(wl.seed, strategy, g, src);
        sampler.add_counts(rng, n, counts);
        add_source_counts(out, g, src, counts.data());
      }
    }
    return out;
  }

  // Expectation: every source rank routes n * pi_e slots to expert e (pi sums to k).
  out.is_expected = true;
  const auto pi = expected_inclusion(wl, E, k);
  const double nd = static_cast<double>(n);
  const double Wd = static_cast<double>(W);
  // One head's (or EP's) per-expert slots, repeated for every head.
  std::vector<double> row(uE);
  for (std::size_t e = 0; e < uE; ++e) row[e] = Wd * nd * pi[e];
  out.expert_slots.reserve(static_cast<std::size_t>(G) * uE);
  for (std::int64_t g = 0; g < G; ++g) out.expert_slots.insert(out.expert_slots.end(), row.begin(), row.end());
  if (strategy == core::Strategy::kEp) {
    std::vector<double> per_owner(uW, 0.0);
    for (std::int64_t e = 0; e < E; ++e) {
      per_owner[static_cast<std::size_t>(out.owner(0, e))] += nd * pi[static_cast<std::size_t>(e)];
    }
    for (std::int64_t src = 0; src < W; ++src) {
      std::copy(per_owner.begin(), per_owner.end(), out.rank_slots.begin() + static_cast<std::ptrdiff_t>(src * W));
    }
  } else {
    const double per_pair = nd * static_cast<double>(k) * static_cast<double>(G / W);
    std::fill(out.rank_slots.begin(), out.rank_slots.end(), per_pair);
  }
  return out;
}

}  // namespace hpsim::model
