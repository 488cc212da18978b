#pragma once
// Fitting measured points to the profile's cost forms (docs/model.md, "Calibration"):
//   kernel:      t = alpha + flops / F + bytes / B + selections / G   (alpha, 1/F, 1/B, 1/G >= 0;
//                the selection term only where points have selections, the routers)
//   collective:  t = alpha + bytes / (efficiency * link)   (alpha >= 0, 0 < efficiency)
// Both are linear in their unknowns; they are solved by non-negative least squares on relative
// residuals ((t_fit - t) / t), so that small and large points weigh alike.

#include <vector>

#include "hpsim/core/error.h"
#include "hpsim/core/profile.h"

namespace hpsim::model {

// Fits a kernel family from its points (at least one). Terms that the data cannot support are
// set to zero (a rate of 0 means "no such term"). fit_error = median |relative residual|.
core::Expected<core::KernelFit> fit_kernel(const std::vector<core::KernelPoint>& points);

// Fits one collective on one tier. `link_gbps` is the tier's per-direction link bandwidth that
// `bytes` (per rank, sent to all peers together) crosses. Points need distinct sizes.
core::Expected<core::CollectiveFit> fit_collective(const std::vector<core::CollectivePoint>& points, double link_gbps);

// Predicted times of the forms above (microseconds).
double kernel_time_us(const core::KernelFit& fit, double flops, double bytes, double selections = 0);
double collective_time_us(const core::CollectiveFit& fit, double bytes, double link_gbps);

}  // namespace hpsim::model
