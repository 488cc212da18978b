// Orchestration: one host thread per GPU (or, under mpirun, one process per GPU), a host barrier
// between iterations (a breakable one between threads, MPI's between processes), an in-stream NCCL
// barrier before each iteration's origin event (so that the ranks' clocks line up to a few
// microseconds), and assembly of the measured timeline, traffic and memory. Both modes run the
// same run_rank(); the MPI mode then all-gathers each rank's spans, memory and traffic row.
#include "hpsim/exec/executor.h"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <numeric>
#include <span>
#include <sstream>
#include <thread>

#include "ep_layer.h"
#include "hp_layer.h"
#include "hpsim/core/json.h"
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

// What each rank measured: its spans per timed iteration, its memory peak by part, the rows of
// the traffic matrices it posted (the other rows are zero) and, for the numerics check, host
// copies of its results after the last iteration.
struct RankMeasurements {
  std::vector<std::vector<core::Span>> spans;
  core::RankMemory memory;
  std::vector<core::TrafficMatrix> traffic;
  std::vector<detail::NumericsTensor> numerics;
};

// What one rank runs beyond its own layer: the data of `data_ranks` consecutive ranks (all W in
// the numerics check's one-GPU reference), and whether to keep its results.
struct RankRole {
  int data_ranks = 1;
  bool keep_numerics = false;
};

template <typename Layer>
core::Status run_rank(const core::Scenario& scenario, const ExecOptions& options, RankContext& ctx,
                      std::int64_t arena_bytes, const std::function<bool()>& arrive_and_wait, const RankRole& role,
                      RankMeasurements& out) {
  HPSIM_CUDA_TRY(cudaSetDevice(ctx.device));
  HPSIM_CUDA_TRY(cudaStreamCreateWithFlags(&ctx.stream, cudaStreamNonBlocking));
  auto dense = kernels::create_dense_context();
  if (!dense) return dense.error();
  ctx.dense = std::move(*dense);
  ctx.recorder = std::make_unique<StageRecorder>(ctx.stream);
  HPSIM_TRY(ctx.arena.reserve(arena_bytes, ctx.device));
  Layer layer(scenario, ctx.rank, ctx.world, options.forced_routing, options.include_backward, role.data_ranks);
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
    if (!arrive_and_wait()) {
      return core::Error{core::ErrorCode::kCancelled, "the host barrier between iterations failed (another rank stopped)"};
    }
    HPSIM_TRY(ctx.comm->all_reduce_sum(sync, sync, 1, kernels::Communicator::ReduceType::kF32, ctx.stream));
    HPSIM_TRY(ctx.recorder->begin_iteration());
    HPSIM_TRY(layer.forward(ctx));
    if (options.include_backward) HPSIM_TRY(layer.backward(ctx));
    HPSIM_TRY(ctx.comm->wait(ctx.stream, fmt::format("iteration {} of the {} layer", it, to_string(scenario.parallel.strategy))));
    if (it >= options.warmup_iterations) {
      auto spans = ctx.recorder->spans();
      if (!spans) return spans.error();
      out.spans.push_back(std::move(*spans));
    }
  }
  layer.add_traffic(out.traffic);
  out.memory = ctx.arena.peak_by_part(ctx.rank);
  if (role.keep_numerics) {
    auto numerics = layer.numerics();
    if (!numerics) return numerics.error();
    out.numerics = std::move(*numerics);
  }
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

