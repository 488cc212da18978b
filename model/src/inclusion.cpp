// Inclusion probabilities of successive sampling (k distinct draws without replacement, each draw
// proportional to weight among the items left).
//
// Exponential-race view: give item j an arrival time T_j ~ Exp(w_j), independent. The order of
// arrival is exactly successive sampling, so item i is among the first k iff fewer than k of the
// others arrive before T_i:
//
//   pi_i = integral_0^inf  w_i e^{-w_i t} P(N_{-i}(t) <= k - 1) dt,
//   N_{-i}(t) = number of j != i with T_j < t, a Poisson-binomial count with p_j(t) = 1 - e^{-w_j t}.
//
// For each quadrature node t the truncated generating polynomials prod_j (q_j + p_j z) (first k
// coefficients) are built as prefix and suffix products, so that "all but i" is one O(k) product
// per item: O(nodes * E * k) in all, no division (stable). The integral runs over geometric
// panels [t_max / 2^(j+1), t_max / 2^j] (Gauss-Legendre on each), which resolve both the hot
// items' scale 1 / w_max and the cold items' scale, down to a first panel [0, t0] where every
// integrand is nearly constant; t_max is where P(N(t) <= k) has fallen below 1e-15, which bounds
// the neglected tail. docs/model.md states the method; tests compare it with exact enumeration
// (small cases) and with sampling.
#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <mutex>
#include <numeric>
#include <tuple>

#include "hpsim/model/workload.h"

