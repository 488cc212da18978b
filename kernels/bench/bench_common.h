#pragma once
// Shared pieces of the hpsim-bench suite (Google Benchmark): device buffers, random fills,
// CUDA-event timing with medians, the ceilings measured in the same run, and the counters every
// case reports (flops, bytes, FLOP/s, bytes_per_second, fraction of its ceiling, shape).
// Symbols as in DESIGN.md section 2.

#include <benchmark/benchmark.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "hpsim/core/error.h"
#include "hpsim/kernels/cuda_check.h"
#include "hpsim/kernels/types.h"

namespace hpsim::kernels::bench {

struct Options {
  bool verify = true;     // check every case against its CPU twin (at a reduced token count) first
  bool quick = false;     // only the paper's W = 2, n = 16384 shapes
  int iterations = 20;    // timed launches per case (after 3 warm-ups)
};
Options& options();

template <typename T>
class DeviceBuf {
 public:
  DeviceBuf() = default;
  explicit DeviceBuf(std::size_t n) : size_(n) {
    if (n > 0) HPSIM_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&ptr_), n * sizeof(T)));
  }
  explicit DeviceBuf(const std::vector<T>& host) : DeviceBuf(host.size()) {
    if (!host.empty()) HPSIM_CUDA_CHECK(cudaMemcpy(ptr_, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
  }
  ~DeviceBuf() {
    if (ptr_ != nullptr) HPSIM_CUDA_CHECK(cudaFree(ptr_));
  }
  DeviceBuf(const DeviceBuf&) = delete;
  DeviceBuf& operator=(const DeviceBuf&) = delete;
  DeviceBuf(DeviceBuf&& o) noexcept : ptr_(o.ptr_), size_(o.size_) {
    o.ptr_ = nullptr;
    o.size_ = 0;
  }
  DeviceBuf& operator=(DeviceBuf&& o) noexcept {
    std::swap(ptr_, o.ptr_);
    std::swap(size_, o.size_);
    return *this;
  }
  T* get() const { return ptr_; }
  std::size_t size() const { return size_; }
  std::vector<T> download() const {
    std::vector<T> host(size_);
    HPSIM_CUDA_CHECK(cudaDeviceSynchronize());
    if (size_ > 0) HPSIM_CUDA_CHECK(cudaMemcpy(host.data(), ptr_, size_ * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }

 private:
  T* ptr_ = nullptr;
  std::size_t size_ = 0;
};

// Normal(0, scale^2) pseudo-random fills on the device (counter-based hash, seeded).
void fill_normal(Bf16* p, std::int64_t n, float scale, std::uint64_t seed);
void fill_normal(float* p, std::int64_t n, float scale, std::uint64_t seed);
// Zeros over `bytes` (a multiple of 16) with 16-byte stores from a grid-stride kernel.
void store_zeros(void* p, std::int64_t bytes, cudaStream_t stream);
// Keeps `stream` busy for `microseconds` (one spinning thread). Every timed region starts behind
// it, so the host has enqueued the whole region (argument checks, tensor maps, launches) before
// the start event fires: the time is the device's, as when a layer's kernels run back to back.
void hold_stream(cudaStream_t stream, int microseconds);
constexpr int kHoldMicroseconds = 200;
// GELU (tanh form) of bf16 values, in place (the activation step of the cuBLAS comparison).
void gelu_inplace(Bf16* p, std::int64_t n, cudaStream_t stream);

// Ceilings measured on this device in this run (lazily, once).
struct Ceilings {
  double copy_gbps = 0;      // device-to-device copy, bytes read + written
  double bf16_tflops = 0;    // cuBLAS bf16 GEMM 8192^3, fp32 accumulation
  double fp32_tflops = 0;    // cuBLAS fp32 GEMM 8192^3 (no TF32)
  std::string gpu;
};
const Ceilings& ceilings();

enum class Ceiling { kCopy, kBf16Gemm, kFp32Gemm };

struct Work {
  double flops = 0;          // useful floating-point operations of one launch
  double bytes = 0;          // fewest device-memory bytes one launch must move
  double flops_executed = 0; // when the kernel does more than the useful work (recomputation); else 0
  Ceiling ceiling = Ceiling::kCopy;
  double peer_ms = 0;        // a reference time to compare with (counter peer_ratio = median / peer_ms)
};

// The work items a grouped expert kernel makes of its segments (offsets: the segments' row
// offsets, one more than the segments): counters `segments`, `segments_nonempty` and `items_T`
// (sum over segments of ceil(rows / T)) for the kernels' row tiles T = 64, 128, 192, 2048, so that
// a calibration can price the launch with the model's own FLOP and byte counts (docs/model.md,
// "Segments and row tiles").
std::map<std::string, double> segment_counters(const std::vector<std::int32_t>& offsets);

// Times `launch_once` (returns Status) with CUDA events: 3 warm-ups, then one event pair per
// benchmark iteration, each behind hold_stream(); reports manual time and the counters. Skips the case on an error.
void time_case(benchmark::State& state, const std::function<core::Status(cudaStream_t)>& launch_once, const Work& work,
               const std::map<std::string, double>& shape, const std::string& label);

// The suite's one live fixture (device buffers of one shape), rebuilt after a device
// synchronisation when a case of another shape (Shape::key()) asks for it.
template <typename Fixture, typename Shape>
Fixture& cached_fixture(const Shape& s) {
  static std::unique_ptr<Fixture> f;
  if (!f || f->s.key() != s.key()) {
    f.reset();
    HPSIM_CUDA_CHECK(cudaDeviceSynchronize());
    f = std::make_unique<Fixture>(s);
  }
  return *f;
}

// Registers the Google Benchmark case "<layer>/<shape key>/<family>": its family is first checked
// against the CPU twin (`verified(family, shape)` returns "passed" or what failed; the case is
// skipped with that message when verification is on), then `launch(fixture(shape), stream)` is
// timed with time_case(). Shape provides key(), counters() and label(family).
template <typename Shape, typename Fixture>
void register_verified_case(const char* layer, const Shape& s, const char* family, Work (*work)(const Shape&),
                            std::function<core::Status(Fixture&, cudaStream_t)> launch,
                            const std::string& (*verified)(const char*, const Shape&), Fixture& (*fixture)(const Shape&)) {
  const std::string name = std::string(layer) + "/" + s.key() + "/" + family;
  benchmark::RegisterBenchmark(name.c_str(), [s, family, work, launch, verified, fixture](benchmark::State& state) {
    const std::string& v = verified(family, s);
    if (options().verify && v != "passed") {
      state.SkipWithError(("verification against the CPU twin failed: " + v).c_str());
      for (auto _ : state) {
      }
      return;
    }
    Fixture& fx = fixture(s);
    auto counters = s.counters();
    counters.insert(fx.segments.begin(), fx.segments.end());  // the fixture's segment_counters()
    time_case(state, [&](cudaStream_t st) { return launch(fx, st); }, work(s), counters, s.label(family));
  })->UseManualTime()->Iterations(options().iterations)->Unit(benchmark::kMicrosecond);
}

// Cases register themselves through these (called from main, never from static initialisers).
void register_ceiling_cases();
void register_hp_cases();
void register_ep_cases();
void register_dense_cases();

// Verification results cached per key ("hp_router_fwd E=768 k=4 ..."): empty string = passed.
std::string& verification(const std::string& key);

}  // namespace hpsim::kernels::bench
