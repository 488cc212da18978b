#pragma once
// Shared pieces of the HP and EP layer runners: the per-rank context, tagged allocation (or its
// dry-run count), random initialisation, and the stage bracket. Private to exec.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <cuda_runtime.h>

#include "hpsim/core/error.h"
#include "hpsim/core/scenario.h"
#include "hpsim/exec/device_arena.h"
#include "hpsim/kernels/comm.h"
#include "hpsim/kernels/cuda_check.h"
#include "hpsim/kernels/dense.h"
#include "hpsim/kernels/router.h"
#include "hpsim/kernels/types.h"
#include "stage_recorder.h"

namespace hpsim::exec::detail {

using core::Lane;
using core::Phase;
using core::Status;
using kernels::Bf16;

// Short names of the memory parts, for the allocation lists of the layers.
inline constexpr MemTag kW = MemTag::kWeights;
inline constexpr MemTag kG = MemTag::kGradients;
inline constexpr MemTag kA = MemTag::kActivations;
inline constexpr MemTag kC = MemTag::kCommBuffers;
inline constexpr MemTag kS = MemTag::kWorkspace;

// Either counts bytes (dry run, to size the arena) or carves them from the arena.
class Allocator {
 public:
  explicit Allocator(DeviceArena* arena) : arena_(arena) {}
  bool dry() const { return arena_ == nullptr; }
  std::int64_t counted() const { return counted_; }

  template <typename T>
  core::Expected<T*> get(std::int64_t count, MemTag tag, const std::string& what) {
    const std::int64_t bytes = count * static_cast<std::int64_t>(sizeof(T));
    if (dry()) {
      // A distinct, aligned, never-dereferenced address, so that shape checks (which reject null
      // pointers) run in the dry pass too.
      const std::uintptr_t fake = kDryBase + static_cast<std::uintptr_t>(counted_);
      counted_ += (bytes + 255) / 256 * 256;
      return reinterpret_cast<T*>(fake);
    }
    auto p = arena_->allocate(bytes, tag, what);
    if (!p) return p.error();
    return static_cast<T*>(*p);
  }

 private:
  static constexpr std::uintptr_t kDryBase = std::uintptr_t{1} << 40;
  DeviceArena* arena_;
  std::int64_t counted_ = 0;
};

#define HPSIM_ALLOC(var, type, count, tag, what)                 \
  do {                                                           \
    auto hpsim_alloc_ = alloc.template get<type>((count), (tag), (what)); \
    if (!hpsim_alloc_) return hpsim_alloc_.error();              \
    var = *hpsim_alloc_;                                         \
  } while (0)

// One rank's resources; the stream is destroyed last, after what was bound to it.
struct RankContext {
  RankContext() = default;
  RankContext(const RankContext&) = delete;
  RankContext& operator=(const RankContext&) = delete;
  ~RankContext() {
    recorder.reset();
    dense.reset();
    if (stream != nullptr) {
      cudaSetDevice(device);
      cudaStreamDestroy(stream);
    }
  }

  int rank = 0;
  int world = 1;
  int device = 0;
  kernels::Communicator* comm = nullptr;
  cudaStream_t stream = nullptr;
  std::unique_ptr<kernels::DenseContext> dense;
  DeviceArena arena;
  std::unique_ptr<StageRecorder> recorder;
  void* workspace = nullptr;
  std::int64_t workspace_bytes = 0;
};

// Brackets fn() (which enqueues work on ctx.stream) with the recorder's events.
template <typename Fn>
core::Status stage(RankContext& ctx, const char* name, core::Phase phase, core::Lane lane, double bytes, double flops,
                   Fn&& fn) {
  HPSIM_TRY(ctx.recorder->begin(name, phase, lane, bytes, flops));
  HPSIM_TRY(fn());
  return ctx.recorder->end();
}

// Fills a device buffer with seeded normal values times `scale` (bf16 or fp32), from a host pool
// copied in chunks: cheap for gigabytes of weights, and never zeros.
core::Status fill_random_bf16(Bf16* dst, std::int64_t count, float scale, std::uint64_t seed, cudaStream_t stream);
core::Status fill_random_f32(float* dst, std::int64_t count, float scale, std::uint64_t seed, cudaStream_t stream);

// One tensor of a rank's results for the numerics check (host copy, as float64). Sharded tensors
// (this rank's tokens, heads or experts) concatenate in rank order into the one-GPU run's;
// gradients of replicated weights are partial sums over this rank's tokens, added over ranks.
struct NumericsTensor {
  std::string name;
  bool summed_over_ranks = false;
  std::vector<double> values;
};

core::Expected<NumericsTensor> host_tensor(const std::string& name, const Bf16* src, std::int64_t count,
                                           bool summed_over_ranks = false);
core::Expected<NumericsTensor> host_tensor(const std::string& name, const float* src, std::int64_t count,
                                           bool summed_over_ranks = false);

// Appends `tensor` to `list`, or returns its error.
inline core::Status append(std::vector<NumericsTensor>& list, core::Expected<NumericsTensor> tensor) {
  if (!tensor) return tensor.error();
  list.push_back(std::move(*tensor));
  return core::Status::ok();
}

// Row-block repacking with the copy engine: `rows` rows; block b of `block_bytes` per row moves
// between a [rows][blocks*block] layout and a [blocks][rows][block] layout.
core::Status split_blocks(const void* packed, void* blocked, std::int64_t rows, std::int64_t blocks,
                          std::int64_t block_bytes, cudaStream_t stream);
core::Status join_blocks(const void* blocked, void* packed, std::int64_t rows, std::int64_t blocks,
                         std::int64_t block_bytes, cudaStream_t stream);

}  // namespace hpsim::exec::detail
