// NCCL communicators and collectives (see comm.h).
#include "hpsim/kernels/comm.h"

#include <cstdlib>
#include <limits>
#include <thread>

#include <cuda_runtime.h>
#include <nccl.h>

#if HPSIM_HAVE_MPI
#include <mpi.h>
#endif

namespace hpsim::kernels {
namespace {

core::Error nccl_error(ncclResult_t result, const char* statement, int device) {
  return core::Error{core::ErrorCode::kNccl,
                     fmt::format("{} failed on device {}: {} ({})", statement, device, ncclGetErrorString(result),
                                 static_cast<int>(result))};
}

core::Error cuda_error(cudaError_t result, const char* statement, int device) {
  return core::Error{core::ErrorCode::kCuda,
                     fmt::format("{} failed on device {}: {}", statement, device, cudaGetErrorString(result))};
}

#define HPSIM_COMM_NCCL(expr)                                           \
  do {                                                                  \
    ncclResult_t hpsim_nccl_result_ = (expr);                           \
    if (hpsim_nccl_result_ != ncclSuccess && hpsim_nccl_result_ != ncclInProgress) \
      return nccl_error(hpsim_nccl_result_, #expr, device_);            \
  } while (0)

#define HPSIM_COMM_CUDA(expr)                                           \
  do {                                                                  \
    cudaError_t hpsim_cuda_result_ = (expr);                            \
    if (hpsim_cuda_result_ != cudaSuccess) return cuda_error(hpsim_cuda_result_, #expr, device_); \
  } while (0)

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(ncclComm_t comm, int rank, int size, int device, CommOptions options)
      : comm_(comm), rank_(rank), size_(size), device_(device), options_(options) {}

  ~NcclCommunicator() override {
    if (comm_ == nullptr) return;
    cudaSetDevice(device_);
    if (aborted_) return;  // ncclCommAbort already freed it
    ncclCommDestroy(comm_);
  }

  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int device() const override { return device_; }
  const CommOptions& options() const override { return options_; }
  bool is_aborted() const override { return aborted_; }
  void abort() override { abort_comm(); }

  core::Status all_to_all(const void* send, void* recv, std::int64_t bytes_per_peer, cudaStream_t stream) override {
    HPSIM_TRY(usable("all_to_all"));
    if (bytes_per_peer < 0) return core::Error::field("bytes_per_peer", "must be >= 0");
    HPSIM_COMM_CUDA(cudaSetDevice(device_));
    const auto* s = static_cast<const std::uint8_t*>(send);
    auto* r = static_cast<std::uint8_t*>(recv);
    if (size_ == 1) {
      // No peer: the block stays on the device (one copy, no NCCL kernel).
      if (bytes_per_peer > 0) {
        HPSIM_COMM_CUDA(cudaMemcpyAsync(r, s, static_cast<std::size_t>(bytes_per_peer), cudaMemcpyDeviceToDevice, stream));
      }
      return core::Status::ok();
    }
    HPSIM_COMM_NCCL(ncclGroupStart());
    for (int peer = 0; peer < size_; ++peer) {
      const auto off = static_cast<std::size_t>(peer) * static_cast<std::size_t>(bytes_per_peer);
      if (bytes_per_peer == 0) continue;
      HPSIM_COMM_NCCL(ncclSend(s + off, static_cast<std::size_t>(bytes_per_peer), ncclUint8, peer, comm_, stream));
      HPSIM_COMM_NCCL(ncclRecv(r + off, static_cast<std::size_t>(bytes_per_peer), ncclUint8, peer, comm_, stream));
    }
    HPSIM_COMM_NCCL(ncclGroupEnd());
    return core::Status::ok();
  }

  core::Status all_to_all_v(const void* send,
                            std::span<const std::int64_t> send_bytes,
                            std::span<const std::int64_t> send_offsets,
                            void* recv,
                            std::span<const std::int64_t> recv_bytes,
                            std::span<const std::int64_t> recv_offsets,
                            cudaStream_t stream) override {
    HPSIM_TRY(usable("all_to_all_v"));
    const auto w = static_cast<std::size_t>(size_);
    if (send_bytes.size() != w || send_offsets.size() != w || recv_bytes.size() != w || recv_offsets.size() != w) {
      return core::Error::field("all_to_all_v", fmt::format("needs {} counts and offsets per direction", size_));
    }
    HPSIM_COMM_CUDA(cudaSetDevice(device_));
    const auto* s = static_cast<const std::uint8_t*>(send);
    auto* r = static_cast<std::uint8_t*>(recv);
    if (size_ == 1) {
      if (send_bytes[0] != recv_bytes[0] || send_bytes[0] < 0) {
        return core::Error::field("all_to_all_v", "with one rank, the bytes sent to and received from itself must match");
      }
      if (send_bytes[0] > 0) {
        HPSIM_COMM_CUDA(cudaMemcpyAsync(r + recv_offsets[0], s + send_offsets[0], static_cast<std::size_t>(send_bytes[0]),
                                        cudaMemcpyDeviceToDevice, stream));
      }
      return core::Status::ok();
    }
    HPSIM_COMM_NCCL(ncclGroupStart());
    for (std::size_t peer = 0; peer < w; ++peer) {
      if (send_bytes[peer] < 0 || recv_bytes[peer] < 0) {
        ncclGroupEnd();
        return core::Error::field("all_to_all_v", fmt::format("negative byte count for peer {}", peer));
      }
      if (send_bytes[peer] > 0) {
        HPSIM_COMM_NCCL(ncclSend(s + send_offsets[peer], static_cast<std::size_t>(send_bytes[peer]), ncclUint8,
                                 static_cast<int>(peer), comm_, stream));
      }
      if (recv_bytes[peer] > 0) {
        HPSIM_COMM_NCCL(ncclRecv(r + recv_offsets[peer], static_cast<std::size_t>(recv_bytes[peer]), ncclUint8,
                                 static_cast<int>(peer), comm_, stream));
      }
    }
    HPSIM_COMM_NCCL(ncclGroupEnd());
    return core::Status::ok();
  }

  core::Status all_gather(const void* send, void* recv, std::int64_t bytes, cudaStream_t stream) override {
    HPSIM_TRY(usable("all_gather"));
    HPSIM_COMM_CUDA(cudaSetDevice(device_));
    HPSIM_COMM_NCCL(ncclAllGather(send, recv, static_cast<std::size_t>(bytes), ncclUint8, comm_, stream));
    return core::Status::ok();
  }

  core::Status all_reduce_sum(const void* send, void* recv, std::int64_t count, ReduceType type,
                              cudaStream_t stream) override {
    HPSIM_TRY(usable("all_reduce"));
    HPSIM_COMM_CUDA(cudaSetDevice(device_));
    const ncclDataType_t dt = type == ReduceType::kF32 ? ncclFloat32 : ncclBfloat16;
    HPSIM_COMM_NCCL(ncclAllReduce(send, recv, static_cast<std::size_t>(count), dt, ncclSum, comm_, stream));
    return core::Status::ok();
  }

  core::Status wait(cudaStream_t stream, const std::string& what) override {
    HPSIM_TRY(usable(what));
    HPSIM_COMM_CUDA(cudaSetDevice(device_));
    const auto start = std::chrono::steady_clock::now();
    auto sleep = std::chrono::microseconds(5);
    while (true) {
      const cudaError_t q = cudaStreamQuery(stream);
      if (q == cudaSuccess) return core::Status::ok();
      if (q != cudaErrorNotReady) return cuda_error(q, "cudaStreamQuery", device_);
      ncclResult_t async = ncclSuccess;
      HPSIM_COMM_NCCL(ncclCommGetAsyncError(comm_, &async));
      if (async != ncclSuccess && async != ncclInProgress) {
        abort_comm();
        return core::Error{core::ErrorCode::kNccl,
                           fmt::format("{} failed on rank {} of {} (device {}): {}; communicator aborted", what, rank_,
                                       size_, device_, ncclGetErrorString(async))};
      }
      if (std::chrono::steady_clock::now() - start > options_.timeout) {
        abort_comm();
        return core::Error{core::ErrorCode::kTimeout,
                           fmt::format("{} did not finish within {} ms on rank {} of {} (device {}); waiting for "
                                       "peers among ranks 0..{}; communicator aborted",
                                       what, options_.timeout.count(), rank_, size_, device_, size_ - 1)};
      }
      std::this_thread::sleep_for(sleep);
      if (sleep < std::chrono::microseconds(500)) sleep *= 2;
    }
  }

 private:
  core::Status usable(const std::string& what) const {
    if (aborted_) {
      return core::Error{core::ErrorCode::kNccl,
                         fmt::format("{} on rank {}: the communicator was aborted after an earlier failure", what, rank_)};
    }
    return core::Status::ok();
  }

  void abort_comm() {
    if (!aborted_) {
      ncclCommAbort(comm_);
      aborted_ = true;
    }
  }

  ncclComm_t comm_;
  int rank_;
  int size_;
  int device_;
  CommOptions options_;
  bool aborted_ = false;
};

}  // namespace

std::string nccl_version() {
  int v = 0;
  if (ncclGetVersion(&v) != ncclSuccess) return "unknown";
  // NCCL >= 2.9 encodes major*10000 + minor*100 + patch.
  return fmt::format("{}.{}.{}", v / 10000, (v / 100) % 100, v % 100);
}

int visible_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return n;
}

namespace {

// NCCL connects a rank to its peers lazily, on a collective's first use, and that first call
// blocks on the host until every peer has made it too: beyond any timeout of wait(). Making the
// connections here — an all-to-all (a connection to every peer), an all-reduce and an all-gather
// (the ring), every rank in one group from this thread, or this process's rank under MPI — leaves
// the later calls only enqueueing kernels, whose waits time out when a peer never joins. The
// all-to-all is as large as the executor's (megabytes per peer), so every channel is connected.
core::Status connect_peers(std::span<NcclCommunicator* const> comms) {
  constexpr std::int64_t kPerPeer = 4 << 20;
  struct Buffers {
    void* send = nullptr;
    void* recv = nullptr;
    cudaStream_t stream = nullptr;
  };
  std::vector<Buffers> buffers(comms.size());
  core::Status status = core::Status::ok();
  auto check = [&](cudaError_t e, int device) {
    if (e != cudaSuccess && status) status = cuda_error(e, "allocating the connection warm-up", device);
    return static_cast<bool>(status);
  };
  for (std::size_t i = 0; i < comms.size() && status; ++i) {
    // The contents do not matter: only the connections the calls make.
    const auto bytes = static_cast<std::size_t>(kPerPeer * comms[i]->size());
    const int device = comms[i]->device();
    check(cudaSetDevice(device), device) && check(cudaMalloc(&buffers[i].send, bytes), device) &&
        check(cudaMalloc(&buffers[i].recv, bytes), device) &&
        check(cudaStreamCreateWithFlags(&buffers[i].stream, cudaStreamNonBlocking), device);
  }
  using Op = core::Status (*)(Communicator&, Buffers&);
  const Op ops[] = {
      [](Communicator& c, Buffers& b) { return c.all_to_all(b.send, b.recv, kPerPeer, b.stream); },
      [](Communicator& c, Buffers& b) {
        return c.all_reduce_sum(b.send, b.recv, kPerPeer / 4, Communicator::ReduceType::kF32, b.stream);
      },
      // The executor's per-iteration barrier: a one-value all-reduce (NCCL may pick another
      // algorithm, with its own connections, for small sizes).
      [](Communicator& c, Buffers& b) {
        return c.all_reduce_sum(b.send, b.recv, 1, Communicator::ReduceType::kF32, b.stream);
      },
      [](Communicator& c, Buffers& b) { return c.all_gather(b.send, b.recv, kPerPeer, b.stream); }};
  for (Op op : ops) {
    if (!status) break;
    ncclGroupStart();
    for (std::size_t i = 0; i < comms.size() && status; ++i) status = op(*comms[i], buffers[i]);
    if (const ncclResult_t r = ncclGroupEnd(); r != ncclSuccess && status) {
      status = nccl_error(r, "ncclGroupEnd (connecting to the peers)", comms.front()->device());
    }
  }
  for (std::size_t i = 0; i < comms.size() && status; ++i) status = comms[i]->wait(buffers[i].stream, "connecting to the peers");
  if (!status) {
    // Pending work may wait for a peer that is gone: abort every communicator (its kernels end)
    // and leave the buffers to process exit rather than synchronise with them.
    for (auto* c : comms) c->abort();
    return status;
  }
  for (std::size_t i = 0; i < comms.size(); ++i) {
    cudaSetDevice(comms[i]->device());
    cudaFree(buffers[i].send);
    cudaFree(buffers[i].recv);
    cudaStreamDestroy(buffers[i].stream);
  }
  return status;
}

}  // namespace

core::Expected<std::vector<std::unique_ptr<Communicator>>> create_local_communicators(std::span<const int> devices,
                                                                                      const CommOptions& options) {
  const int available = visible_device_count();
  if (available == 0) return core::Error{core::ErrorCode::kNoDevice, "no CUDA device is visible"};
  if (devices.empty()) return core::Error::field("devices", "must list at least one GPU");
  for (int d : devices) {
    if (d < 0 || d >= available) {
      return core::Error{core::ErrorCode::kNoDevice,
                         fmt::format("GPU {} requested but only {} visible", d, available)};
    }
  }
  std::vector<ncclComm_t> comms(devices.size(), nullptr);
  const ncclResult_t r = ncclCommInitAll(comms.data(), static_cast<int>(devices.size()), devices.data());
  if (r != ncclSuccess) return nccl_error(r, "ncclCommInitAll", devices[0]);
  std::vector<std::unique_ptr<Communicator>> out;
  std::vector<NcclCommunicator*> made;
  for (std::size_t i = 0; i < devices.size(); ++i) {
    auto c = std::make_unique<NcclCommunicator>(comms[i], static_cast<int>(i), static_cast<int>(devices.size()),
                                                devices[i], options);
    made.push_back(c.get());
    out.push_back(std::move(c));
  }
  if (devices.size() > 1) HPSIM_TRY(connect_peers(made));
  return out;
}

namespace {

int launcher_size() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"}) {
    if (const char* v = std::getenv(name); v != nullptr && *v != '\0') return std::atoi(v);
  }
  return 0;
}

