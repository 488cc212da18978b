#pragma once
// Fitting measured points to the profile's cost forms (docs/model.md, "Calibration"):
//   kernel:      t = alpha + flops / F + bytes / B + selections / G   (alpha, 1/F, 1/B, 1/G >= 0;
//                the selection term only where points have selections, the routers)
//   roofline:    t = alpha + max(flops / F, bytes / B) + selections / G   (the expert MLPs)
//   collective:  t = alpha + bytes / (efficiency * link)   (alpha >= 0, 0 < efficiency), or the lower
//                envelope of that and a second line fitted on the larger sizes
// Both are linear in their unknowns; they are solved by non-negative least squares on relative
// residuals ((t_fit - t) / t), so that small and large points weigh alike.

#include <string_view>
#include <vector>

#include "hpsim/core/error.h"
#include "hpsim/core/profile.h"

namespace hpsim::model {

// Fits a kernel family from its points (at least one). Terms that the data cannot support are
// set to zero (a rate of 0 means "no such term"). fit_error = median |relative residual|.
core::Expected<core::KernelFit> fit_kernel(const std::vector<core::KernelPoint>& points);

// The roofline form, alpha given (the sum form's, which holds the launch costs): F and B minimise
// the squared relative residuals (log-spaced search over each, then a finer one around the best).
// The sum form's rates are not physical under skew (a skewed expert MLP backward does 15 % of the
// FLOPs and 41 % of the bytes of a uniform one in 44 % of its time: no non-negative sum fits
// both); the roofline is bound by one term at a time. Needs points with FLOPs and bytes.
core::Expected<core::KernelFit> fit_kernel_roofline(const std::vector<core::KernelPoint>& points, double alpha_us);

// The form a family is fitted in: the roofline for the expert MLPs (`roofline_family`; alpha the
// sum form's, at most half the shortest point; the sum form when the points cannot take the
// roofline), else the sum. Calibration and `refit_profile` use it.
bool roofline_family(std::string_view family);
core::Expected<core::KernelFit> fit_family(std::string_view family, const std::vector<core::KernelPoint>& points);

// Every kernel family of `profile` that has points, fitted again by fit_family, and every
// collective with points by fit_collective against calibration_link_gbps (no GPU needed): a
// profile measured before a change of the forms gets the current ones. Entries without points
// (carried over or derived) are kept.
core::Expected<core::Profile> refit_profile(const core::Profile& profile);

// The per-direction link bandwidth of a tier that calibration divides measured collective rates
// by (the h200x8 cluster preset's), so that a profile's efficiencies and a refit agree.
double calibration_link_gbps(std::string_view tier);

// Fits one collective on one tier. `link_gbps` is the tier's per-direction link bandwidth that
// `bytes` (per rank, sent to all peers together) crosses. Points need distinct sizes. With four
// sizes or more, a second line may be fitted on the larger ones (every split into two groups of
// at least two sizes is tried): it is kept when its rate is higher, the single line's mean
// relative error is above 3 % and the envelope at least halves it, as when NCCL changes protocol
// with size.
// fit_error = median |relative residual| of what is kept.
core::Expected<core::CollectiveFit> fit_collective(const std::vector<core::CollectivePoint>& points, double link_gbps);

// Predicted times of the forms above (microseconds).
double kernel_time_us(const core::KernelFit& fit, double flops, double bytes, double selections = 0);
double collective_time_us(const core::CollectiveFit& fit, double bytes, double link_gbps);
// Whether the fit's large-message line is the faster one at `bytes` (false without such a line):
// the line collective_time_us takes there.
bool takes_large_line(const core::CollectiveFit& fit, double bytes, double link_gbps);

}  // namespace hpsim::model
