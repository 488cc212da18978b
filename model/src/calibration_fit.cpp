// Non-negative least squares by enumeration of the active set: with at most four unknowns,
// every subset of free variables is solved in closed form (Eigen's QR) and the best feasible
// one is kept. Exact, deterministic and fast at this size.
#include "hpsim/model/calibration_fit.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <Eigen/Dense>

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

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

}  // namespace

double kernel_time_us(const core::KernelFit& fit, double flops, double bytes, double selections) {
  double t = fit.alpha_us;
  if (fit.tflops > 0) t += flops / (fit.tflops * 1e12) * 1e6;
  if (fit.gbps > 0) t += bytes / (fit.gbps * 1e9) * 1e6;
  if (fit.select_gps > 0) t += selections / (fit.select_gps * 1e9) * 1e6;
  return t;
}

double collective_time_us(const core::CollectiveFit& fit, double bytes, double link_gbps) {
  return fit.alpha_us + bytes / (fit.efficiency * link_gbps * 1e9) * 1e6;
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
  fit.fit_error = median(rel);
  return fit;
}

core::Expected<core::CollectiveFit> fit_collective(const std::vector<core::CollectivePoint>& points, double link_gbps) {
  if (!(link_gbps > 0)) return core::Error::field("link_gbps", "must be > 0");
  if (points.size() < 2) return core::Error::field("points", "need at least two message sizes");
  const auto m = static_cast<Eigen::Index>(points.size());
  Eigen::MatrixXd a(m, 2);
  Eigen::VectorXd b(m);
  for (Eigen::Index i = 0; i < m; ++i) {
    const auto& p = points[static_cast<std::size_t>(i)];
    if (!(p.time_us > 0) || p.bytes < 0) {
      return core::Error::field(fmt::format("points[{}]", i), "needs time_us > 0 and bytes >= 0");
    }
    a(i, 0) = 1.0 / p.time_us;
    a(i, 1) = (p.bytes / 1e9) / p.time_us;  // us per GB
    b(i) = 1.0;
  }
  const NnlsResult r = nnls_small(a, b);
  if (!(r.x(1) > 0)) {
    return core::Error{core::ErrorCode::kInvalidArgument,
                       "points: time does not grow with message size; cannot fit a bandwidth (measure larger sizes)"};
  }
  core::CollectiveFit fit;
  fit.points = points;
  fit.alpha_us = r.x(0);
  const double achieved_gbps = 1e6 / r.x(1);
  fit.efficiency = std::min(1.0, achieved_gbps / link_gbps);
  std::vector<double> rel;
  for (const auto& p : points) {
    rel.push_back(std::abs(collective_time_us(fit, p.bytes, link_gbps) - p.time_us) / p.time_us);
  }
  fit.fit_error = median(rel);
  return fit;
}

}  // namespace hpsim::model
