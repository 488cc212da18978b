#pragma once
// Brackets each stage of one rank's iteration with a pair of CUDA events on the rank's stream
// and turns them into core::Span values relative to the iteration's origin event. Events are
// pooled and reused across iterations; reading them needs the stream synchronised.

#include <string>
#include <vector>

#include <cuda_runtime.h>

#include "hpsim/core/error.h"
#include "hpsim/core/timeline.h"

namespace hpsim::exec {

class StageRecorder {
 public:
  explicit StageRecorder(cudaStream_t stream) : stream_(stream) {}
  ~StageRecorder();
  StageRecorder(const StageRecorder&) = delete;
  StageRecorder& operator=(const StageRecorder&) = delete;

  // Starts an iteration: records the origin event (after the caller's cross-rank barrier).
  core::Status begin_iteration();
  // Records the start of a stage; end() closes the most recent open stage.
  core::Status begin(const std::string& stage, core::Phase phase, core::Lane lane, double bytes, double flops);
  core::Status end();
  // After the stream is synchronised: the spans of this iteration, origin at 0.
  core::Expected<std::vector<core::Span>> spans() const;

 private:
  struct Record {
    core::Span span;
    cudaEvent_t start = nullptr;
    cudaEvent_t stop = nullptr;
  };
  core::Expected<cudaEvent_t> event_at(std::size_t i);

  cudaStream_t stream_;
  cudaEvent_t origin_ = nullptr;
  std::vector<cudaEvent_t> pool_;
  std::vector<Record> records_;
  std::size_t used_events_ = 0;
  bool open_ = false;
};

}  // namespace hpsim::exec
