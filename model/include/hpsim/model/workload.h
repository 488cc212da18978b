#pragma once
// Routing workloads: how many (token, slot) pairs each expert and each rank receives.
// Symbols (DESIGN.md section 2): n tokens per rank, H heads, E experts (per head for HP, in total
// for EP), k active experts per token (per head for HP), W ranks.
//
// EP: each of the n tokens of every rank picks k distinct experts of E; expert e lives on one rank
//     (contiguous: e / (E/W); strided: e mod W).
// HP: each token becomes H sub-tokens; per head, each sub-token picks k distinct experts of that
//     head's E. Head g's experts all live on the rank that owns head g (contiguous: g / (H/W)),
//     so HP's routing changes expert loads inside a rank but never the bytes between ranks.
//
// Selection of k distinct experts is successive sampling: draw an expert with probability
// proportional to its weight, remove it, repeat k times (the order of an exponential race, which
// is also what top-k of Gumbel-perturbed logits gives). Expectation mode uses the exact inclusion
// probabilities of that scheme (docs/model.md, "Routing"); sampled mode draws it.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "hpsim/core/error.h"
#include "hpsim/core/scenario.h"

namespace hpsim::model {

// Per-rank and per-expert (token, slot) counts of one strategy's routing.
struct RoutingWorkload {
  core::Strategy strategy = core::Strategy::kEp;
  std::int64_t num_ranks = 0;          // W
  std::int64_t num_groups = 0;         // routers: 1 for EP, H for HP
  std::int64_t experts_per_group = 0;  // E
  std::int64_t tokens_per_rank = 0;    // n (tokens; sub-tokens per head for HP)
  std::int64_t top_k = 0;              // k

  // Slots each expert receives from all ranks: [group * E + e]. Sums to W * n * k per group.
  std::vector<double> expert_slots;
  // Slots that source rank src routes to experts owned by rank dst, all groups together:
  // [src * W + dst]. Row src sums to n * k * num_groups.
  std::vector<double> rank_slots;
  core::Ownership ownership = core::Ownership::kContiguous;  // EP's rule; HP heads are contiguous
  // true: expert_slots are expectations (expectation mode), each expert's count being
  // Binomial(W n, expert_slots / (W n)); false: they are counts (sampled or recorded routing).
  bool is_expected = false;

  // Rank that owns expert e of group g (EP: by the ownership rule; HP: the owner of head g).
  std::int64_t owner(std::int64_t group, std::int64_t expert) const;

  double slots(std::int64_t src, std::int64_t dst) const {
    return rank_slots[static_cast<std::size_t>(src * num_ranks + dst)];
  }
  // Slots rank r's experts process (column sum): the rank's load.
  double rank_load(std::int64_t rank) const;
  std::vector<double> rank_loads() const;
  // Slots rank r's tokens produce (row sum): n * k * num_groups.
  double rank_source_slots(std::int64_t rank) const;
  // W * n * k * num_groups.
  double total_slots() const;
  // max / mean of rank_loads(); 1 when balanced.
  double load_imbalance() const;
};

// Zipf weights 1 / (i + 1)^skew for i = 0 .. num_experts - 1 (skew 0 gives uniform weights).
std::vector<double> zipf_weights(std::int64_t num_experts, double skew);

// Probability that each item is among the first k of successive sampling without replacement
// with the given positive weights (exact up to quadrature error; sums to k). Method and error in
// docs/model.md: pi_i = integral over t of w_i e^{-w_i t} P(fewer than k of the others arrived by t).
std::vector<double> inclusion_probabilities(const std::vector<double>& weights, std::int64_t k);

// Expected-count inclusion probabilities of Zipf(skew) over E experts for top-k, memoised (the
// result depends only on (E, k, skew); sweeps ask for the same few again and again).
const std::vector<double>& zipf_inclusion(std::int64_t num_experts, std::int64_t k, double skew);

// Recorded routing counts (workload.routing = "trace"); file format in docs/model.md.
struct RoutingTrace {
  std::int64_t num_ranks = 0;        // W
  std::int64_t tokens_per_rank = 0;  // n
  std::int64_t num_heads = 0;        // H of the HP section (0 when absent)
  std::int64_t num_experts = 0;      // E
  std::int64_t top_k = 0;            // k
  // EP: [src][e] flattened (W * E); empty when the file has no "ep" section.
  std::vector<double> ep_counts;
  // HP: [head][src][e] flattened (H * W * E); empty when the file has no "hp" section.
  std::vector<double> hp_counts;
};

// Strict reading: unknown, missing or wrongly typed fields and counts that break the routing rules
// (each row sums to n * k, no count above n, no negative) are errors naming the field's path.
core::Expected<RoutingTrace> parse_routing_trace(std::string_view json_text);
core::Expected<RoutingTrace> load_routing_trace(const std::string& path);

// The routing of recorded counts for `strategy` under the scenario's W, n, E, k (and H), taken as
// exact counts. The trace must match the scenario; errors name workload.trace_file.
core::Expected<RoutingWorkload> workload_from_trace(const core::Scenario& scenario, core::Strategy strategy,
                                                    const RoutingTrace& trace);

// EP: the rank that owns expert `expert` (0 .. E-1) under the ownership rule.
std::int64_t ep_owner(std::int64_t expert, std::int64_t num_experts, std::int64_t num_ranks, core::Ownership ownership);

// The routing of `strategy` for a scenario (its workload spec: uniform, Zipf, or trace; expectation
// or sampled). A trace file is read from workload.trace_file. Errors name the field or file.
core::Expected<RoutingWorkload> build_workload(const core::Scenario& scenario, core::Strategy strategy);

}  // namespace hpsim::model
