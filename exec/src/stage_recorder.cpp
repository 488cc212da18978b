#include "stage_recorder.h"

#include <cmath>

namespace hpsim::exec {
namespace {

core::Error cuda_failure(cudaError_t e, const char* what) {
  int device = -1;
  cudaGetDevice(&device);
  return core::Error{core::ErrorCode::kCuda, fmt::format("{} on device {}: {}", what, device, cudaGetErrorString(e))};
}

}  // namespace

StageRecorder::~StageRecorder() {
  for (cudaEvent_t e : pool_) cudaEventDestroy(e);
  if (origin_ != nullptr) cudaEventDestroy(origin_);
}

core::Expected<cudaEvent_t> StageRecorder::event_at(std::size_t i) {
  while (pool_.size() <= i) {
    cudaEvent_t e = nullptr;
    if (cudaError_t r = cudaEventCreate(&e); r != cudaSuccess) return cuda_failure(r, "cudaEventCreate");
    pool_.push_back(e);
  }
  return pool_[i];
}

core::Status StageRecorder::begin_iteration() {
  if (origin_ == nullptr) {
    if (cudaError_t r = cudaEventCreate(&origin_); r != cudaSuccess) return cuda_failure(r, "cudaEventCreate");
  }
  records_.clear();
  used_events_ = 0;
  open_ = false;
  if (cudaError_t r = cudaEventRecord(origin_, stream_); r != cudaSuccess) return cuda_failure(r, "cudaEventRecord");
  return core::Status::ok();
}

core::Status StageRecorder::begin(const std::string& stage, core::Phase phase, core::Lane lane, double bytes,
                                  double flops) {
  HPSIM_ASSERT(!open_, "stage {} begun while another is open", stage);
  auto start = event_at(used_events_++);
  if (!start) return start.error();
  auto stop = event_at(used_events_++);
  if (!stop) return stop.error();
  Record rec;
  rec.span.stage = stage;
  rec.span.phase = phase;
  rec.span.lane = lane;
  rec.span.bytes = bytes;
  rec.span.flops = flops;
  rec.start = *start;
  rec.stop = *stop;
  if (cudaError_t r = cudaEventRecord(rec.start, stream_); r != cudaSuccess) return cuda_failure(r, "cudaEventRecord");
  records_.push_back(rec);
  open_ = true;
  return core::Status::ok();
}

core::Status StageRecorder::end() {
  HPSIM_ASSERT(open_ && !records_.empty(), "StageRecorder::end without begin");
  if (cudaError_t r = cudaEventRecord(records_.back().stop, stream_); r != cudaSuccess) {
    return cuda_failure(r, "cudaEventRecord");
  }
  open_ = false;
  return core::Status::ok();
}

core::Expected<std::vector<core::Span>> StageRecorder::spans() const {
  std::vector<core::Span> out;
  out.reserve(records_.size());
  for (const auto& rec : records_) {
    float start_ms = 0, stop_ms = 0;
    if (cudaError_t r = cudaEventElapsedTime(&start_ms, origin_, rec.start); r != cudaSuccess) {
      return cuda_failure(r, "cudaEventElapsedTime");
    }
    if (cudaError_t r = cudaEventElapsedTime(&stop_ms, origin_, rec.stop); r != cudaSuccess) {
      return cuda_failure(r, "cudaEventElapsedTime");
    }
    core::Span s = rec.span;
    s.start_ns = static_cast<std::int64_t>(std::llround(static_cast<double>(start_ms) * 1e6));
    s.end_ns = static_cast<std::int64_t>(std::llround(static_cast<double>(stop_ms) * 1e6));
    out.push_back(s);
  }
  return out;
}

}  // namespace hpsim::exec