#if HPSIM_HAVE_MPI
bool g_mpi_started_here = false;
MpiProcess g_mpi_process;
#endif

[[maybe_unused]] core::Error no_mpi() {
  return core::Error{core::ErrorCode::kUnsupported,
                     "this build has no MPI support (configure with HPSIM_WITH_MPI=ON and Open MPI installed)"};
}

}  // namespace

bool has_mpi_support() { return HPSIM_HAVE_MPI != 0; }

core::Expected<std::unique_ptr<Communicator>> create_mpi_communicator(int local_device, const CommOptions& options) {
#if HPSIM_HAVE_MPI
  int initialised = 0;
  MPI_Initialized(&initialised);
  if (!initialised) return core::Error{core::ErrorCode::kInternal, "MPI is not initialised (call MPI_Init first)"};
  int rank = 0, size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (local_device < 0 || local_device >= visible_device_count()) {
    return core::Error{core::ErrorCode::kNoDevice, fmt::format("rank {}: GPU {} is not visible", rank, local_device)};
  }
  ncclUniqueId id;
  if (rank == 0) {
    if (ncclResult_t r = ncclGetUniqueId(&id); r != ncclSuccess) return nccl_error(r, "ncclGetUniqueId", local_device);
  }
  MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, MPI_COMM_WORLD);
  if (cudaError_t e = cudaSetDevice(local_device); e != cudaSuccess) return cuda_error(e, "cudaSetDevice", local_device);
  ncclComm_t comm = nullptr;
  if (ncclResult_t r = ncclCommInitRank(&comm, size, id, rank); r != ncclSuccess) {
    return nccl_error(r, "ncclCommInitRank", local_device);
  }
  auto made = std::make_unique<NcclCommunicator>(comm, rank, size, local_device, options);
  if (size > 1) {
    NcclCommunicator* mine[] = {made.get()};
    HPSIM_TRY(connect_peers(mine));
  }
  return std::unique_ptr<Communicator>(std::move(made));
