// Non-negative least squares by enumeration of the active set: with at most four unknowns,
// every subset of free variables is solved in closed form (Eigen's QR) and the best feasible
// one is kept. Exact, deterministic and fast at this size.
#include "hpsim/model/calibration_fit.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include <Eigen/Dense>

#include "hpsim/core/presets.h"
#include "hpsim/core/stats.h"
#include "hpsim/model/cost.h"
#include "hpsim/model/kernel_families.h"

namespace hpsim::model {
namespace {

struct NnlsResult {
  Eigen::VectorXd x;
  double residual = std::numeric_limits<double>::infinity();
};

// min ||A x - b|| subject to x >= 0, for A with few columns.
NnlsResult nnls_small(const Eigen::MatrixXd& a, const Eigen::VectorXd& b) {
  const int n = static_cast<int>(a.cols());
  NnlsResult best;
  best.x = Eigen::VectorXd::Zero(n);
  best.residual = b.norm();
  for (int mask = 1; mask < (1 << n); ++mask) {
    std::vector<int> cols;
    for (int j = 0; j < n; ++j) {
      if (mask & (1 << j)) cols.push_back(j);
    }
    Eigen::MatrixXd sub(a.rows(), static_cast<Eigen::Index>(cols.size()));
    for (std::size_t c = 0; c < cols.size(); ++c) sub.col(static_cast<Eigen::Index>(c)) = a.col(cols[c]);
    Eigen::VectorXd y = sub.colPivHouseholderQr().solve(b);
    if ((y.array() < 0).any() || !y.allFinite()) continue;
    const double r = (sub * y - b).norm();
    if (r < best.residual * (1 - 1e-12)) {
      best.residual = r;
      best.x = Eigen::VectorXd::Zero(n);
      for (std::size_t c = 0; c < cols.size(); ++c) best.x(cols[c]) = y(static_cast<Eigen::Index>(c));
    }
  }
  return best;
}

}  // namespace

double kernel_time_us(const core::KernelFit& fit, double flops, double bytes, double selections) {
  const double f = fit.tflops > 0 ? flops / (fit.tflops * 1e12) * 1e6 : 0.0;
  const double b = fit.gbps > 0 ? bytes / (fit.gbps * 1e9) * 1e6 : 0.0;
  double t = fit.alpha_us + (fit.roofline ? std::max(f, b) : f + b);
  if (fit.select_gps > 0) t += selections / (fit.select_gps * 1e9) * 1e6;
  return t;
}

namespace {
double line_time_us(double alpha_us, double efficiency, double bytes, double link_gbps) {
  return alpha_us + bytes / (efficiency * link_gbps * 1e9) * 1e6;
}
}  // namespace

bool takes_large_line(const core::CollectiveFit& fit, double bytes, double link_gbps) {
  return fit.has_large_line() && line_time_us(fit.large_alpha_us, fit.large_efficiency, bytes, link_gbps) <
                                     line_time_us(fit.alpha_us, fit.efficiency, bytes, link_gbps);
}

double collective_time_us(const core::CollectiveFit& fit, double bytes, double link_gbps) {
  return takes_large_line(fit, bytes, link_gbps) ? line_time_us(fit.large_alpha_us, fit.large_efficiency, bytes, link_gbps)
                                                 : line_time_us(fit.alpha_us, fit.efficiency, bytes, link_gbps);
}

core::Expected<core::KernelFit> fit_kernel(const std::vector<core::KernelPoint>& points) {
  if (points.empty()) return core::Error::field("points", "need at least one measured point");
  for (std::size_t i = 0; i < points.size(); ++i) {
    const auto& p = points[i];
    if (!(p.time_us > 0) || p.flops < 0 || p.bytes < 0 || p.selections < 0) {
      return core::Error::field(fmt::format("points[{}]", i),
                                "needs time_us > 0 and flops, bytes and selections >= 0");
    }
  }
  // Unknowns in scaled units so the columns are of similar size: alpha [us], us per GFLOP,
  // us per GB, us per G selections (a column only when some point has selections). Rows divided
  // by t: relative residuals.
  const bool selects = std::any_of(points.begin(), points.end(), [](const core::KernelPoint& p) { return p.selections > 0; });
  const auto m = static_cast<Eigen::Index>(points.size());
  Eigen::MatrixXd a(m, selects ? 4 : 3);
  Eigen::VectorXd b(m);
  for (Eigen::Index i = 0; i < m; ++i) {
    const auto& p = points[static_cast<std::size_t>(i)];
    a(i, 0) = 1.0 / p.time_us;
    a(i, 1) = (p.flops / 1e9) / p.time_us;
    a(i, 2) = (p.bytes / 1e9) / p.time_us;
    if (selects) a(i, 3) = (p.selections / 1e9) / p.time_us;
    b(i) = 1.0;
  }
  const NnlsResult r = nnls_small(a, b);
  core::KernelFit fit;
  fit.points = points;
  fit.alpha_us = r.x(0);
  // us per GFLOP -> TFLOP/s: 1 GFLOP in x us is 1e9 / (x * 1e-6) FLOP/s = 1e3 / x TFLOP/s.
  fit.tflops = r.x(1) > 0 ? 1e3 / r.x(1) : 0;
  fit.gbps = r.x(2) > 0 ? 1e6 / r.x(2) : 0;  // 1 GB in x us: 1e6 / x GB/s
  fit.select_gps = selects && r.x(3) > 0 ? 1e6 / r.x(3) : 0;  // 1 G selections in x us: 1e6 / x G/s
  if (fit.tflops <= 0 && fit.gbps <= 0 && fit.select_gps <= 0) {
    return core::Error{core::ErrorCode::kInvalidArgument,
                       "points: time does not grow with FLOPs or bytes; cannot fit a rate (measure larger shapes)"};
  }
  std::vector<double> rel;
  for (const auto& p : points) {
    rel.push_back(std::abs(kernel_time_us(fit, p.flops, p.bytes, p.selections) - p.time_us) / p.time_us);
  }
  fit.fit_error = core::median(rel);
  return fit;
}

core::Expected<core::KernelFit> fit_kernel_roofline(const std::vector<core::KernelPoint>& points, double alpha_us) {
  if (points.empty()) return core::Error::field("points", "need at least one measured point");
  if (!(alpha_us >= 0)) return core::Error::field("alpha_us", "must be >= 0");
  for (std::size_t i = 0; i < points.size(); ++i) {
    const auto& p = points[i];
    if (!(p.time_us > alpha_us) || !(p.flops > 0) || !(p.bytes > 0)) {
      return core::Error::field(fmt::format("points[{}]", i), "needs time_us > alpha and flops, bytes > 0");
    }
  }
  // Times per unit: us per GFLOP (1/F) and us per GB (1/B). A point alone would take all its time
  // on one term, so the bounds cover every point's own rate with a factor 4 on each side.
  double f_lo = 1e300, f_hi = 0, b_lo = 1e300, b_hi = 0;
  for (const auto& p : points) {
    const double fs = (p.time_us - alpha_us) / (p.flops / 1e9), bs = (p.time_us - alpha_us) / (p.bytes / 1e9);
    f_lo = std::min(f_lo, fs / 4), f_hi = std::max(f_hi, fs * 4), b_lo = std::min(b_lo, bs / 4), b_hi = std::max(b_hi, bs * 4);
  }
  auto cost = [&](double fs, double bs) {
    double c = 0;
    for (const auto& p : points) {
      const double t = alpha_us + std::max(fs * p.flops / 1e9, bs * p.bytes / 1e9);
      c += ((t - p.time_us) / p.time_us) * ((t - p.time_us) / p.time_us);
    }
    return c;
  };
  constexpr int kSteps = 96;
  double best = 1e300, best_f = f_lo, best_b = b_lo;
  auto search = [&](double flo, double fhi, double blo, double bhi) {
    for (int i = 0; i < kSteps; ++i) {
      const double fs = flo * std::pow(fhi / flo, i / (kSteps - 1.0));
      for (int j = 0; j < kSteps; ++j) {
        const double bs = blo * std::pow(bhi / blo, j / (kSteps - 1.0));
        const double c = cost(fs, bs);
        if (c < best) best = c, best_f = fs, best_b = bs;
      }
    }
  };
  search(f_lo, f_hi, b_lo, b_hi);
  const double fstep = std::pow(f_hi / f_lo, 1.0 / (kSteps - 1)), bstep = std::pow(b_hi / b_lo, 1.0 / (kSteps - 1));
  search(best_f / fstep, best_f * fstep, best_b / bstep, best_b * bstep);
  core::KernelFit fit;
  fit.points = points;
  fit.roofline = true;
  fit.alpha_us = alpha_us;
  fit.tflops = 1e3 / best_f;
  fit.gbps = 1e6 / best_b;
  std::vector<double> rel;
  for (const auto& p : points) rel.push_back(std::abs(kernel_time_us(fit, p.flops, p.bytes) - p.time_us) / p.time_us);
  fit.fit_error = core::median(rel);
  return fit;
}

bool roofline_family(std::string_view family) {
  for (const auto& info : kKernelFamilies) {
    if (info.name == family) return has_copy_floor(info.family);  // the expert MLPs
  }
  return false;
}

core::Expected<core::KernelFit> fit_family(std::string_view family, const std::vector<core::KernelPoint>& points) {
  auto sum = fit_kernel(points);
  if (!sum || !roofline_family(family)) return sum;
  // The sum form's alpha, kept below half the shortest point so that every point has time left
  // for its FLOP or byte term; points the roofline cannot take (no FLOPs or no bytes) keep the sum.
  double shortest = points.front().time_us;
  for (const auto& p : points) shortest = std::min(shortest, p.time_us);
  auto roof = fit_kernel_roofline(points, std::min(sum->alpha_us, 0.5 * shortest));
  return roof ? roof : sum;
}

double calibration_link_gbps(std::string_view tier) {
  const core::ClusterSpec cluster = core::cluster_preset("h200x8").value();
  return tier == "inter_node" ? cluster.inter_node.bandwidth_gbps : cluster.intra_node.bandwidth_gbps;
}

core::Expected<core::Profile> refit_profile(const core::Profile& profile) {
  core::Profile out = profile;
  for (auto& [family, fit] : out.kernels) {
    if (fit.points.empty()) continue;
    auto refit = fit_family(family, fit.points);
    if (!refit) return core::Error{refit.error().code, family + ": " + refit.error().message};
    fit = *refit;
  }
  for (auto& [tier, by_name] : out.collectives) {
    for (auto& [name, fit] : by_name) {
      if (fit.points.size() < 2) continue;
      auto refit = fit_collective(fit.points, calibration_link_gbps(tier));
      if (!refit) return core::Error{refit.error().code, tier + "." + name + ": " + refit.error().message};
      fit = *refit;
    }
  }
  return out;
}

namespace {

// One alpha-beta line through points (relative residuals, alpha and 1/rate >= 0): alpha_us and
// efficiency in .first / .second; an error when time does not grow with size.
core::Expected<std::pair<double, double>> fit_collective_line(const std::vector<core::CollectivePoint>& points,
                                                              double link_gbps) {
  const auto m = static_cast<Eigen::Index>(points.size());
  Eigen::MatrixXd a(m, 2);
  Eigen::VectorXd b(m);
  for (Eigen::Index i = 0; i < m; ++i) {
    const auto& p = points[static_cast<std::size_t>(i)];
    a(i, 0) = 1.0 / p.time_us;
    a(i, 1) = (p.bytes / 1e9) / p.time_us;  // us per GB
    b(i) = 1.0;
  }
  const NnlsResult r = nnls_small(a, b);
  if (!(r.x(1) > 0)) {
    return core::Error{core::ErrorCode::kInvalidArgument,
                       "points: time does not grow with message size; cannot fit a bandwidth (measure larger sizes)"};
  }
  const double achieved_gbps = 1e6 / r.x(1);
  return std::pair<double, double>{r.x(0), std::min(1.0, achieved_gbps / link_gbps)};
}

double mean_relative_error(const core::CollectiveFit& fit, const std::vector<core::CollectivePoint>& points, double link_gbps) {
  double sum = 0;
  for (const auto& p : points) sum += std::abs(collective_time_us(fit, p.bytes, link_gbps) - p.time_us) / p.time_us;
  return sum / static_cast<double>(points.size());
}

}  // namespace

core::Expected<core::CollectiveFit> fit_collective(const std::vector<core::CollectivePoint>& points, double link_gbps) {
  if (!(link_gbps > 0)) return core::Error::field("link_gbps", "must be > 0");
  if (points.size() < 2) return core::Error::field("points", "need at least two message sizes");
  for (std::size_t i = 0; i < points.size(); ++i) {
    if (!(points[i].time_us > 0) || points[i].bytes < 0) {
      return core::Error::field(fmt::format("points[{}]", i), "needs time_us > 0 and bytes >= 0");
    }
  }
  auto single = fit_collective_line(points, link_gbps);
  if (!single) return single.error();
  core::CollectiveFit fit;
  fit.points = points;
  fit.alpha_us = single->first;
  fit.efficiency = single->second;
  // A second line for the large messages: every split of the sizes into a smaller and a larger
  // group of at least two points each; kept only where one line misses the points by more than
  // timing noise (a mean relative error above 3 %) and the envelope at least halves that error:
  // a real change of regime, not noise fitted.
  const double single_error = mean_relative_error(fit, points, link_gbps);
  if (points.size() >= 4 && single_error > 0.03) {
    std::vector<core::CollectivePoint> sorted = points;
    std::sort(sorted.begin(), sorted.end(), [](const auto& x, const auto& y) { return x.bytes < y.bytes; });
    double best_error = 0.5 * single_error;
    core::CollectiveFit best = fit;
    for (std::size_t split = 2; split + 2 <= sorted.size(); ++split) {
      const std::vector<core::CollectivePoint> small(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(split));
      const std::vector<core::CollectivePoint> large(sorted.begin() + static_cast<std::ptrdiff_t>(split), sorted.end());
      auto lo = fit_collective_line(small, link_gbps);
      auto hi = fit_collective_line(large, link_gbps);
      if (!lo || !hi || !(hi->second > lo->second)) continue;
      core::CollectiveFit two = fit;
      two.alpha_us = lo->first;
      two.efficiency = lo->second;
      two.large_alpha_us = hi->first;
      two.large_efficiency = hi->second;
      const double e = mean_relative_error(two, points, link_gbps);
      if (e < best_error) {
        best_error = e;
        best = two;
      }
    }
    fit = best;
  }
  std::vector<double> rel;
  for (const auto& p : points) {
    rel.push_back(std::abs(collective_time_us(fit, p.bytes, link_gbps) - p.time_us) / p.time_us);
  }
  fit.fit_error = core::median(rel);
  return fit;
}

}  // namespace hpsim::model
