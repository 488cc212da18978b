#include "bench_common.h"
#include "bench_wgmma.h"

#include <algorithm>
#include <cstdio>

#include <cublas_v2.h>
#include <cuda_runtime.h>

namespace hpsim::kernels::bench {
namespace {

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

#define BENCH_CUBLAS(expr)                                                                   \
  do {                                                                                       \
    const cublasStatus_t s_ = (expr);                                                        \
    if (s_ != CUBLAS_STATUS_SUCCESS) {                                                       \
      std::fprintf(stderr, "hpsim-bench: %s failed: %s\n", #expr, cublasGetStatusString(s_)); \
      std::abort();                                                                          \
    }                                                                                        \
  } while (0)

// Median milliseconds of `reps` timed calls (each behind hold_stream()) after `warm` untimed ones.
template <typename Fn>
double median_ms(Fn&& fn, int warm, int reps) {
  cudaEvent_t a, b;
  HPSIM_CUDA_CHECK(cudaEventCreate(&a));
  HPSIM_CUDA_CHECK(cudaEventCreate(&b));
  for (int i = 0; i < warm; ++i) fn();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    hold_stream(nullptr, kHoldMicroseconds);
    HPSIM_CUDA_CHECK(cudaEventRecord(a));
    fn();
    HPSIM_CUDA_CHECK(cudaEventRecord(b));
    HPSIM_CUDA_CHECK(cudaEventSynchronize(b));
    float ms = 0;
    HPSIM_CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
    t.push_back(ms);
  }
  HPSIM_CUDA_CHECK(cudaEventDestroy(a));
  HPSIM_CUDA_CHECK(cudaEventDestroy(b));
  return median(t);
}

constexpr std::int64_t kCopyBytes = 1ll << 31;  // 2 GiB each way
constexpr int kGemm = 8192;

struct GemmBuffers {
  DeviceBuf<Bf16> a, b, c;
  DeviceBuf<float> fa, fb, fc;
};

double time_copy(int reps) {
  DeviceBuf<char> src(static_cast<std::size_t>(kCopyBytes)), dst(static_cast<std::size_t>(kCopyBytes));
  HPSIM_CUDA_CHECK(cudaMemset(src.get(), 1, static_cast<std::size_t>(kCopyBytes)));
  return median_ms([&] { HPSIM_CUDA_CHECK(cudaMemcpyAsync(dst.get(), src.get(), static_cast<std::size_t>(kCopyBytes), cudaMemcpyDeviceToDevice)); }, 2, reps);
}

double time_bf16_gemm(cublasHandle_t h, int reps) {
  const std::size_t n = static_cast<std::size_t>(kGemm) * kGemm;
  DeviceBuf<Bf16> a(n), b(n), c(n);
  fill_normal(a.get(), static_cast<std::int64_t>(n), 1.0f, 1);
  fill_normal(b.get(), static_cast<std::int64_t>(n), 1.0f, 2);
  const float one = 1.0f, zero = 0.0f;
  return median_ms(
      [&] {
        BENCH_CUBLAS(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, kGemm, kGemm, kGemm, &one, a.get(), CUDA_R_16BF, kGemm, b.get(),
                                  CUDA_R_16BF, kGemm, &zero, c.get(), CUDA_R_16BF, kGemm, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
      },
      3, reps);
}

double time_fp32_gemm(cublasHandle_t h, int reps) {
  const std::size_t n = static_cast<std::size_t>(kGemm) * kGemm;
  DeviceBuf<float> a(n), b(n), c(n);
  fill_normal(a.get(), static_cast<std::int64_t>(n), 1.0f, 3);
  fill_normal(b.get(), static_cast<std::int64_t>(n), 1.0f, 4);
  const float one = 1.0f, zero = 0.0f;
  return median_ms([&] { BENCH_CUBLAS(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, kGemm, kGemm, kGemm, &one, a.get(), kGemm, b.get(), kGemm, &zero, c.get(), kGemm)); },
                   2, reps);
}

cublasHandle_t cublas() {
  static cublasHandle_t handle = [] {
    cublasHandle_t h = nullptr;
    BENCH_CUBLAS(cublasCreate(&h));
    BENCH_CUBLAS(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH));  // no TF32 for the fp32 ceiling
    return h;
  }();
  return handle;
}

}  // namespace