#else
  (void)local_device;
  (void)options;
  return no_mpi();
#endif
}

bool started_by_mpirun() { return launcher_size() > 1; }

core::Expected<MpiProcess> mpi_start() {
#if HPSIM_HAVE_MPI
  int initialised = 0;
  MPI_Initialized(&initialised);
  if (initialised) {
    if (!g_mpi_started_here) {
      // Initialised by the caller: read the world, do not own it.
      MPI_Comm_rank(MPI_COMM_WORLD, &g_mpi_process.rank);
      MPI_Comm_size(MPI_COMM_WORLD, &g_mpi_process.size);
    }
  } else {
    if (MPI_Init(nullptr, nullptr) != MPI_SUCCESS) return core::Error{core::ErrorCode::kInternal, "MPI_Init failed"};
    g_mpi_started_here = true;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_mpi_process.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_mpi_process.size);
  }
  MPI_Comm node = MPI_COMM_NULL;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g_mpi_process.rank, MPI_INFO_NULL, &node);
  MPI_Comm_rank(node, &g_mpi_process.local_rank);
  MPI_Comm_free(&node);
  return g_mpi_process;
#else
  return no_mpi();
#endif
}

void mpi_finish() {
#if HPSIM_HAVE_MPI
  int finalised = 0;
  MPI_Finalized(&finalised);
  if (g_mpi_started_here && !finalised) MPI_Finalize();
#endif
}

