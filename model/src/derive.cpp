// Profiles derived from a measured one by datasheet ratios (derive.h).
#include "hpsim/model/derive.h"

#include <fmt/format.h>

#include "hpsim/core/validate.h"
#include "hpsim/model/cost.h"

namespace hpsim::model {
namespace {

bool is_router(const std::string& family) { return family.find("router") != std::string::npos; }

}  // namespace

core::Expected<DeviceRatios> datasheet_ratios(const core::Profile& base_sheet, const core::Profile& target_sheet) {
  for (const core::Profile* p : {&base_sheet, &target_sheet}) {
    if (!(p->bf16_tflops > 0)) return core::Error::field(fmt::format("profile \"{}\": bf16_tflops", p->name), "must be > 0");
    if (!(p->fp32_tflops > 0)) return core::Error::field(fmt::format("profile \"{}\": fp32_tflops", p->name), "must be > 0");
    if (!(p->hbm_gbps > 0)) return core::Error::field(fmt::format("profile \"{}\": hbm_gbps", p->name), "must be > 0");
  }
  return DeviceRatios{target_sheet.bf16_tflops / base_sheet.bf16_tflops, target_sheet.fp32_tflops / base_sheet.fp32_tflops,
                      target_sheet.hbm_gbps / base_sheet.hbm_gbps};
}

core::Expected<core::Profile> derive_profile(const core::Profile& base, const core::Profile& base_sheet,
                                             const core::Profile& target_sheet, const std::string& name) {
  if (name.empty()) return core::Error::field("name", "must not be empty");
  const auto missing = missing_profile_entries(base);
  if (!missing.empty()) {
    return core::Error::field(fmt::format("profile \"{}\"", base.name),
                              fmt::format("incomplete, cannot derive from it ({})", missing.front()));
  }
  auto r = datasheet_ratios(base_sheet, target_sheet);
  if (!r) return r.error();
  core::Profile out = base;
  out.name = name;
  out.source = core::ProfileSource::kDerived;
  out.gpu = target_sheet.gpu;
  out.bf16_tflops = base.bf16_tflops * r->bf16;
  out.fp32_tflops = base.fp32_tflops * r->fp32;
  out.hbm_gbps = base.hbm_gbps * r->hbm;
  for (auto& [family, fit] : out.kernels) {
    const double compute = is_router(family) ? r->fp32 : r->bf16;
    fit.tflops *= compute;
    fit.select_gps *= compute;
    fit.gbps *= r->hbm;
    fit.points.clear();
    fit.fit_error = 0;  // no points of this GPU to measure it on
  }
  for (auto& [tier, collectives] : out.collectives) {
    for (auto& [collective, fit] : collectives) {
      fit.points.clear();
      fit.fit_error = 0;
    }
  }
  out.note = fmt::format(
      "DERIVED, not measured: profile \"{}\" ({}, {}) moved to {} by the ratios of the datasheet profiles \"{}\" and \"{}\": "
      "FLOP and selection rates x {:.3f} (routers x {:.3f}, the fp32 ratio), byte rates and the copy ceiling x {:.3f} "
      "(HBM); alpha, collectives (alpha and efficiency of the scenario's links) and the host round trip as measured; "
      "the measured points dropped. Base note: {}",
      base.name, base.gpu, base.date, target_sheet.gpu, base_sheet.name, target_sheet.name, r->bf16, r->fp32, r->hbm,
      base.note);
  if (auto st = core::validate(out); !st) return st.error();
  return out;
}

}  // namespace hpsim::model
