#include "gpu_reports.h"

#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>

#include "hpsim/core/stats.h"

namespace hpsim::cli {

std::string pct(double relative_error) {
  if (std::isinf(relative_error)) return "n/a";
  return fmt::format("{:+.1f}%", 100.0 * relative_error);
}

ErrorSummary summarize_errors(std::vector<double> v) {
  ErrorSummary s;
  s.count = v.size();
  if (v.empty()) return s;
  s.median = core::median(v);
  s.worst = *std::max_element(v.begin(), v.end());
  return s;
}

namespace {

// |error| of every point's layer total, and of every (strategy phase stage) over the points.
std::vector<double> total_errors(const ValidationReport& r) {
  std::vector<double> v;
  for (const auto& p : r.points) v.push_back(std::abs(p.relative_error));
  return v;
}

std::map<std::string, std::vector<double>> stage_errors(const ValidationReport& r) {
  std::map<std::string, std::vector<double>> m;
  for (const auto& p : r.points)
    for (const auto& st : p.stages)
      m[fmt::format("{} {} {}", p.strategy, st.phase, st.stage)].push_back(std::abs(st.relative_error));
  return m;
}

nlohmann::json summary_json(const ErrorSummary& s) {
  return {{"median", s.median}, {"worst", s.worst}, {"count", s.count}};
}

// A JSON number, or null for an infinite or NaN value (JSON has neither).
nlohmann::json number(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

struct Growth {
  const ImbalancePoint* from;
  const ImbalancePoint* to;
};

// For each (strategy, k): the point at the smallest skew and the one at the largest.
std::vector<Growth> growths(const ImbalanceReport& r) {
  std::vector<Growth> out;
  if (r.points.empty()) return out;
  double lo = r.points.front().skew, hi = lo;
  for (const auto& p : r.points) {
    lo = std::min(lo, p.skew);
    hi = std::max(hi, p.skew);
  }
  for (const auto& a : r.points) {
    if (a.skew != lo) continue;
    for (const auto& b : r.points)
      if (b.strategy == a.strategy && b.top_k == a.top_k && b.skew == hi) out.push_back({&a, &b});
  }
  return out;
}

nlohmann::json ratio_json(double x, double y) { return y > 0 ? nlohmann::json(x / y) : nlohmann::json(nullptr); }
std::string ratio_text(double x, double y) { return y > 0 ? fmt::format("{:.2f}x", x / y) : std::string("n/a"); }

}  // namespace

std::string validation_markdown(const ValidationReport& r) {
  std::string md = fmt::format("Layer total, predicted ({}, profile {}) against measured, W = {}:\n\n", r.predictor,
                               r.profile, r.ranks);
  md += "| strategy | k | Zipf skew | tokens/rank | predicted us | measured us | error |\n|---|---|---|---|---|---|---|\n";
  for (const auto& p : r.points) {
    md += fmt::format("| {} | {} | {} | {} | {:.1f} | {:.1f} | {} |\n", p.strategy, p.top_k, p.skew, p.tokens_per_rank,
                      p.predicted_us, p.measured_us, pct(p.relative_error));
  }
  const ErrorSummary total = summarize_errors(total_errors(r));
  md += fmt::format("\nMedian |error| of the layer total: {:.1f}%; worst: {:.1f}% ({} points).\n\n", 100 * total.median,
                    100 * total.worst, total.count);
  md += "Per stage (over all points): median and worst |error|:\n\n| stage | median | worst |\n|---|---|---|\n";
  for (const auto& [stage, errs] : stage_errors(r)) {
    const ErrorSummary s = summarize_errors(errs);
    md += fmt::format("| {} | {:.1f}% | {:.1f}% |\n", stage, 100 * s.median, 100 * s.worst);
  }
  return md;
}

nlohmann::json validation_json(const ValidationReport& r) {
  nlohmann::json points = nlohmann::json::array();
  for (const auto& p : r.points) {
    nlohmann::json stages = nlohmann::json::array();
    for (const auto& st : p.stages) {
      stages.push_back({{"phase", st.phase},
                        {"stage", st.stage},
                        {"predicted_us", st.predicted_us},
                        {"measured_us", st.measured_us},
                        {"relative_error", number(st.relative_error)}});
    }
    points.push_back({{"strategy", p.strategy},
                      {"top_k", p.top_k},
                      {"skew", p.skew},
                      {"tokens_per_rank", p.tokens_per_rank},
                      {"predicted_us", p.predicted_us},
                      {"measured_us", p.measured_us},
                      {"relative_error", number(p.relative_error)},
                      {"stages", std::move(stages)}});
  }
  nlohmann::json per_stage = nlohmann::json::object();
  for (const auto& [stage, errs] : stage_errors(r)) per_stage[stage] = summary_json(summarize_errors(errs));
  return {{"predictor", r.predictor},
          {"profile", r.profile},
          {"ranks", r.ranks},
          {"points", std::move(points)},
          {"total", summary_json(summarize_errors(total_errors(r)))},
          {"stages", std::move(per_stage)}};
}

std::string imbalance_markdown(const ImbalanceReport& r) {
  std::string md = fmt::format(
      "All-to-all time of the slowest rank (forward + backward, all collectives of the layer, waiting included) "
      "and peak memory per rank; W = {}, {} tokens per rank, 768 experts owned contiguously; prediction: {}, "
      "profile {}.\n\n",
      r.ranks, r.tokens_per_rank, r.predictor, r.profile);
  md += "| strategy | k | Zipf skew | all-to-all us (measured) | all-to-all us (predicted) | layer us (measured) | "
        "peak GB, max rank | peak GB, min rank | peak GB, predicted max |\n|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& p : r.points) {
    md += fmt::format("| {} | {} | {} | {:.1f} | {:.1f} | {:.1f} | {:.3f} | {:.3f} | {:.3f} |\n", p.strategy, p.top_k, p.skew,
                      p.comm_measured_us, p.comm_predicted_us, p.layer_measured_us, p.peak_max_bytes / 1e9,
                      p.peak_min_bytes / 1e9, p.peak_predicted_bytes / 1e9);
  }
  md += "\nGrowth from uniform routing to the strongest skew (measured):\n\n| strategy | k | all-to-all | peak memory, max rank |\n|---|---|---|---|\n";
  for (const auto& g : growths(r)) {
    md += fmt::format("| {} | {} | {} | {} |\n", g.from->strategy, g.from->top_k,
                      ratio_text(g.to->comm_measured_us, g.from->comm_measured_us),
                      ratio_text(g.to->peak_max_bytes, g.from->peak_max_bytes));
  }
  return md;
}

nlohmann::json imbalance_json(const ImbalanceReport& r) {
  nlohmann::json points = nlohmann::json::array();
  for (const auto& p : r.points) {
    points.push_back({{"strategy", p.strategy},
                      {"top_k", p.top_k},
                      {"skew", p.skew},
                      {"all_to_all_measured_us", p.comm_measured_us},
                      {"all_to_all_predicted_us", p.comm_predicted_us},
                      {"layer_measured_us", p.layer_measured_us},
                      {"peak_bytes_max_rank", p.peak_max_bytes},
                      {"peak_bytes_min_rank", p.peak_min_bytes},
                      {"peak_bytes_predicted", p.peak_predicted_bytes}});
  }
  nlohmann::json growth = nlohmann::json::array();
  for (const auto& g : growths(r)) {
    growth.push_back({{"strategy", g.from->strategy},
                      {"top_k", g.from->top_k},
                      {"from_skew", g.from->skew},
                      {"to_skew", g.to->skew},
                      {"all_to_all", ratio_json(g.to->comm_measured_us, g.from->comm_measured_us)},
                      {"peak_memory", ratio_json(g.to->peak_max_bytes, g.from->peak_max_bytes)}});
  }
  return {{"predictor", r.predictor},
          {"profile", r.profile},
          {"ranks", r.ranks},
          {"tokens_per_rank", r.tokens_per_rank},
          {"points", std::move(points)},
          {"growth", std::move(growth)}};
}

}  // namespace hpsim::cli
