#pragma once
// The calibration runner behind `hpsim calibrate`: on the GPUs at hand it runs both layers'
// kernels (through the executor, at a sweep of shapes), the NCCL collectives over message sizes
// (when there are two or more GPUs) and the two ceilings (device copy, dense bf16 GEMM), pairs
// every measured stage with the FLOPs and bytes the model counts for it, and fits the profile's
// cost forms (model/calibration_fit.h). What one node cannot measure (the inter-node tier; every
// collective when there is one GPU; the fp32 ceiling) is carried over from a base profile and
// named in the profile's note.

#include <functional>
#include <string>
#include <vector>

#include "hpsim/core/error.h"
#include "hpsim/core/profile.h"

namespace hpsim::exec {

struct CalibrateOptions {
  bool quick = false;           // fewer shapes and sizes (about a minute)
  bool collectives_only = false;  // measure the intra-node collectives only; the rest is `base`'s
  std::vector<int> devices;     // empty = every visible GPU
  core::Profile base;           // source of what cannot be measured here
  std::string command;          // recorded in the note
  // done, total, what is running now
  std::function<void(int, int, const std::string&)> progress;
};

core::Expected<core::Profile> calibrate(const CalibrateOptions& options);

}  // namespace hpsim::exec