namespace hpsim::model {
namespace {

// 16-point Gauss-Legendre on [-1, 1] (nodes x_i > 0; the rule is symmetric).
constexpr std::array<double, 8> kGlX = {0.0950125098376374, 0.2816035507792589, 0.4580167776572274,
                                        0.6178762444026438, 0.7554044083550030, 0.8656312023878318,
                                        0.9445750230732326, 0.9894009349916499};
constexpr std::array<double, 8> kGlW = {0.1894506104550685, 0.1826034150449236, 0.1691565193950025,
                                        0.1495959888165767, 0.1246289712555339, 0.0951585116824928,
                                        0.0622535239386479, 0.0271524594117541};

constexpr double kTailBound = 1e-15;

// P(N(t) <= k) for the count of all items arrived by t.
double prob_at_most(const std::vector<double>& w, std::int64_t k, double t, std::vector<double>& poly) {
  const auto kk = static_cast<std::size_t>(k + 1);
  poly.assign(kk, 0.0);
  poly[0] = 1.0;
  for (double wj : w) {
    const double q = std::exp(-wj * t);
    const double p = -std::expm1(-wj * t);
    for (std::size_t m = kk - 1; m > 0; --m) poly[m] = q * poly[m] + p * poly[m - 1];
    poly[0] *= q;
  }
  return std::accumulate(poly.begin(), poly.end(), 0.0);
}

}  // namespace

std::vector<double> zipf_weights(std::int64_t num_experts, double skew) {
  HPSIM_ASSERT(num_experts > 0, "zipf_weights needs num_experts > 0, got {}", num_experts);
  std::vector<double> w(static_cast<std::size_t>(num_experts));
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = std::pow(static_cast<double>(i + 1), -skew);
  return w;
}

std::vector<double> inclusion_probabilities(const std::vector<double>& weights, std::int64_t k) {
  const auto n = static_cast<std::int64_t>(weights.size());
  HPSIM_ASSERT(n > 0 && k > 0 && k <= n, "inclusion_probabilities needs 0 < k <= items, got k={} items={}", k, n);
  double total = 0;
  double w_max = 0;
  double w_min = weights.front();
  for (double w : weights) {
    HPSIM_ASSERT(w > 0 && std::isfinite(w), "inclusion_probabilities needs positive finite weights, got {}", w);
    total += w;
    w_max = std::max(w_max, w);
    w_min = std::min(w_min, w);
  }
  const auto un = static_cast<std::size_t>(n);
  if (k == n) return std::vector<double>(un, 1.0);
  if (w_max == w_min) return std::vector<double>(un, static_cast<double>(k) / static_cast<double>(n));

  std::vector<double> w(un);
  for (std::size_t i = 0; i < un; ++i) w[i] = weights[i] / total;
  w_max /= total;

  // t_max: the probability that k or fewer items have arrived by t_max bounds the neglected tail.
  std::vector<double> scratch;
  double t_max = static_cast<double>(k);
  for (int i = 0; i < 2000 && prob_at_most(w, k, t_max, scratch) > kTailBound; ++i) t_max *= 2.0;

  // Panels: [t_max/2, t_max], [t_max/4, t_max/2], ... down to t0 with w_max * t0 <= 1e-3, then [0, t0].
  std::vector<std::pair<double, double>> panels;
  double hi = t_max;
  while (hi * w_max > 1e-3 && panels.size() < 200) {
    panels.emplace_back(hi / 2, hi);
    hi /= 2;
  }
  panels.emplace_back(0.0, hi);

  const auto kk = static_cast<std::size_t>(k);
  // prefix[i] = first k coefficients of prod_{j < i} (q_j + p_j z);
  // suffix_cum[i][m] = sum_{b <= m} of the coefficients of prod_{j >= i} (q_j + p_j z).
  std::vector<double> prefix((un + 1) * kk);
  std::vector<double> suffix((un + 1) * kk);
  std::vector<double> q(un);
  std::vector<double> p(un);
  std::vector<double> pi(un, 0.0);

  for (const auto& [a, b] : panels) {
    const double mid = 0.5 * (a + b);
    const double half = 0.5 * (b - a);
    for (std::size_t node = 0; node < 2 * kGlX.size(); ++node) {
      const std::size_t g = node % kGlX.size();
      const double t = node < kGlX.size() ? mid - half * kGlX[g] : mid + half * kGlX[g];
      const double omega = half * kGlW[g];
      for (std::size_t j = 0; j < un; ++j) {
        q[j] = std::exp(-w[j] * t);
        p[j] = -std::expm1(-w[j] * t);
      }
      std::fill(prefix.begin(), prefix.begin() + static_cast<std::ptrdiff_t>(kk), 0.0);
      prefix[0] = 1.0;
      for (std::size_t j = 0; j < un; ++j) {
        const double* in = &prefix[j * kk];
        double* out = &prefix[(j + 1) * kk];
        out[0] = q[j] * in[0];
        for (std::size_t m = 1; m < kk; ++m) out[m] = q[j] * in[m] + p[j] * in[m - 1];
      }
      // Suffix products, plain coefficients first.
      std::fill(suffix.begin() + static_cast<std::ptrdiff_t>(un * kk), suffix.end(), 0.0);
      suffix[un * kk] = 1.0;
      for (std::size_t j = un; j-- > 0;) {
        const double* in = &suffix[(j + 1) * kk];
        double* out = &suffix[j * kk];
        out[0] = q[j] * in[0];
        for (std::size_t m = 1; m < kk; ++m) out[m] = q[j] * in[m] + p[j] * in[m - 1];
      }
      for (std::size_t i = 0; i < un; ++i) {
        // P(N_{-i} <= k-1) = sum_{a + b <= k-1} prefix[i][a] * suffix[i+1][b].
        const double* pre = &prefix[i * kk];
        const double* suf = &suffix[(i + 1) * kk];
        double cum = 0;
        double s = 0;
        for (std::size_t m = 0; m < kk; ++m) {
          cum += suf[m];                 // sum_{b <= m} suf[b]
          s += pre[kk - 1 - m] * cum;    // a = k-1-m pairs with every b <= m
        }
        pi[i] += omega * w[i] * q[i] * s;
      }
    }
  }
  // The quadrature leaves an error of order 1e-12 relative; spread it so that sum(pi) = k exactly.
  const double sum = std::accumulate(pi.begin(), pi.end(), 0.0);
  for (double& v : pi) v = std::min(1.0, v * static_cast<double>(k) / sum);
  return pi;
}

const std::vector<double>& zipf_inclusion(std::int64_t num_experts, std::int64_t k, double skew) {
  static std::mutex mutex;
  static std::map<std::tuple<std::int64_t, std::int64_t, double>, std::vector<double>> cache;
  const auto key = std::make_tuple(num_experts, k, skew);
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find(key);
  if (it == cache.end()) {
    it = cache.emplace(key, inclusion_probabilities(zipf_weights(num_experts, skew), k)).first;
  }
  return it->second;
}

}  // namespace hpsim::model