namespace {

// The GPUs one process drives for a world of `world` ranks: options.devices, or 0 .. W-1.
core::Expected<std::vector<int>> local_devices(const ExecOptions& options, int world, int visible) {
  std::vector<int> devices = options.devices;
  if (devices.empty()) {
    devices.resize(static_cast<std::size_t>(world));
    std::iota(devices.begin(), devices.end(), 0);
  }
  if (static_cast<int>(devices.size()) != world) {
    return core::Error::field("devices", fmt::format("lists {} GPUs but parallel.num_ranks is {}", devices.size(), world));
  }
  if (visible < world) {
    return core::Error{core::ErrorCode::kNoDevice,
                       fmt::format("parallel.num_ranks is {} but only {} GPU(s) are visible", world, visible)};
  }
  return devices;
}

// Checks that every listed GPU has room for the layer's arena.
core::Status check_fits(core::Strategy strategy, std::int64_t arena, std::span<const int> devices) {
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
  return core::Status::ok();
}

core::Status run_one_rank(const core::Scenario& scenario, core::Strategy strategy, const ExecOptions& options,
                          RankContext& ctx, std::int64_t arena, const std::function<bool()>& arrive_and_wait,
                          const RankRole& role, RankMeasurements& out) {
  return strategy == core::Strategy::kHp
             ? run_rank<HpLayer>(scenario, options, ctx, arena, arrive_and_wait, role, out)
             : run_rank<EpLayer>(scenario, options, ctx, arena, arrive_and_wait, role, out);
}

// One process, one host thread per GPU.
core::Expected<std::vector<RankMeasurements>> run_threads(const core::Scenario& scenario, core::Strategy strategy,
                                                          const ExecOptions& options, std::span<const int> devices,
                                                          std::int64_t arena, const RankRole& role = {}) {
  const int world = static_cast<int>(devices.size());
  auto comms = kernels::create_local_communicators(devices, kernels::CommOptions{options.timeout});
  if (!comms) return comms.error();
  std::vector<RankContext> contexts(static_cast<std::size_t>(world));
  std::vector<RankMeasurements> measured(static_cast<std::size_t>(world));
  std::vector<core::Status> status(static_cast<std::size_t>(world));
  BreakableBarrier barrier(world);
  const std::function<bool()> arrive = [&barrier] { return barrier.arrive_and_wait(); };
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r) {
    auto& ctx = contexts[static_cast<std::size_t>(r)];
    ctx.rank = r;
    ctx.world = world;
    ctx.device = devices[static_cast<std::size_t>(r)];
    ctx.comm = (*comms)[static_cast<std::size_t>(r)].get();
    measured[static_cast<std::size_t>(r)].traffic = empty_traffic(strategy, world, options.include_backward);
    threads.emplace_back([&, r] {
      const auto i = static_cast<std::size_t>(r);
      status[i] = run_one_rank(scenario, strategy, options, contexts[i], arena, arrive, role, measured[i]);
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
  for (const auto& st : status) {
    if (!st && st.error().code != core::ErrorCode::kCancelled) return st.error();
  }
  for (const auto& st : status) {
    if (!st) return st.error();
  }
  return measured;
}

// A rank's measurements as text for the MPI all-gather: one line of numbers (the memory parts,
// then every traffic matrix's row of this rank), then the spans as a Timeline whose "ranks" are
// the timed iterations.
std::string pack(const RankMeasurements& m, int rank, int world) {
  std::string text;
  const auto& mem = m.memory;
  for (double v : {mem.weights, mem.gradients, mem.optimizer, mem.activations, mem.comm_buffers, mem.workspace}) {
    text += fmt::format("{:.17g} ", v);
  }
  for (const auto& matrix : m.traffic) {
    for (int peer = 0; peer < world; ++peer) text += fmt::format("{:.17g} ", matrix.at(rank, peer));
  }
  text += "\n";
  core::Timeline iterations;
  for (std::size_t it = 0; it < m.spans.size(); ++it) {
    iterations.ranks.push_back({static_cast<std::int64_t>(it), m.spans[it]});
  }
  return text + core::to_json(iterations);
}

core::Status unpack(const std::string& text, int rank, int world, RankMeasurements& m) {
  const auto newline = text.find('\n');
  const auto bad = [&](const std::string& what) {
    return core::Error{core::ErrorCode::kInternal, fmt::format("the measurements gathered from rank {}: {}", rank, what)};
  };
  if (newline == std::string::npos) return bad("no numbers line");
  std::istringstream numbers(text.substr(0, newline));
  auto& mem = m.memory;
  mem.rank = rank;
  for (double* v : {&mem.weights, &mem.gradients, &mem.optimizer, &mem.activations, &mem.comm_buffers, &mem.workspace}) {
    if (!(numbers >> *v)) return bad("too few memory parts");
  }
  for (auto& matrix : m.traffic) {
    for (int peer = 0; peer < world; ++peer) {
      if (!(numbers >> matrix.at(rank, peer))) return bad("too few traffic entries");
    }
  }
  auto iterations = core::parse_timeline(std::string_view(text).substr(newline + 1));
  if (!iterations) return bad(iterations.error().message);
  m.spans.clear();
  for (auto& it : iterations->ranks) m.spans.push_back(std::move(it.spans));
  return core::Status::ok();
}

// One process per GPU under mpirun: this process runs its own rank; every process gets all.
core::Expected<std::vector<RankMeasurements>> run_mpi_rank(const core::Scenario& scenario, core::Strategy strategy,
                                                           const ExecOptions& options, const kernels::MpiProcess& process,
                                                           int device, std::int64_t arena) {
  const int world = static_cast<int>(scenario.parallel.num_ranks);
  auto comm = kernels::create_mpi_communicator(device, kernels::CommOptions{options.timeout});
  if (!comm) return comm.error();
  RankContext ctx;
  ctx.rank = process.rank;
  ctx.world = world;
  ctx.device = device;
  ctx.comm = comm->get();
  RankMeasurements mine;
  mine.traffic = empty_traffic(strategy, world, options.include_backward);
  const std::function<bool()> arrive = [] { return kernels::mpi_barrier().is_ok(); };
  const core::Status status = run_one_rank(scenario, strategy, options, ctx, arena, arrive, RankRole{}, mine);
  if (!status) {
    // The caller ends the job; pending collectives may wait for peers that will never come, so
    // stop them rather than wait for the stream.
    (*comm)->abort();
    return core::Error{status.error().code, fmt::format("rank {}: {}", process.rank, status.error().message)};
  }
  HPSIM_CUDA_TRY(cudaSetDevice(ctx.device));
  HPSIM_CUDA_TRY(cudaStreamSynchronize(ctx.stream));
  auto gathered = kernels::mpi_all_gather(pack(mine, process.rank, world));
  if (!gathered) return gathered.error();
  std::vector<RankMeasurements> measured(static_cast<std::size_t>(world));
  for (int r = 0; r < world; ++r) {
    auto& m = measured[static_cast<std::size_t>(r)];
    m.traffic = empty_traffic(strategy, world, options.include_backward);
    HPSIM_TRY(unpack((*gathered)[static_cast<std::size_t>(r)], r, world, m));
  }
  return measured;
}

}  // namespace

core::Expected<ExecResult> execute_layer(const core::Scenario& scenario_in, core::Strategy strategy,
                                         const ExecOptions& options) {
  core::Scenario scenario = scenario_in;
  scenario.parallel.strategy = strategy;
  HPSIM_TRY(core::validate(scenario));
  if (options.iterations < 1 || options.warmup_iterations < 0) {
    return core::Error::field("iterations", "needs at least one timed iteration and no negative warm-up");
  }
  const int world = static_cast<int>(scenario.parallel.num_ranks);
  const int visible = kernels::visible_device_count();
  if (visible == 0) return core::Error{core::ErrorCode::kNoDevice, "execute needs a GPU and none is visible"};
  // The GPUs this process drives: all W of them, or under MPI its own one.
  std::vector<int> devices = options.devices;
  kernels::MpiProcess process;
  if (options.mpi) {
    auto started = kernels::mpi_start();
    if (!started) return started.error();
    process = *started;
    if (process.size != world) {
      return core::Error::field("parallel.num_ranks", fmt::format("is {} but mpirun started {} process(es); start "
                                                                  "one per rank",
                                                                  world, process.size));
    }
    if (devices.size() > 1) return core::Error::field("devices", "under MPI, lists at most this process's one GPU");
    if (devices.empty()) devices.push_back(process.local_rank);
    if (devices[0] >= visible) {
      return core::Error{core::ErrorCode::kNoDevice,
                         fmt::format("rank {} needs GPU {} of this node but only {} GPU(s) are visible", process.rank,
                                     devices[0], visible)};
    }
  } else {
    auto local = local_devices(options, world, visible);
    if (!local) return local.error();
    devices = std::move(*local);
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
  HPSIM_TRY(check_fits(strategy, arena, devices));
  if (options.progress) {
    options.progress(fmt::format("{} layer on {} x {}{}: {:.2f} GB per GPU, {} warm-up + {} timed iterations",
                                 to_string(strategy), world, prop.name, options.mpi ? " (one process per GPU)" : "",
                                 static_cast<double>(arena) / 1e9, options.warmup_iterations, options.iterations));
  }
  auto measured = options.mpi ? run_mpi_rank(scenario, strategy, options, process, devices[0], arena)
                              : run_threads(scenario, strategy, options, devices, arena);
  if (!measured) return measured.error();

  ExecResult result;
  result.strategy = strategy;
  result.device_name = prop.name;
  result.nccl_version = kernels::nccl_version();
  // Slowest rank's end per timed iteration; report the median iteration's timeline.
  const auto iters = static_cast<std::size_t>(options.iterations);
  std::vector<std::pair<double, std::size_t>> totals;
  for (std::size_t it = 0; it < iters; ++it) {
    std::int64_t end = 0;
    for (const auto& rank : *measured) {
      for (const auto& sp : rank.spans[it]) end = std::max(end, sp.end_ns);
    }
    result.iteration_us.push_back(static_cast<double>(end) / 1e3);
    totals.emplace_back(static_cast<double>(end), it);
  }
  std::sort(totals.begin(), totals.end());
  const std::size_t median = totals[totals.size() / 2].second;
  result.timeline.source = "executed";
  result.timeline.strategy = to_string(strategy);
  result.traffic = empty_traffic(strategy, world, options.include_backward);
  for (int r = 0; r < world; ++r) {
    const auto& rank = (*measured)[static_cast<std::size_t>(r)];
    result.timeline.ranks.push_back({r, rank.spans[median]});
    for (std::size_t m = 0; m < result.traffic.size(); ++m) {
      for (int peer = 0; peer < world; ++peer) result.traffic[m].at(r, peer) = rank.traffic[m].at(r, peer);
    }
    result.memory.ranks.push_back(rank.memory);
  }
  result.memory.capacity_bytes = static_cast<double>(prop.totalGlobalMem);
  return result;
}

core::Expected<NumericsReport> check_numerics(const core::Scenario& scenario_in, core::Strategy strategy,
                                              const ExecOptions& options) {
  core::Scenario scenario = scenario_in;
  scenario.parallel.strategy = strategy;
  HPSIM_TRY(core::validate(scenario));
  if (options.mpi) return core::Error::field("mpi", "the numerics check runs from one process driving every GPU");
  if (!options.forced_routing) {
    return core::Error::field("forced_routing", "the numerics check needs forced routing: the router's own choices "
                                                "may differ between the two runs where two experts' scores tie");
  }
  const int world = static_cast<int>(scenario.parallel.num_ranks);
  const int visible = kernels::visible_device_count();
  if (visible == 0) return core::Error{core::ErrorCode::kNoDevice, "the numerics check needs a GPU and none is visible"};
  auto local = local_devices(options, world, visible);
  if (!local) return local.error();
  const std::vector<int> devices = std::move(*local);
  // The same layer on one GPU: every rank's tokens, heads and experts, filled and routed as the
  // W ranks fill and route them.
  core::Scenario one_gpu = scenario;
  one_gpu.workload.tokens_per_rank *= world;
  one_gpu.parallel.num_ranks = 1;
  HPSIM_TRY(core::validate(one_gpu));
  const std::int64_t arena = arena_bytes_needed(scenario, strategy, options.include_backward);
  const std::int64_t one_arena = arena_bytes_needed(one_gpu, strategy, options.include_backward);
  HPSIM_TRY(check_fits(strategy, arena, devices));
  HPSIM_TRY(check_fits(strategy, one_arena, std::span<const int>(devices).first(1)));
  ExecOptions once = options;
  once.iterations = 1;
  once.warmup_iterations = 0;
  auto sharded = run_threads(scenario, strategy, once, devices, arena, RankRole{1, true});
  if (!sharded) return sharded.error();
  auto reference = run_threads(one_gpu, strategy, once, std::span<const int>(devices).first(1), one_arena,
                               RankRole{world, true});
  if (!reference) return reference.error();

  NumericsReport report;
  report.strategy = strategy;
  report.ranks = world;
  const auto& expected = reference->front().numerics;
  for (std::size_t t = 0; t < expected.size(); ++t) {
    const auto& want = expected[t];
    // The W ranks' pieces: concatenated in rank order, or added where each rank holds a partial sum.
    std::vector<double> got;
    for (const auto& rank : *sharded) {
      if (t >= rank.numerics.size() || rank.numerics[t].name != want.name) {
        return core::Error{core::ErrorCode::kInternal, fmt::format("numerics check: rank results lack {}", want.name)};
      }
      const auto& piece = rank.numerics[t].values;
      if (!want.summed_over_ranks) {
        got.insert(got.end(), piece.begin(), piece.end());
      } else if (got.empty()) {
        got = piece;
      } else {
        for (std::size_t i = 0; i < got.size(); ++i) got[i] += piece[i];
      }
    }
    if (got.size() != want.values.size()) {
      return core::Error{core::ErrorCode::kInternal,
                         fmt::format("numerics check: {} has {} values on W GPUs, {} on one", want.name, got.size(),
                                     want.values.size())};
    }
    NumericsDifference diff;
    diff.tensor = want.name;
    diff.count = static_cast<std::int64_t>(got.size());
    diff.summed_over_ranks = want.summed_over_ranks;
    double err2 = 0, ref2 = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
      const double e = got[i] - want.values[i];
      err2 += e * e;
      ref2 += want.values[i] * want.values[i];
      diff.max_abs = std::max(diff.max_abs, std::abs(e));
    }
    diff.relative_l2 = ref2 > 0 ? std::sqrt(err2 / ref2) : std::sqrt(err2);
    report.tensors.push_back(diff);
  }
  return report;
}

}  // namespace hpsim::exec
