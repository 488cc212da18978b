#pragma once
// The reports of `hpsim validate` and `hpsim imbalance`: the measured and predicted values of each
// point, turned into the Markdown tables the commands print and into JSON (--json). Pure
// functions of the collected points, so they are tested without a GPU.

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace hpsim::cli {

// (predicted - measured) / measured as "+1.2%", or "n/a" for an infinite error.
std::string pct(double relative_error);

struct ValidationStage {
  std::string phase;  // "fwd" or "bwd"
  std::string stage;
  double predicted_us = 0;  // slowest rank
  double measured_us = 0;   // slowest rank
  double relative_error = 0;
};

struct ValidationPoint {
  std::string strategy;  // "ep" or "hp"
  std::int64_t top_k = 0;
  double skew = 0;
  std::int64_t tokens_per_rank = 0;
  double predicted_us = 0;  // layer total
  double measured_us = 0;
  double relative_error = 0;
  std::vector<ValidationStage> stages;  // the stages found in both timelines
};

struct ValidationReport {
  std::string predictor;  // "simulator" or "analytic model"
  std::string profile;
  int ranks = 0;
  std::vector<ValidationPoint> points;
};

// Median and worst |error|; {0, 0} without values.
struct ErrorSummary {
  double median = 0;
  double worst = 0;
  std::size_t count = 0;
};
ErrorSummary summarize_errors(std::vector<double> abs_errors);

std::string validation_markdown(const ValidationReport& report);
// {"predictor", "profile", "ranks", "points": [{..., "stages": [...]}], "total": {median, worst,
// count}, "stages": {"ep fwd router": {median, worst, count}, ...}}; errors as fractions.
nlohmann::json validation_json(const ValidationReport& report);

struct ImbalancePoint {
  std::string strategy;
  std::int64_t top_k = 0;
  double skew = 0;
  double comm_measured_us = 0;   // all-to-all time of the slowest rank, waiting included
  double comm_predicted_us = 0;
  double layer_measured_us = 0;
  double peak_max_bytes = 0;     // measured peak memory, largest and smallest over ranks
  double peak_min_bytes = 0;
  double peak_predicted_bytes = 0;
};

struct ImbalanceReport {
  std::string predictor;
  std::string profile;
  int ranks = 0;
  std::int64_t tokens_per_rank = 0;
  std::vector<ImbalancePoint> points;
};

std::string imbalance_markdown(const ImbalanceReport& report);
// {"predictor", "profile", "ranks", "tokens_per_rank", "points": [...], "growth": [{strategy,
// top_k, from_skew, to_skew, all_to_all, peak_memory}]}: growth from the smallest to the largest
// skew of the points (a ratio, or null where the smaller value is 0).
nlohmann::json imbalance_json(const ImbalanceReport& report);

}  // namespace hpsim::cli
