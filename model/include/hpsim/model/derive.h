#pragma once
// A profile for another GPU, derived from a measured one by the ratios of two datasheet profiles
// (docs/model.md, section 6). The measured fits keep their shape (alpha, which terms exist); their
// rates move with the datasheets: FLOP and selection rates by the bf16 ratio (the routers' by the
// fp32 ratio), byte rates and the copy ceiling by the HBM ratio. Collectives keep alpha and
// efficiency (a fraction of the scenario's own link bandwidth), and the host round trip stays. The
// measured points are dropped: they were taken on the base GPU. The result is labelled "derived"
// and its note names the base, the two datasheets and the ratios.

#include <string>

#include "hpsim/core/error.h"
#include "hpsim/core/profile.h"

namespace hpsim::model {

struct DeviceRatios {
  double bf16 = 1;  // target bf16 TFLOP/s over the base's
  double fp32 = 1;
  double hbm = 1;   // target HBM bandwidth over the base's
};

// target / base of the datasheets' ceilings; an error names a ceiling that is not positive.
core::Expected<DeviceRatios> datasheet_ratios(const core::Profile& base_sheet, const core::Profile& target_sheet);

// `base` must be complete (every family and collective the model needs); the result validates.
core::Expected<core::Profile> derive_profile(const core::Profile& base, const core::Profile& base_sheet,
                                             const core::Profile& target_sheet, const std::string& name);

}  // namespace hpsim::model