Options& options() {
  static Options o;
  return o;
}

std::string& verification(const std::string& key) {
  static std::map<std::string, std::string> results;
  return results[key];
}

const Ceilings& ceilings() {
  static const Ceilings c = [] {
    Ceilings r;
    cudaDeviceProp prop{};
    int dev = 0;
    HPSIM_CUDA_CHECK(cudaGetDevice(&dev));
    HPSIM_CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
    r.gpu = prop.name;
    r.copy_gbps = 2.0 * static_cast<double>(kCopyBytes) / (time_copy(10) * 1e-3) / 1e9;
    const double flops = 2.0 * kGemm * static_cast<double>(kGemm) * kGemm;
    r.bf16_tflops = flops / (time_bf16_gemm(cublas(), 10) * 1e-3) / 1e12;
    r.fp32_tflops = flops / (time_fp32_gemm(cublas(), 5) * 1e-3) / 1e12;
    std::fprintf(stderr, "hpsim-bench: ceilings on %s: copy %.0f GB/s, bf16 GEMM %.0f TFLOP/s, fp32 GEMM %.1f TFLOP/s\n",
                 r.gpu.c_str(), r.copy_gbps, r.bf16_tflops, r.fp32_tflops);
    return r;
  }();
  return c;
}

std::map<std::string, double> segment_counters(const std::vector<std::int32_t>& offsets) {
  std::map<std::string, double> c;
  const std::size_t segments = offsets.empty() ? 0 : offsets.size() - 1;
  c["segments"] = static_cast<double>(segments);
  double nonempty = 0;
  constexpr std::int64_t kTiles[] = {64, 128, 192, 2048};
  double items[4] = {0, 0, 0, 0};
  for (std::size_t i = 0; i < segments; ++i) {
    const std::int64_t rows = offsets[i + 1] - offsets[i];
    nonempty += rows > 0 ? 1 : 0;
    for (int t = 0; t < 4; ++t) items[t] += static_cast<double>((rows + kTiles[t] - 1) / kTiles[t]);
  }
  c["segments_nonempty"] = nonempty;
  for (int t = 0; t < 4; ++t) c["items_" + std::to_string(kTiles[t])] = items[t];
  return c;
}

void time_case(benchmark::State& state, const std::function<core::Status(cudaStream_t)>& launch_once, const Work& work,
               const std::map<std::string, double>& shape, const std::string& label) {
  const Ceilings& ceil = ceilings();
  cudaStream_t stream = nullptr;
  for (int i = 0; i < 3; ++i) {
    const core::Status s = launch_once(stream);
    if (!s.is_ok()) {
      state.SkipWithError(s.error().message.c_str());
      for (auto _ : state) {
      }
      return;
    }
  }
  HPSIM_CUDA_CHECK(cudaDeviceSynchronize());
  cudaEvent_t start, stop;
  HPSIM_CUDA_CHECK(cudaEventCreate(&start));
  HPSIM_CUDA_CHECK(cudaEventCreate(&stop));
  std::vector<double> ms;
  std::string error;
  for (auto _ : state) {
    hold_stream(stream, kHoldMicroseconds);
    HPSIM_CUDA_CHECK(cudaEventRecord(start, stream));
    const core::Status s = launch_once(stream);
    HPSIM_CUDA_CHECK(cudaEventRecord(stop, stream));
    const cudaError_t sync = cudaEventSynchronize(stop);
    if (!s.is_ok() || sync != cudaSuccess) {
      error = !s.is_ok() ? s.error().message : cudaGetErrorString(sync);
      state.SkipWithError(error.c_str());
      break;
    }
    float t = 0;
    HPSIM_CUDA_CHECK(cudaEventElapsedTime(&t, start, stop));
    state.SetIterationTime(static_cast<double>(t) * 1e-3);
    ms.push_back(t);
  }
  HPSIM_CUDA_CHECK(cudaEventDestroy(start));
  HPSIM_CUDA_CHECK(cudaEventDestroy(stop));
  if (!error.empty() || ms.empty()) return;
  const double med_s = median(ms) * 1e-3;
  state.counters["median_us"] = med_s * 1e6;
  state.counters["flops"] = work.flops;
  state.counters["bytes"] = work.bytes;
  if (work.flops_executed > 0) state.counters["flops_executed"] = work.flops_executed;
  if (work.peer_ms > 0) {
    state.counters["peer_ms"] = work.peer_ms;
    state.counters["peer_ratio"] = med_s * 1e3 / work.peer_ms;
  }
  state.counters["FLOP/s"] = benchmark::Counter(work.flops, benchmark::Counter::kIsIterationInvariantRate);
  state.SetBytesProcessed(static_cast<std::int64_t>(work.bytes * static_cast<double>(state.iterations())));
  double frac = 0;
  const char* kind = "copy";
  switch (work.ceiling) {
    case Ceiling::kCopy:
      frac = work.bytes / med_s / (ceil.copy_gbps * 1e9);
      kind = "copy";
      break;
    case Ceiling::kBf16Gemm:
      frac = work.flops / med_s / (ceil.bf16_tflops * 1e12);
      kind = "bf16_gemm";
      break;
    case Ceiling::kFp32Gemm:
      frac = work.flops / med_s / (ceil.fp32_tflops * 1e12);
      kind = "fp32_gemm";
      break;
  }
  state.counters["frac_ceiling"] = frac;
  state.counters["ceiling_copy_gbps"] = ceil.copy_gbps;
  state.counters["ceiling_bf16_tflops"] = ceil.bf16_tflops;
  state.counters["ceiling_fp32_tflops"] = ceil.fp32_tflops;
  for (const auto& [name, value] : shape) state.counters[name] = value;
  state.SetLabel(label + " ceiling=" + kind);
}