core::Status mpi_barrier() {
#if HPSIM_HAVE_MPI
  if (MPI_Barrier(MPI_COMM_WORLD) != MPI_SUCCESS) return core::Error{core::ErrorCode::kInternal, "MPI_Barrier failed"};
  return core::Status::ok();
#else
  return no_mpi();
#endif
}

core::Expected<std::vector<std::string>> mpi_all_gather(const std::string& mine) {
#if HPSIM_HAVE_MPI
  if (mine.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    return core::Error{core::ErrorCode::kInternal, "MPI all-gather of more than 2 GB from one rank"};
  }
  int size = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const int my_len = static_cast<int>(mine.size());
  std::vector<int> lengths(static_cast<std::size_t>(size));
  if (MPI_Allgather(&my_len, 1, MPI_INT, lengths.data(), 1, MPI_INT, MPI_COMM_WORLD) != MPI_SUCCESS) {
    return core::Error{core::ErrorCode::kInternal, "MPI_Allgather of the lengths failed"};
  }
  std::vector<int> offsets(static_cast<std::size_t>(size));
  std::int64_t total = 0;
  for (std::size_t i = 0; i < lengths.size(); ++i) {
    offsets[i] = static_cast<int>(total);
    total += lengths[i];
  }
  if (total > std::numeric_limits<int>::max()) {
    return core::Error{core::ErrorCode::kInternal, "MPI all-gather of more than 2 GB"};
  }
  std::string all(static_cast<std::size_t>(total), '\0');
  if (MPI_Allgatherv(mine.data(), my_len, MPI_CHAR, all.data(), lengths.data(), offsets.data(), MPI_CHAR,
                     MPI_COMM_WORLD) != MPI_SUCCESS) {
    return core::Error{core::ErrorCode::kInternal, "MPI_Allgatherv failed"};
  }
  std::vector<std::string> out;
  for (std::size_t i = 0; i < lengths.size(); ++i) {
    out.push_back(all.substr(static_cast<std::size_t>(offsets[i]), static_cast<std::size_t>(lengths[i])));
  }
  return out;
#else
  (void)mine;
  return no_mpi();
#endif
}

void mpi_abort(int exit_code) {
#if HPSIM_HAVE_MPI
  int initialised = 0;
  MPI_Initialized(&initialised);
  if (initialised) MPI_Abort(MPI_COMM_WORLD, exit_code);
#endif
  std::_Exit(exit_code);
}

}  // namespace hpsim::kernels
