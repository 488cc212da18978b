// Segments and row tiles of the grouped expert kernels (segments.h, docs/model.md).
#include "hpsim/model/segments.h"

#include <algorithm>
#include <cmath>

#include "hpsim/core/error.h"

namespace hpsim::model {
namespace {

constexpr double kTailSigmas = 8;  // beyond this many standard deviations a term is 0 or 1

// P(Z > x) for a standard normal Z.
double upper_tail(double x) { return 0.5 * std::erfc(x / std::sqrt(2.0)); }

// P(c > T) = P(c >= T + 1) for c ~ Binomial(trials, p), 0 < p < 1, T >= 1: the normal approximation
// with continuity correction, P(Z > (T + 0.5 - mean) / sd), 0 or 1 beyond kTailSigmas.
double exceeds_probability(double trials, double p, double T) {
  const double mean = trials * p;
  const double sd = std::sqrt(mean * (1 - p));
  if (T >= trials) return 0;
  const double z = (T + 0.5 - mean) / sd;
  if (z > kTailSigmas) return 0;
  if (z < -kTailSigmas) return 1;
  return upper_tail(z);
}

// sum over j >= 1 of P(c > j T) for c ~ Binomial(trials, p), 0 < p < 1 (see expected_items).
double items_past_first(double trials, double p, double T) {
  const double mean = trials * p;
  const double sd = std::sqrt(mean * (1 - p));
  // Terms past j_max are 0 (c <= trials bounds j), those up to j_sure 1.
  const double j_max = std::floor((std::min(trials, mean + kTailSigmas * sd) - 0.5) / T);
  if (j_max < 1) return 0;
  double sum = 0, j = 1;
  const double j_sure = std::floor((mean - kTailSigmas * sd - 0.5) / T);  // terms up to here are ~1
  if (j_sure >= 1) {
    sum = j_sure;
    j = j_sure + 1;
  }
  for (; j <= j_max; ++j) sum += exceeds_probability(trials, p, j * T);
  return sum;
}

// P(c > 0) = 1 - (1 - p)^trials for c ~ Binomial(trials, p), 0 < p < 1.
double nonempty_probability(double trials, double p) { return -std::expm1(trials * std::log1p(-p)); }

// Adds segments whose counts are c ~ Binomial(trials, p) (expected) to `t`. Under uniform routing
// every expert has the same p: the previous segment's terms are reused.
class ExpectedSegments {
 public:
  ExpectedSegments(double trials, std::int64_t wgrad_item_rows) : trials_(trials), wgrad_rows_(wgrad_item_rows) {}

  void add(SegmentTiles& t, double p) {
    t.segments += 1;
    if (p <= 0 || trials_ <= 0) return;
    if (p != last_p_) {
      last_p_ = p;
      last_.nonempty = p >= 1 ? 1 : nonempty_probability(trials_, p);
      for (std::size_t i = 0; i < kSegmentTileRows.size(); ++i) {
        last_.items[i] = expected_items(trials_, p, kSegmentTileRows[i]);
      }
      last_.split_items = wgrad_rows_ > 0 ? expected_split_items(trials_, p, wgrad_rows_) : 0;
    }
    t.nonempty += last_.nonempty;
    for (std::size_t i = 0; i < t.items.size(); ++i) t.items[i] += last_.items[i];
    t.split_items += last_.split_items;
  }

