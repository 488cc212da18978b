// Orchestration: one host thread per GPU, a breakable barrier between iterations, an in-stream
// NCCL barrier before each iteration's origin event (so that the ranks' clocks line up to a few
// microseconds), and assembly of the measured timeline, traffic and memory.
#include "hpsim/exec/executor.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <numeric>
#include <thread>

#include "ep_layer.h"
#include "hp_layer.h"
#include "hpsim/core/validate.h"

namespace hpsim::exec {
namespace {

using detail::Allocator;
using detail::EpLayer;
using detail::HpLayer;
using detail::RankContext;

// A barrier that a failing thread can break, so that nobody waits for a rank that has gone.
class BreakableBarrier {
 public:
  explicit BreakableBarrier(int parties) : parties_(parties) {}
  bool arrive_and_wait() {
    std::unique_lock lock(mutex_);
    if (broken_) return false;
    const long generation = generation_;
    if (++waiting_ == parties_) {
      waiting_ = 0;
      ++generation_;
      cv_.notify_all();
      return true;
    }
    cv_.wait(lock, [&] { return generation_ != generation || broken_; });
    return !broken_;
  }
  void break_all() {
    std::lock_guard lock(mutex_);
    broken_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  int parties_;
  int waiting_ = 0;
  long generation_ = 0;
  bool broken_ = false;
};

std::vector<core::TrafficMatrix> empty_traffic(core::Strategy strategy, std::int64_t w, bool backward) {
  std::vector<core::TrafficMatrix> m;
  if (strategy == core::Strategy::kEp) m.emplace_back("metadata", w);
  m.emplace_back("dispatch", w);
  m.emplace_back("combine", w);
  if (backward) {
    m.emplace_back("combine_bwd", w);
    m.emplace_back("dispatch_bwd", w);
  }
  return m;
}

template <typename Layer>
core::Status run_rank(const core::Scenario& scenario, const ExecOptions& options, RankContext& ctx,
                      std::int64_t arena_bytes, BreakableBarrier& barrier,
                      std::vector<std::vector<core::Span>>& timed_spans, std::vector<core::TrafficMatrix>& traffic,
                      std::mutex& traffic_mutex, core::RankMemory& memory) {
  HPSIM_CUDA_TRY(cudaSetDevice(ctx.device));
  HPSIM_CUDA_TRY(cudaStreamCreateWithFlags(&ctx.stream, cudaStreamNonBlocking));
  auto dense = kernels::create_dense_context();
  if (!dense) return dense.error();
  ctx.dense = std::move(*dense);
  ctx.recorder = std::make_unique<StageRecorder>(ctx.stream);
  HPSIM_TRY(ctx.arena.reserve(arena_bytes, ctx.device));
  Layer layer(scenario, ctx.rank, ctx.world, options.forced_routing, options.include_backward);
  Allocator alloc(&ctx.arena);
  HPSIM_TRY(layer.allocate(alloc, &ctx));
  float* sync = nullptr;
  {
    auto p = ctx.arena.allocate(256, MemTag::kWorkspace, "iteration barrier");
    if (!p) return p.error();
    sync = static_cast<float*>(*p);
    HPSIM_CUDA_TRY(cudaMemsetAsync(sync, 0, 256, ctx.stream));
  }
  HPSIM_TRY(layer.initialise(ctx));
  HPSIM_CUDA_TRY(cudaStreamSynchronize(ctx.stream));
  const int total = options.warmup_iterations + options.iterations;
  for (int it = 0; it < total; ++it) {
    if (!barrier.arrive_and_wait()) return core::Error{core::ErrorCode::kCancelled, "another rank failed"};
    HPSIM_TRY(ctx.comm->all_reduce_sum(sync, sync, 1, kernels::Communicator::ReduceType::kF32, ctx.stream));
    HPSIM_TRY(ctx.recorder->begin_iteration());
    HPSIM_TRY(layer.forward(ctx));
    if (options.include_backward) HPSIM_TRY(layer.backward(ctx));
    HPSIM_TRY(ctx.comm->wait(ctx.stream, fmt::format("iteration {} of the {} layer", it, to_string(scenario.parallel.strategy))));
    if (it >= options.warmup_iterations) {
      auto spans = ctx.recorder->spans();
      if (!spans) return spans.error();
      timed_spans.push_back(std::move(*spans));
    }
  }
  {
    std::lock_guard lock(traffic_mutex);
    layer.add_traffic(traffic);
  }
  memory = ctx.arena.peak_by_part(ctx.rank);
  return core::Status::ok();
}

}  // namespace

std::int64_t arena_bytes_needed(const core::Scenario& scenario, core::Strategy strategy, bool include_backward) {
  const int world = static_cast<int>(scenario.parallel.num_ranks);
  Allocator dry(nullptr);
  core::Status status;
  if (strategy == core::Strategy::kHp) {
    HpLayer layer(scenario, 0, world, true, include_backward);
    status = layer.allocate(dry, nullptr);
  } else {
    EpLayer layer(scenario, 0, world, true, include_backward);
    status = layer.allocate(dry, nullptr);
  }
  HPSIM_ASSERT(status.is_ok() || status.error().code != core::ErrorCode::kInternal, "{}", status.error().message);
  return dry.counted() + (64 << 20);  // + the barrier word, alignment and a margin
}

core::Expected<ExecResult> execute_layer(const core::Scenario& scenario_in, core::Strategy strategy,
                                         const ExecOptions& options) {
  core::Scenario scenario = scenario_in;
  scenario.parallel.strategy = strategy;
  HPSIM_TRY(core::validate(scenario));
  if (options.iterations < 1 || options.warmup_iterations < 0) {
    return core::Error::field("iterations", "needs at least one timed iteration and no negative warm-up");
  }
  const int world = static_cast<int>(scenario.parallel.num_ranks);
  std::vector<int> devices = options.devices;
  if (devices.empty()) {
    devices.resize(static_cast<std::size_t>(world));
    std::iota(devices.begin(), devices.end(), 0);
  }
  if (static_cast<int>(devices.size()) != world) {
    return core::Error::field("devices", fmt::format("lists {} GPUs but parallel.num_ranks is {}", devices.size(), world));
  }
  const int visible = kernels::visible_device_count();
  if (visible == 0) return core::Error{core::ErrorCode::kNoDevice, "execute needs a GPU and none is visible"};
  if (visible < world) {
    return core::Error{core::ErrorCode::kNoDevice,
                       fmt::format("parallel.num_ranks is {} but only {} GPU(s) are visible", world, visible)};
  }
  // Validate shapes on the host before any allocation: a dry run runs every can_implement.
  {
    Allocator dry(nullptr);
    core::Status st = strategy == core::Strategy::kHp
                          ? HpLayer(scenario, 0, world, true, options.include_backward).allocate(dry, nullptr)
                          : EpLayer(scenario, 0, world, true, options.include_backward).allocate(dry, nullptr);
    if (!st) return st.error();
  }
  const std::int64_t arena = arena_bytes_needed(scenario, strategy, options.include_backward);
  cudaDeviceProp prop{};
  HPSIM_CUDA_TRY(cudaGetDeviceProperties(&prop, devices[0]));
  for (int d : devices) {
    HPSIM_CUDA_TRY(cudaSetDevice(d));
    std::size_t free_bytes = 0, total_bytes = 0;
    HPSIM_CUDA_TRY(cudaMemGetInfo(&free_bytes, &total_bytes));
    if (static_cast<std::size_t>(arena) > free_bytes) {
      return core::Error{core::ErrorCode::kOutOfMemory,
                         fmt::format("the {} layer needs {:.2f} GB per GPU (EP receive buffers at their worst case) "
                                     "but GPU {} has {:.2f} GB free of {:.2f} GB",
                                     to_string(strategy), static_cast<double>(arena) / 1e9, d,
                                     static_cast<double>(free_bytes) / 1e9, static_cast<double>(total_bytes) / 1e9)};
    }
  }
  if (options.progress) {
    options.progress(fmt::format("{} layer on {} x {}: {:.2f} GB per GPU, {} warm-up + {} timed iterations",
                                 to_string(strategy), world, prop.name, static_cast<double>(arena) / 1e9,
                                 options.warmup_iterations, options.iterations));
  }
  auto comms = kernels::create_local_communicators(devices, kernels::CommOptions{options.timeout});
  if (!comms) return comms.error();

  std::vector<RankContext> contexts(static_cast<std::size_t>(world));
  std::vector<std::vector<std::vector<core::Span>>> spans(static_cast<std::size_t>(world));
  std::vector<core::RankMemory> memory(static_cast<std::size_t>(world));
  std::vector<core::Status> status(static_cast<std::size_t>(world));
  auto traffic = empty_traffic(strategy, world, options.include_backward);
  std::mutex traffic_mutex;
  BreakableBarrier barrier(world);
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r) {
    auto& ctx = contexts[static_cast<std::size_t>(r)];
    ctx.rank = r;
    ctx.world = world;
    ctx.device = devices[static_cast<std::size_t>(r)];
    ctx.comm = (*comms)[static_cast<std::size_t>(r)].get();
    threads.emplace_back([&, r] {
      auto& c = contexts[static_cast<std::size_t>(r)];
      const auto i = static_cast<std::size_t>(r);
      status[i] = strategy == core::Strategy::kHp
                      ? run_rank<HpLayer>(scenario, options, c, arena, barrier, spans[i], traffic, traffic_mutex, memory[i])
                      : run_rank<EpLayer>(scenario, options, c, arena, barrier, spans[i], traffic, traffic_mutex, memory[i]);
      if (!status[i]) barrier.break_all();
    });
  }
  for (auto& t : threads) t.join();
  for (auto& ctx : contexts) {
    if (ctx.stream != nullptr) {
      cudaSetDevice(ctx.device);
      cudaStreamSynchronize(ctx.stream);
    }
  }
  // The first real failure (not a rank that stopped because another failed).
  for (const auto& s : status) {
    if (!s && s.error().code != core::ErrorCode::kCancelled) return s.error();
  }
  for (const auto& s : status) {
    if (!s) return s.error();
  }

  ExecResult result;
  result.strategy = strategy;
  result.device_name = prop.name;
  result.nccl_version = kernels::nccl_version();
  // Slowest rank's end per timed iteration; report the median iteration's timeline.
  const auto iters = static_cast<std::size_t>(options.iterations);
  std::vector<std::pair<double, std::size_t>> totals;
  for (std::size_t it = 0; it < iters; ++it) {
    std::int64_t end = 0;
    for (const auto& per_rank : spans) {
      for (const auto& s : per_rank[it]) end = std::max(end, s.end_ns);
    }
    result.iteration_us.push_back(static_cast<double>(end) / 1e3);
    totals.emplace_back(static_cast<double>(end), it);
  }
  std::sort(totals.begin(), totals.end());
  const std::size_t median = totals[totals.size() / 2].second;
  result.timeline.source = "executed";
  result.timeline.strategy = to_string(strategy);
  for (int r = 0; r < world; ++r) {
    result.timeline.ranks.push_back({r, spans[static_cast<std::size_t>(r)][median]});
  }
  result.traffic = std::move(traffic);
  result.memory.capacity_bytes = static_cast<double>(prop.totalGlobalMem);
  result.memory.ranks = std::move(memory);
  return result;
}

}  // namespace hpsim::exec
