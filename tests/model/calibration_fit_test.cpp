#include <gtest/gtest.h>

#include <algorithm>

#include "hpsim/core/rng.h"
#include "hpsim/model/calibration_fit.h"

namespace hpsim::model {
namespace {

TEST(KernelFit, RecoversKnownRatesFromExactPoints) {
  // t = 4 us + flops / 300 TFLOP/s + bytes / 2000 GB/s
  std::vector<core::KernelPoint> pts;
  // Shapes whose FLOPs and bytes vary independently (hidden width f changes the FLOPs per byte),
  // so that the three terms are identifiable.
  for (auto [rows, f] : {std::pair{1e3, 256.0}, {7e3, 64.0}, {3e4, 512.0}, {1.1e5, 128.0}}) {
    const double flops = rows * 2 * 128 * f * 2;
    const double bytes = rows * 128 * 2 * 2 + 5e5;
    pts.push_back({"rows", flops, bytes, 4.0 + flops / 300e12 * 1e6 + bytes / 2000e9 * 1e6});
  }
  auto fit = fit_kernel(pts);
  ASSERT_TRUE(fit) << fit.error().message;
  EXPECT_NEAR(fit->alpha_us, 4.0, 1e-6);
  EXPECT_NEAR(fit->tflops, 300.0, 1e-4);
  EXPECT_NEAR(fit->gbps, 2000.0, 1e-2);
  EXPECT_LT(fit->fit_error, 1e-9);
}

TEST(KernelFit, RooflineRecoversItsRatesFromPointsOnBothSidesOfTheRidge) {
  // t = 3 us + max(flops / 250 TFLOP/s, bytes / 3000 GB/s): compute-bound points (uniform routing,
  // many rows) and byte-bound ones (skewed: few rows, every expert's gradients written).
  std::vector<core::KernelPoint> pts;
  for (auto [flops, bytes] : {std::pair{2e11, 2.4e9}, {2.6e11, 2.8e9}, {3e10, 1.0e9}, {8e10, 1.25e9}, {1.5e11, 1.0e9}}) {
    pts.push_back({"p", flops, bytes, 3.0 + std::max(flops / 250e12, bytes / 3000e9) * 1e6});
  }
  auto fit = fit_kernel_roofline(pts, 3.0);
  ASSERT_TRUE(fit) << fit.error().message;
  EXPECT_TRUE(fit->roofline);
  EXPECT_NEAR(fit->tflops, 250.0, 250.0 * 0.01);  // the searched grid's resolution
  EXPECT_NEAR(fit->gbps, 3000.0, 3000.0 * 0.01);
  EXPECT_LT(fit->fit_error, 0.01);
  for (const auto& p : pts) EXPECT_NEAR(kernel_time_us(*fit, p.flops, p.bytes), p.time_us, 0.01 * p.time_us);
  // The sum form cannot fit these: the byte-bound points take more time per FLOP and per byte.
  auto sum = fit_kernel(pts);
  ASSERT_TRUE(sum);
  EXPECT_GT(sum->fit_error, 5 * fit->fit_error);
  // The expert MLPs are fitted in the roofline form, the other families as sums.
  EXPECT_TRUE(roofline_family("hp_expert_mlp_bwd"));
  EXPECT_TRUE(roofline_family("ep_expert_mlp_fwd"));
  EXPECT_FALSE(roofline_family("hp_router_fwd"));
  EXPECT_FALSE(roofline_family("no_such_family"));
  auto by_family = fit_family("ep_expert_mlp_bwd", pts);
  ASSERT_TRUE(by_family);
  EXPECT_TRUE(by_family->roofline);
  EXPECT_FALSE(fit_family("hp_combine_fwd", pts)->roofline);
  EXPECT_FALSE(fit_kernel_roofline(pts, 1e9));  // alpha above every point's time
  // Points without bytes cannot take the roofline: the family keeps the sum form.
  std::vector<core::KernelPoint> flops_only = {{"a", 1e11, 0, 400}, {"b", 2e11, 0, 800}};
  auto fallback = fit_family("hp_expert_mlp_fwd", flops_only);
  ASSERT_TRUE(fallback) << fallback.error().message;
  EXPECT_FALSE(fallback->roofline);
}

TEST(KernelFit, RecoversTheSelectionRateOfARouter) {
  // A router: t = 10 us + flops / 100 TFLOP/s + selections / 1000 G/s, over E, k and n such that
  // the selections (S E k) and the FLOPs (2 S h E) vary independently; no byte term.
  std::vector<core::KernelPoint> pts;
  for (double E : {768.0, 1536.0}) {
    for (double k : {2.0, 8.0}) {
      for (double S : {32768.0, 131072.0}) {
        const double flops = 2 * S * 128 * E, sel = S * E * k;
        pts.push_back({"router", flops, S * 256, 10.0 + flops / 100e12 * 1e6 + sel / 1000e9 * 1e6, sel});
      }
    }
  }
  auto fit = fit_kernel(pts);
  ASSERT_TRUE(fit) << fit.error().message;
  EXPECT_NEAR(fit->alpha_us, 10.0, 1e-6);
  EXPECT_NEAR(fit->tflops, 100.0, 1e-6);
  EXPECT_NEAR(fit->select_gps, 1000.0, 1e-4);
  EXPECT_EQ(fit->gbps, 0.0);
  EXPECT_LT(fit->fit_error, 1e-9);
  EXPECT_NEAR(kernel_time_us(*fit, 2e9, 0, 3e9), 10.0 + 20.0 + 3000.0, 1e-6);
  // Without selections in the points there is no selection term.
  for (auto& p : pts) p.selections = 0;
  auto plain = fit_kernel(pts);
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->select_gps, 0.0);
  EXPECT_GT(plain->fit_error, 0.05);  // the FLOPs alone cannot explain the k dependence
}

TEST(KernelFit, KeepsRatesNonNegativeOnNoisyMemoryBoundData) {
  // Pure copy-like kernel with 3% noise: the FLOP term must not come out negative.
  core::Rng rng(5);
  std::vector<core::KernelPoint> pts;
  for (double mb : {1.0, 4.0, 16.0, 64.0, 256.0}) {
    const double bytes = mb * 1e6;
    const double t = (2.0 + bytes / 3500e9 * 1e6) * (1.0 + 0.03 * (rng.uniform() - 0.5));
    pts.push_back({"copy", 0.0, bytes, t});
  }
  auto fit = fit_kernel(pts);
  ASSERT_TRUE(fit) << fit.error().message;
  EXPECT_GE(fit->alpha_us, 0.0);
  EXPECT_EQ(fit->tflops, 0.0);
  EXPECT_NEAR(fit->gbps, 3500.0, 200.0);
  EXPECT_LT(fit->fit_error, 0.03);
}

TEST(KernelFit, RejectsPointsThatDoNotScale) {
  std::vector<core::KernelPoint> pts = {{"a", 0, 0, 5.0}, {"b", 0, 0, 5.0}};
  EXPECT_FALSE(fit_kernel(pts));
  EXPECT_FALSE(fit_kernel({}));
}

TEST(CollectiveFit, RecoversAlphaAndEfficiency) {
  // 450 GB/s link at 80% efficiency, 12 us latency.
  std::vector<core::CollectivePoint> pts;
  for (double bytes : {1e5, 1e6, 1e7, 1e8, 1e9}) pts.push_back({4, bytes, 12.0 + bytes / (0.8 * 450e9) * 1e6});
  auto fit = fit_collective(pts, 450.0);
  ASSERT_TRUE(fit) << fit.error().message;
  EXPECT_NEAR(fit->alpha_us, 12.0, 1e-6);
  EXPECT_NEAR(fit->efficiency, 0.8, 1e-9);
  EXPECT_NEAR(collective_time_us(*fit, 5e8, 450.0), 12.0 + 5e8 / (0.8 * 450e9) * 1e6, 1e-6);
}

// Measured time as the lower envelope of two alpha-beta lines (a low-latency protocol for small
// messages, a faster one for large ones): the fit finds both, and the envelope they give.
TEST(CollectiveFit, TakesASecondLineWhenTheLargeMessagesRunFaster) {
  const auto truth = [](double bytes) {
    return std::min(15.0 + bytes / (0.3 * 450e9) * 1e6, 25.0 + bytes / (0.65 * 450e9) * 1e6);
  };
  std::vector<core::CollectivePoint> pts;
  for (double bytes = 16e3; bytes <= 1.1e9; bytes *= 4) pts.push_back({2, bytes, truth(bytes)});
  auto fit = fit_collective(pts, 450.0);
  ASSERT_TRUE(fit) << fit.error().message;
  ASSERT_TRUE(fit->has_large_line());
  EXPECT_NEAR(fit->alpha_us, 15.0, 0.5);
  EXPECT_NEAR(fit->efficiency, 0.3, 0.01);
  EXPECT_NEAR(fit->large_alpha_us, 25.0, 0.5);
  EXPECT_NEAR(fit->large_efficiency, 0.65, 0.01);
  EXPECT_LT(fit->fit_error, 0.01);
  for (double bytes : {5e4, 3e6, 5e8}) EXPECT_NEAR(collective_time_us(*fit, bytes, 450.0), truth(bytes), 0.01 * truth(bytes));
  // A single line cannot follow both ends: at 1 GB it is off by more than a tenth.
  auto single = *fit;
  single.large_alpha_us = single.large_efficiency = 0;
  EXPECT_GT(std::abs(collective_time_us(single, 1e9, 450.0) - truth(1e9)), 0.1 * truth(1e9));
}

// Points on one line with a little noise: no second line (it must earn its place).
TEST(CollectiveFit, KeepsOneLineWhenTheSizesFollowOne) {
  core::Rng rng(5);
  std::vector<core::CollectivePoint> pts;
  for (double bytes = 16e3; bytes <= 1.1e9; bytes *= 4) {
    pts.push_back({2, bytes, (18.0 + bytes / (0.55 * 450e9) * 1e6) * (1.0 + 0.01 * (rng.uniform() - 0.5))});
  }
  auto fit = fit_collective(pts, 450.0);
  ASSERT_TRUE(fit) << fit.error().message;
  EXPECT_FALSE(fit->has_large_line());
  EXPECT_NEAR(fit->efficiency, 0.55, 0.01);
}

TEST(CollectiveFit, NeedsTwoSizesAndAPositiveLink) {
  EXPECT_FALSE(fit_collective({{2, 1e6, 10}}, 450.0));
  EXPECT_FALSE(fit_collective({{2, 1e6, 10}, {2, 1e7, 20}}, 0.0));
}

}  // namespace
}  // namespace hpsim::model
