#pragma once
// Profile: what calibration measured on one GPU type and interconnect (or, labelled as such,
// what a datasheet promises). The model and the simulator read time from here.
//
// Kernel time:      t = alpha + flops / (tflops * 1e12) + bytes / (gbps * 1e9)
//                         + selections / (select_gps * 1e9)
//                   (a rate of 0 switches its term off; selections are the routers' top-k
//                   candidate tests, one per (score, slot): docs/model.md)
// Collective time:  t = alpha + algbw-bytes / (efficiency * link bandwidth of the tier), or, when
//                   the fit has a large-message line, the smaller of that and
//                   large_alpha + algbw-bytes / (large_efficiency * link bandwidth)
// docs/model.md states both with their symbols.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace hpsim::core {

enum class ProfileSource { kDatasheet, kMeasured, kDerived };
const char* to_string(ProfileSource v);

struct KernelPoint {
  std::string shape;    // human-readable, e.g. "rows=32768 h=128 f=256"
  double flops = 0;
  double bytes = 0;
  double time_us = 0;     // measured median
  double selections = 0;  // top-k candidate tests (routers only; 0 elsewhere)
};

struct KernelFit {
  double alpha_us = 0;  // fixed cost per launch sequence
  double tflops = 0;    // achieved rate of the FLOP term (TFLOP/s), 0 = no FLOP term
  double gbps = 0;      // achieved rate of the byte term (GB/s), 0 = no byte term
  double fit_error = 0; // median relative error of the fit over the points
  std::vector<KernelPoint> points;
  double select_gps = 0;  // achieved rate of the selection term (G tests/s), 0 = no selection term
  // The form of the FLOP and byte terms: false, their sum (flops / F + bytes / B); true, a roofline
  // (max(flops / F, bytes / B): the kernel is bound by one or the other). JSON: "form": "roofline".
  bool roofline = false;
};

struct CollectivePoint {
  std::int64_t num_ranks = 0;
  double bytes = 0;     // bytes each rank sends (all peers together)
  double time_us = 0;
};

struct CollectiveFit {
  double alpha_us = 0;    // latency term
  double efficiency = 0;  // achieved fraction of the tier's link bandwidth (over every size, or the
                          // smaller sizes when there is a large-message line)
  double fit_error = 0;
  std::vector<CollectivePoint> points;
  // Optional second line for large messages (NCCL picks its protocol and algorithm by size, each
  // with its own latency and rate, so measured time is the lower envelope of lines): 0 = none.
  double large_alpha_us = 0;
  double large_efficiency = 0;
  bool has_large_line() const { return large_efficiency > 0; }
};

// Host round trip assumed when a profile does not give one: a device-to-host copy of a few bytes
// and a stream synchronisation, typical of a PCIe-attached GPU (not measured; docs/calibration.md).
inline constexpr double kDefaultHostSyncUs = 10.0;

struct Profile {
  std::string name;
  ProfileSource source = ProfileSource::kDatasheet;
  std::string note;        // provenance: who measured, with what command, or which datasheet
  std::string gpu;         // e.g. "NVIDIA H200"
  std::string date;        // ISO date of the measurement
  std::map<std::string, std::string> versions;  // driver, cuda, nccl, ...
  double bf16_tflops = 0;  // dense bf16 GEMM ceiling
  double fp32_tflops = 0;  // plain fp32 ceiling
  double hbm_gbps = 0;     // device copy ceiling, bytes read + written
  // Host round trip: a device-to-host copy of a few bytes and a stream synchronisation (EP's
  // metadata stage waits for it before it can size the receive buffers). Optional in JSON.
  double host_sync_us = kDefaultHostSyncUs;
  // Per kernel family (names in docs/model.md), e.g. "hp_router_fwd", "expert_mlp_fwd".
  std::map<std::string, KernelFit> kernels;
  // Per link tier ("intra_node", "inter_node"), per collective ("all_to_all", "all_reduce", ...).
  std::map<std::string, std::map<std::string, CollectiveFit>> collectives;
};

}  // namespace hpsim::core