 private:
  double trials_;
  std::int64_t wgrad_rows_;
  double last_p_ = -1;
  SegmentTiles last_;
};

void add_exact_segment(SegmentTiles& t, double count, std::int64_t wgrad_item_rows) {
  t.segments += 1;
  const double c = std::round(count);
  if (c <= 0) return;
  t.nonempty += 1;
  for (std::size_t i = 0; i < kSegmentTileRows.size(); ++i) {
    t.items[i] += std::ceil(c / static_cast<double>(kSegmentTileRows[i]));
  }
  const auto R = static_cast<double>(wgrad_item_rows);
  if (wgrad_item_rows > 0 && c > R) t.split_items += std::ceil(c / R);
}

}  // namespace

double SegmentTiles::items_of(std::int64_t tile_rows) const {
  for (std::size_t i = 0; i < kSegmentTileRows.size(); ++i) {
    if (kSegmentTileRows[i] == tile_rows) return items[i];
  }
  HPSIM_ASSERT(false, "SegmentTiles keeps no items of {} rows", tile_rows);
  return 0;
}

std::int64_t hp_wgrad_item_rows(std::int64_t rows, std::int64_t hidden) {
  constexpr std::int64_t kSms = 132, kMinRows = 256;
  const std::int64_t units = hidden >= 128 ? hidden / 128 : 1;
  const std::int64_t share = (rows * units + 2 * kSms - 1) / (2 * kSms);
  const std::int64_t half_share = (share + kMlpWgradTileRows - 1) / kMlpWgradTileRows * kMlpWgradTileRows;
  return std::clamp(half_share, kMinRows, kHpMlpWgradItemRows);
}

std::int64_t wgrad_item_rows(core::Strategy strategy, std::int64_t rows, std::int64_t hidden) {
  return strategy == core::Strategy::kEp ? kEpMlpWgradItemRows : hp_wgrad_item_rows(rows, hidden);
}

double expected_split_items(double trials, double p, std::int64_t tile_rows) {
  if (p <= 0 || trials <= 0) return 0;
  const double T = static_cast<double>(tile_rows);
  if (p >= 1) return trials > T ? std::ceil(trials / T) : 0;
  return items_past_first(trials, p, T) + exceeds_probability(trials, p, T);
}

double expected_items(double trials, double p, std::int64_t tile_rows) {
  if (p <= 0 || trials <= 0) return 0;
  const double T = static_cast<double>(tile_rows);
  if (p >= 1) return std::ceil(trials / T);  // every trial lands here
  return nonempty_probability(trials, p) + items_past_first(trials, p, T);
}

std::vector<SegmentTiles> segment_tiles(const RoutingWorkload& w, std::int64_t wgrad_item_rows) {
  const std::int64_t W = w.num_ranks, E = w.experts_per_group, G = w.num_groups;
  std::vector<SegmentTiles> out(static_cast<std::size_t>(W));
  HPSIM_ASSERT(w.expert_slots.size() == static_cast<std::size_t>(G * E), "workload has {} expert counts for {} x {}",
               w.expert_slots.size(), G, E);
  const double trials = static_cast<double>(W) * static_cast<double>(w.tokens_per_rank);
  ExpectedSegments expected(trials, wgrad_item_rows);
  if (w.is_expected && w.strategy == core::Strategy::kHp) {
    // Every head has the same probabilities: one head's sum, times the rank's H/W heads.
    SegmentTiles head;
    for (std::int64_t e = 0; e < E; ++e) expected.add(head, w.expert_slots[static_cast<std::size_t>(e)] / trials);
    const double heads = static_cast<double>(G / W);
    for (auto& t : out) {
      t.segments = heads * head.segments;
      t.nonempty = heads * head.nonempty;
      for (std::size_t i = 0; i < t.items.size(); ++i) t.items[i] = heads * head.items[i];
      t.split_items = heads * head.split_items;
    }
    return out;
  }
  for (std::int64_t g = 0; g < G; ++g) {
    for (std::int64_t e = 0; e < E; ++e) {
      SegmentTiles& t = out[static_cast<std::size_t>(w.owner(g, e))];
      const double slots = w.expert_slots[static_cast<std::size_t>(g * E + e)];
      if (w.is_expected) {
        expected.add(t, slots / trials);
      } else {
        add_exact_segment(t, slots, wgrad_item_rows);
      }
    }
  }
  return out;
}

}  // namespace hpsim::model