void register_ceiling_cases() {
  benchmark::RegisterBenchmark("ceiling/copy_d2d_2GiB", [](benchmark::State& state) {
    DeviceBuf<char> src(static_cast<std::size_t>(kCopyBytes)), dst(static_cast<std::size_t>(kCopyBytes));
    HPSIM_CUDA_CHECK(cudaMemset(src.get(), 1, static_cast<std::size_t>(kCopyBytes)));
    Work w;
    w.bytes = 2.0 * static_cast<double>(kCopyBytes);
    w.ceiling = Ceiling::kCopy;
    time_case(state, [&](cudaStream_t s) -> core::Status {
      HPSIM_CUDA_TRY(cudaMemcpyAsync(dst.get(), src.get(), static_cast<std::size_t>(kCopyBytes), cudaMemcpyDeviceToDevice, s));
      return core::Status::ok();
    }, w, {}, "family=ceiling_copy");
  })->UseManualTime()->Iterations(10)->Unit(benchmark::kMicrosecond);
  // Write-only streams: weight gradients of experts without rows are such a stream of zeros.
  for (const bool memset : {true, false}) {
    benchmark::RegisterBenchmark(memset ? "ceiling/write_memset_2GiB" : "ceiling/write_store16_2GiB", [memset](benchmark::State& state) {
      DeviceBuf<char> dst(static_cast<std::size_t>(kCopyBytes));
      Work w;
      w.bytes = static_cast<double>(kCopyBytes);
      w.ceiling = Ceiling::kCopy;
      time_case(state, [&](cudaStream_t s) -> core::Status {
        if (memset)
          HPSIM_CUDA_TRY(cudaMemsetAsync(dst.get(), 0, static_cast<std::size_t>(kCopyBytes), s));
        else
          store_zeros(dst.get(), kCopyBytes, s);
        HPSIM_CUDA_TRY(cudaGetLastError());
        return core::Status::ok();
      }, w, {}, memset ? "family=ceiling_write_memset" : "family=ceiling_write_store16");
    })->UseManualTime()->Iterations(10)->Unit(benchmark::kMicrosecond);
  }
  benchmark::RegisterBenchmark("ceiling/bf16_gemm_8192", [](benchmark::State& state) {
    const std::size_t n = static_cast<std::size_t>(kGemm) * kGemm;
    DeviceBuf<Bf16> a(n), b(n), c(n);
    fill_normal(a.get(), static_cast<std::int64_t>(n), 1.0f, 5);
    fill_normal(b.get(), static_cast<std::int64_t>(n), 1.0f, 6);
    Work w;
    w.flops = 2.0 * kGemm * static_cast<double>(kGemm) * kGemm;
    w.bytes = 3.0 * static_cast<double>(n) * 2;
    w.ceiling = Ceiling::kBf16Gemm;
    time_case(state, [&](cudaStream_t s) -> core::Status {
      const float one = 1.0f, zero = 0.0f;
      BENCH_CUBLAS(cublasSetStream(cublas(), s));
      BENCH_CUBLAS(cublasGemmEx(cublas(), CUBLAS_OP_N, CUBLAS_OP_N, kGemm, kGemm, kGemm, &one, a.get(), CUDA_R_16BF, kGemm, b.get(),
                                CUDA_R_16BF, kGemm, &zero, c.get(), CUDA_R_16BF, kGemm, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
      return core::Status::ok();
    }, w, {}, "family=ceiling_bf16_gemm");
  })->UseManualTime()->Iterations(10)->Unit(benchmark::kMicrosecond);
  // The tensor pipe alone (no memory traffic): what the expert MLP kernels' wgmma shapes can reach,
  // beside what a whole GEMM reaches. Only on compute capability 9.0.
  for (const bool shared_a : {true, false}) {
    benchmark::RegisterBenchmark(shared_a ? "ceiling/wgmma_pipe_m64n64k16_ss" : "ceiling/wgmma_pipe_m64n128k16_rs", [shared_a](
                                                                                                                  benchmark::State& state) {
      if (!wgmma_pipe_supported()) {
        state.SkipWithError("wgmma needs compute capability 9.0");
        for (auto _ : state) {
        }
        return;
      }
      int dev = 0, sms = 0;
      HPSIM_CUDA_CHECK(cudaGetDevice(&dev));
      HPSIM_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
      const WgmmaShape shape = shared_a ? WgmmaShape::kM64N64K16SharedShared : WgmmaShape::kM64N128K16RegisterShared;
      constexpr int kChains = 2000;
      DeviceBuf<float> sink(512);
      Work w;
      w.flops = wgmma_pipe_flops(shape, sms, kChains);
      w.ceiling = Ceiling::kBf16Gemm;
      time_case(state, [&](cudaStream_t s) -> core::Status {
        HPSIM_CUDA_TRY(launch_wgmma_pipe(shape, sms, kChains, sink.get(), s));
        return core::Status::ok();
      }, w, {}, shared_a ? "family=ceiling_wgmma_pipe_ss" : "family=ceiling_wgmma_pipe_rs");
    })->UseManualTime()->Iterations(10)->Unit(benchmark::kMicrosecond);
  }
  benchmark::RegisterBenchmark("ceiling/fp32_gemm_8192", [](benchmark::State& state) {
    const std::size_t n = static_cast<std::size_t>(kGemm) * kGemm;
    DeviceBuf<float> a(n), b(n), c(n);
    fill_normal(a.get(), static_cast<std::int64_t>(n), 1.0f, 7);
    fill_normal(b.get(), static_cast<std::int64_t>(n), 1.0f, 8);
    Work w;
    w.flops = 2.0 * kGemm * static_cast<double>(kGemm) * kGemm;
    w.bytes = 3.0 * static_cast<double>(n) * 4;
    w.ceiling = Ceiling::kFp32Gemm;
    time_case(state, [&](cudaStream_t s) -> core::Status {
      const float one = 1.0f, zero = 0.0f;
      BENCH_CUBLAS(cublasSetStream(cublas(), s));
      BENCH_CUBLAS(cublasSgemm(cublas(), CUBLAS_OP_N, CUBLAS_OP_N, kGemm, kGemm, kGemm, &one, a.get(), kGemm, b.get(), kGemm, &zero,
                               c.get(), kGemm));
      return core::Status::ok();
    }, w, {}, "family=ceiling_fp32_gemm");
  })->UseManualTime()->Iterations(5)->Unit(benchmark::kMicrosecond);
}

}  // namespace hpsim::kernels::bench
