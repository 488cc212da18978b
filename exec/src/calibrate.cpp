#include "hpsim/exec/calibrate.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <map>
#include <numeric>
#include <thread>

#include <cuda_runtime.h>

#include "hpsim/core/presets.h"
#include "hpsim/exec/calibration_points.h"
#include "hpsim/exec/executor.h"
#include "hpsim/kernels/comm.h"
#include "hpsim/kernels/cuda_check.h"
#include "hpsim/kernels/dense.h"
#include "hpsim/model/calibration_fit.h"

namespace hpsim::exec {
namespace {

std::string today() {
  const std::time_t t = std::time(nullptr);
  char buf[16];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d", std::gmtime(&t));
  return buf;
}

// The upper middle value (an even count of timings takes the larger of the two, a measured time).
double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

// Median over 10 runs (after 3 warm-ups) of fn() timed with CUDA events on the default stream.
template <typename Fn>
core::Expected<double> median_event_ms(Fn&& fn) {
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  std::vector<double> t;
  core::Status st;
  for (int i = 0; i < 13 && st; ++i) {
    cudaEventRecord(start);
    st = fn();
    cudaEventRecord(stop);
    cudaEventSynchronize(stop);
    float ms = 0;
    cudaEventElapsedTime(&ms, start, stop);
    if (i >= 3) t.push_back(static_cast<double>(ms));
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  if (!st) return st.error();
  return median_of(t);
}

// Device-to-device copy bandwidth (bytes read + written per second), median of 10.
core::Expected<double> measure_copy_gbps(int device) {
  HPSIM_CUDA_TRY(cudaSetDevice(device));
  const std::size_t bytes = std::size_t{2} << 30;
  void *a = nullptr, *b = nullptr;
  HPSIM_CUDA_TRY(cudaMalloc(&a, bytes));
  if (cudaError_t e = cudaMalloc(&b, bytes); e != cudaSuccess) {
    cudaFree(a);
    HPSIM_CUDA_TRY(e);
  }
  cudaMemset(a, 1, bytes);
  const double ms = median_event_ms([&] {
    cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice);
    return core::Status::ok();
  }).value();
  cudaFree(a);
  cudaFree(b);
  HPSIM_CUDA_TRY(cudaGetLastError());
  return 2.0 * static_cast<double>(bytes) / (ms * 1e-3) / 1e9;
}

// Host round trip of EP's metadata stage: a device-to-host copy of a few bytes into pageable host
// memory (as the layer's counts are) and a stream synchronisation, timed on the host; median of
// 200 after 20 warm-ups, in microseconds.
core::Expected<double> measure_host_sync_us(int device) {
  HPSIM_CUDA_TRY(cudaSetDevice(device));
  cudaStream_t stream = nullptr;
  HPSIM_CUDA_TRY(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  void* counts = nullptr;
  if (cudaError_t e = cudaMalloc(&counts, 256); e != cudaSuccess) {
    cudaStreamDestroy(stream);
    HPSIM_CUDA_TRY(e);
  }
  std::vector<std::int32_t> host(16, 0);
  std::vector<double> t;
  cudaError_t status = cudaMemsetAsync(counts, 0, 256, stream);
  for (int i = 0; i < 220 && status == cudaSuccess; ++i) {
    const auto start = std::chrono::steady_clock::now();
    status = cudaMemcpyAsync(host.data(), counts, host.size() * sizeof(std::int32_t), cudaMemcpyDeviceToHost, stream);
    if (status == cudaSuccess) status = cudaStreamSynchronize(stream);
    const auto stop = std::chrono::steady_clock::now();
    if (i >= 20) t.push_back(std::chrono::duration<double, std::micro>(stop - start).count());
  }
  cudaFree(counts);
  cudaStreamDestroy(stream);
  HPSIM_CUDA_TRY(status);
  return median_of(t);
}

// Dense bf16 GEMM rate at 8192^3 through the project's cuBLAS launcher, on random data.
core::Expected<double> measure_gemm_tflops(int device) {
  HPSIM_CUDA_TRY(cudaSetDevice(device));
  const std::int64_t m = 8192;
  auto ctx = kernels::create_dense_context();
  if (!ctx) return ctx.error();
  std::vector<kernels::Bf16> host(static_cast<std::size_t>(m * m));
  std::uint32_t state = 12345;
  for (auto& v : host) {
    state = state * 1664525u + 1013904223u;
    v = kernels::to_bf16(static_cast<float>(state >> 8) / 16777216.0f - 0.5f);
  }
  kernels::Bf16 *x = nullptr, *w = nullptr, *y = nullptr;
  void* ws = nullptr;
  const std::size_t bytes = host.size() * 2;
  HPSIM_CUDA_TRY(cudaMalloc(&x, bytes));
  HPSIM_CUDA_TRY(cudaMalloc(&w, bytes));
  HPSIM_CUDA_TRY(cudaMalloc(&y, bytes));
  kernels::DenseForwardArgs args{ctx->get(), x, w, y, m, m, m};
  const std::int64_t ws_bytes = kernels::workspace_bytes(args);
  HPSIM_CUDA_TRY(cudaMalloc(&ws, static_cast<std::size_t>(std::max<std::int64_t>(ws_bytes, 256))));
  cudaMemcpy(x, host.data(), bytes, cudaMemcpyHostToDevice);
  cudaMemcpy(w, host.data(), bytes, cudaMemcpyHostToDevice);
  auto ms = median_event_ms([&] { return kernels::launch(args, ws, nullptr); });
  cudaFree(x);
  cudaFree(w);
  cudaFree(y);
  cudaFree(ws);
  if (!ms) return ms.error();
  return 2.0 * static_cast<double>(m * m * m) / (*ms * 1e-3) / 1e12;
}

// One collective over message sizes on every GPU (one thread each): the slowest rank's median.
core::Expected<std::vector<core::CollectivePoint>> measure_collective(const std::string& name,
                                                                     const std::vector<int>& devices,
                                                                     const std::vector<std::int64_t>& sizes) {
  const int w = static_cast<int>(devices.size());
  auto comms = kernels::create_local_communicators(devices, kernels::CommOptions{std::chrono::seconds(60)});
  if (!comms) return comms.error();
  std::vector<std::vector<double>> per_rank(static_cast<std::size_t>(w));
  std::vector<core::Status> status(static_cast<std::size_t>(w));
  std::vector<std::thread> threads;
  for (int r = 0; r < w; ++r) {
    threads.emplace_back([&, r] {
      const auto i = static_cast<std::size_t>(r);
      auto& comm = *(*comms)[i];
      auto run = [&]() -> core::Status {
        HPSIM_CUDA_TRY(cudaSetDevice(comm.device()));
        const std::int64_t largest = *std::max_element(sizes.begin(), sizes.end());
        void *send = nullptr, *recv = nullptr;
        HPSIM_CUDA_TRY(cudaMalloc(&send, static_cast<std::size_t>(largest * w)));
        HPSIM_CUDA_TRY(cudaMalloc(&recv, static_cast<std::size_t>(largest * w)));
        cudaMemset(send, 1, static_cast<std::size_t>(largest * w));
        cudaStream_t stream;
        HPSIM_CUDA_TRY(cudaStreamCreate(&stream));
        cudaEvent_t start, stop;
        cudaEventCreate(&start);
        cudaEventCreate(&stop);
        for (std::int64_t bytes : sizes) {
          std::vector<double> t;
          for (int it = 0; it < 8; ++it) {
            HPSIM_TRY(comm.all_reduce_sum(recv, recv, 1, kernels::Communicator::ReduceType::kF32, stream));
            cudaEventRecord(start, stream);
            if (name == "all_to_all" || name == "all_to_all_v") {
              HPSIM_TRY(comm.all_to_all(send, recv, bytes, stream));  // bytes per peer
            } else if (name == "all_gather") {
              HPSIM_TRY(comm.all_gather(send, recv, bytes, stream));
            } else {
              HPSIM_TRY(comm.all_reduce_sum(send, recv, bytes / 2, kernels::Communicator::ReduceType::kBf16, stream));
            }
            cudaEventRecord(stop, stream);
            HPSIM_TRY(comm.wait(stream, name));
            float ms = 0;
            cudaEventElapsedTime(&ms, start, stop);
            if (it >= 2) t.push_back(static_cast<double>(ms) * 1e3);
          }
          per_rank[i].push_back(median_of(t));
        }
        cudaEventDestroy(start);
        cudaEventDestroy(stop);
        cudaStreamDestroy(stream);
        cudaFree(send);
        cudaFree(recv);
        return core::Status::ok();
      };
      status[i] = run();
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& s : status) {
    if (!s) return s.error();
  }
  std::vector<core::CollectivePoint> points;
  for (std::size_t j = 0; j < sizes.size(); ++j) {
    double slowest = 0;
    for (const auto& r : per_rank) slowest = std::max(slowest, r[j]);
    // Bytes each rank sends over links: all-to-all (W-1) blocks; all-gather the same; all-reduce
    // (ring) 2 (W-1)/W of the buffer (the busbw convention).
    double sent = static_cast<double>(sizes[j]) * (w - 1);
    if (name == "all_reduce") sent = 2.0 * static_cast<double>(sizes[j]) * (w - 1) / w;
    points.push_back({w, sent, slowest});
  }
  return points;
}

}  // namespace

core::Expected<core::Profile> calibrate(const CalibrateOptions& options) {
  const int visible = kernels::visible_device_count();
  if (visible == 0) return core::Error{core::ErrorCode::kNoDevice, "calibrate needs a GPU and none is visible"};
  std::vector<int> devices = options.devices;
  if (devices.empty()) {
    devices.resize(static_cast<std::size_t>(visible));
    std::iota(devices.begin(), devices.end(), 0);
  }
  const int w = static_cast<int>(devices.size());
  cudaDeviceProp prop{};
  HPSIM_CUDA_TRY(cudaGetDeviceProperties(&prop, devices[0]));
  int driver = 0, runtime = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);

  // The layer shapes: the paper's widths at a sweep of tokens and top-k, plus the granular E/f,
  // each under uniform and Zipf(1) routing: skew changes the expert MLPs' segments (few long, many
  // empty) and so the mix of their FLOPs and weight bytes, which uniform routing alone keeps fixed.
  std::vector<CalibrationShape> shapes;
  const std::vector<std::int64_t> tokens = options.quick ? std::vector<std::int64_t>{4096, 16384}
                                                         : std::vector<std::int64_t>{2048, 8192, 32768};
  const std::vector<std::int64_t> ks = options.quick ? std::vector<std::int64_t>{2, 8} : std::vector<std::int64_t>{1, 4, 8};
  for (const char* model : {"paper-4.2b", "paper-4.2b-g"}) {
    for (auto n : tokens) {
      for (auto k : ks) {
        for (double skew : {0.0, 1.0}) shapes.push_back({model, n, k, skew});
      }
    }
  }
  // Bytes per peer, up to what a layer sends at the largest shapes (EP at 65,536 tokens, k = 8:
  // about 1 GB per rank): NCCL's rate keeps growing past 64 MB, and four sizes or more let the fit
  // take a second line for the large messages (model::fit_collective).
  const std::vector<std::int64_t> sizes =
      options.quick ? std::vector<std::int64_t>{1 << 16, 1 << 20, 1 << 24, 1 << 28}
                    : std::vector<std::int64_t>{1 << 14, 1 << 16, 1 << 18, 1 << 20, 1 << 22, 1 << 24, 1 << 26, 1 << 28, 1 << 30};
  const std::vector<std::string> collectives = {"all_to_all", "all_to_all_v", "all_gather", "all_reduce"};
  const int total = options.collectives_only
                        ? static_cast<int>(collectives.size())
                        : 3 + static_cast<int>(shapes.size()) * 2 + (w > 1 ? static_cast<int>(collectives.size()) : 0);
  int done = 0;
  auto step = [&](const std::string& what) {
    if (options.progress) options.progress(done, total, what);
  };
  // Every collective over the sizes on the local GPUs, fitted against the calibration link of the
  // intra-node tier (model::calibration_link_gbps).
  const double link = model::calibration_link_gbps("intra_node");
  auto measure_collectives = [&](core::Profile& out) -> core::Status {
    for (const auto& name : collectives) {
      step(name + " over message sizes");
      auto pts = measure_collective(name, devices, sizes);
      if (!pts) return pts.error();
      auto fit = model::fit_collective(*pts, link);
      if (!fit) return core::Error{fit.error().code, name + ": " + fit.error().message};
      out.collectives["intra_node"][name] = *fit;
      ++done;
    }
    return core::Status::ok();
  };

  core::Profile profile;
  profile.source = core::ProfileSource::kMeasured;
  profile.gpu = prop.name;
  profile.date = today();
  profile.name = fmt::format("h200x{}-measured", w);
  if (std::string(prop.name).find("H200") == std::string::npos) profile.name = fmt::format("gpu-x{}-measured", w);
  profile.versions["cuda_runtime"] = fmt::format("{}.{}", runtime / 1000, (runtime % 1000) / 10);
  profile.versions["cuda_driver"] = fmt::format("{}.{}", driver / 1000, (driver % 1000) / 10);
  profile.versions["nccl"] = kernels::nccl_version();
  profile.fp32_tflops = options.base.fp32_tflops;

  if (options.collectives_only) {
    if (w < 2) {
      return core::Error{core::ErrorCode::kInvalidArgument,
                         "--collectives-only measures the links between GPUs and this node has one visible GPU"};
    }
    // The base (a profile measured on this kind of GPU) keeps its name, kernels, ceilings, other
    // tiers, date and versions; its intra-node collectives are measured again, and the note and
    // `versions.nccl_collectives` say when and with which NCCL.
    if (options.base.source != core::ProfileSource::kMeasured) {
      return core::Error::field("--base", fmt::format("--collectives-only keeps the kernels of the base, which must be a "
                                                      "measured profile; \"{}\" is {}",
                                                      options.base.name, core::to_string(options.base.source)));
    }
    if (options.base.gpu != prop.name) {
      return core::Error::field("--base", fmt::format("--collectives-only: the base was measured on {}, this node has {}",
                                                      options.base.gpu, prop.name));
    }
    core::Profile out = options.base;
    out.versions["nccl_collectives"] = kernels::nccl_version();
    HPSIM_TRY(measure_collectives(out));
    step("done");
    out.note += fmt::format(
        " Collectives (intra_node) measured again by `{}` on {} x {} ({}), {} sizes from {} KB to {} MB per peer, "
        "efficiency relative to {} GB/s per direction.",
        options.command, w, prop.name, profile.date, sizes.size(), sizes.front() / 1024, sizes.back() >> 20, link);
    return out;
  }

  step("device copy bandwidth");
  auto copy = measure_copy_gbps(devices[0]);
  if (!copy) return copy.error();
  profile.hbm_gbps = *copy;
  ++done;
  step("dense bf16 GEMM 8192^3");
  auto gemm = measure_gemm_tflops(devices[0]);
  if (!gemm) return gemm.error();
  profile.bf16_tflops = *gemm;
  ++done;
  step("host round trip (device-to-host copy and synchronisation)");
  auto host_sync = measure_host_sync_us(devices[0]);
  if (!host_sync) return host_sync.error();
  profile.host_sync_us = *host_sync;
  ++done;

  std::map<std::string, std::vector<core::KernelPoint>> points;
  for (const auto& shape : shapes) {
    for (core::Strategy strategy : {core::Strategy::kHp, core::Strategy::kEp}) {
      auto scenario = calibration_scenario(shape, strategy, w);
      if (!scenario) return scenario.error();
      const core::Scenario& s = *scenario;
      const std::string label = calibration_label(shape, strategy);
      step(label);
      ExecOptions eo;
      eo.devices = devices;
      eo.warmup_iterations = 1;
      eo.iterations = options.quick ? 3 : 5;
      auto run = execute_layer(s, strategy, eo);
      if (!run) return core::Error{run.error().code, label + ": " + run.error().message};
      // The counts of the plan of the routing the executor ran, so that each stage's FLOPs and
      // bytes (the expert MLPs' segments and row tiles above all) are those of the measured run.
      auto counts = calibration_stage_counts(s, strategy, options.base);
      if (!counts) return core::Error{counts.error().code, label + ": " + counts.error().message};
      for (const auto& [stage, c] : *counts) {
        // Rank 0's measured duration of this stage (summed if it has several spans).
        double measured_ns = 0;
        for (const auto& span : run->timeline.ranks[0].spans) {
          if (span.stage == stage && span.phase == c.phase) measured_ns += static_cast<double>(span.duration_ns());
        }
        if (measured_ns <= 0) continue;
        points[c.kernel].push_back({fmt::format("{} {}", stage, label), c.flops, c.bytes, measured_ns / 1e3, c.selections});
      }
      ++done;
    }
  }
  for (auto& [family, pts] : points) {
    auto fit = model::fit_family(family, pts);
    if (!fit) return core::Error{fit.error().code, family + ": " + fit.error().message};
    profile.kernels[family] = *fit;
  }
  // Families the layers did not exercise here (dense model parts, attention, optimizer): base.
  std::vector<std::string> carried;
  for (const auto& [family, fit] : options.base.kernels) {
    if (!profile.kernels.contains(family)) {
      profile.kernels[family] = fit;
      carried.push_back(family);
    }
  }
  profile.collectives = options.base.collectives;
  std::string collective_note = "collectives: every tier from " + options.base.name + " (one GPU: nothing to measure)";
  if (w > 1) {
    HPSIM_TRY(measure_collectives(profile));
    collective_note = fmt::format("collectives: intra_node measured on {} GPUs (efficiency relative to {} GB/s per "
                                  "direction); inter_node from {} (one node here)",
                                  w, link, options.base.name);
  }
  step("done");
  profile.note = fmt::format(
      "Measured by `{}` on {} x {} ({}). Kernels: both layers executed at {} shapes (uniform and Zipf(1) "
      "routing), each stage paired with the model's FLOP, byte and (routers) top-k selection counts and fitted "
      "(alpha + flops/F + bytes/B + selections/G). Ceilings measured in the same run: "
      "device copy {:.0f} GB/s, dense bf16 GEMM {:.0f} TFLOP/s, host round trip {:.1f} us; fp32 ceiling from {}. {}. "
      "Carried over from {}: {}.",
      options.command, w, prop.name, profile.date, shapes.size() * 2, profile.hbm_gbps, profile.bf16_tflops,
      profile.host_sync_us, options.base.name, collective_note, options.base.name, fmt::join(carried, ", "));
  return profile;
}

}  // namespace hpsim::exec
