#pragma once
// NCCL communication for the executor and calibration: communicators and the four collectives
// both MoE layers need. Host-only header; NCCL types stay in kernels/src/comm.cpp.
//
// Two ways to build the ranks (DESIGN.md section 6), the same code above them:
//  - one process driving all local GPUs: create_local_communicators() (ncclCommInitAll); the
//    caller runs each rank from its own host thread;
//  - one process per GPU under mpirun: create_mpi_communicator() (NCCL unique id broadcast over
//    MPI), only in builds with HPSIM_WITH_MPI.
//
// With one rank the two all-to-alls are a device-to-device copy of the rank's own block (what a
// one-GPU layer must do at least), not an NCCL call; all-gather and all-reduce go through NCCL.
//
// Nothing hangs forever: every collective is followed by wait(), which polls the stream and
// NCCL's asynchronous error state; past the timeout it aborts the communicator and returns an
// Error naming the collective and the ranks. The communicators connect every peer when they are
// made (NCCL would otherwise do it on a collective's first use, blocking on the host until the
// peers join, where no timeout reaches), so later calls only enqueue kernels.

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "hpsim/core/error.h"

namespace hpsim::kernels {

struct CommOptions {
  std::chrono::milliseconds timeout{std::chrono::seconds(120)};
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual int device() const = 0;

  // All-to-all with equal splits: `bytes_per_peer` bytes from send + p*bytes_per_peer go to
  // peer p, and land at recv + q*bytes_per_peer from peer q. Bytes must be a multiple of 2.
  virtual core::Status all_to_all(const void* send, void* recv, std::int64_t bytes_per_peer, cudaStream_t stream) = 0;

  // All-to-all-v from per-peer byte counts and offsets (grouped send/receive). Zero counts are
  // allowed (nothing is posted for that peer).
  virtual core::Status all_to_all_v(const void* send,
                                    std::span<const std::int64_t> send_bytes,
                                    std::span<const std::int64_t> send_offsets,
                                    void* recv,
                                    std::span<const std::int64_t> recv_bytes,
                                    std::span<const std::int64_t> recv_offsets,
                                    cudaStream_t stream) = 0;

  // All-gather of `bytes` from every rank into recv (rank order).
  virtual core::Status all_gather(const void* send, void* recv, std::int64_t bytes, cudaStream_t stream) = 0;

  // Sum all-reduce of `count` floats (fp32) or bf16 values.
  enum class ReduceType { kF32, kBf16 };
  virtual core::Status all_reduce_sum(const void* send, void* recv, std::int64_t count, ReduceType type,
                                      cudaStream_t stream) = 0;

  // Waits for the work enqueued on `stream`, polling NCCL's async errors; aborts the
  // communicator after options().timeout. `what` names the operation in the error.
  virtual core::Status wait(cudaStream_t stream, const std::string& what) = 0;

  virtual const CommOptions& options() const = 0;
  virtual bool is_aborted() const = 0;
  // Ends the communicator now: its pending kernels stop; later calls return an error.
  virtual void abort() = 0;
};

// The NCCL version this build runs with, as "major.minor.patch".
std::string nccl_version();

// One communicator per listed device, all in this process (ncclCommInitAll).
core::Expected<std::vector<std::unique_ptr<Communicator>>> create_local_communicators(std::span<const int> devices,
                                                                                      const CommOptions& options);

// Whether this build can create MPI communicators.
bool has_mpi_support();

// One communicator for this MPI rank on device `local_device`. MPI must be initialised by the
// caller (MPI_Init) and stays owned by it.
core::Expected<std::unique_ptr<Communicator>> create_mpi_communicator(int local_device, const CommOptions& options);

// The host side of the one-process-per-GPU mode: MPI's world as this process sees it, a host
// barrier and an all-gather of byte strings (the executor gathers every rank's measurements with
// it). Only builds with HPSIM_WITH_MPI can start MPI; elsewhere mpi_start() is an error and
// started_by_mpirun() still answers, so a command can say what is missing.
struct MpiProcess {
  int rank = 0;
  int size = 1;
  int local_rank = 0;  // among the processes on this node: the GPU it takes by default
};

// Whether a launcher (mpirun, srun) started this process as one of several: reads the launcher's
// environment (OMPI_COMM_WORLD_SIZE, PMI_SIZE, PMIX_SIZE), never MPI itself.
bool started_by_mpirun();

// Initialises MPI once per process (later calls return the same world); the local rank comes from
// the processes that share this node.
core::Expected<MpiProcess> mpi_start();

// Finalises MPI if mpi_start() initialised it; safe to call more than once.
void mpi_finish();

// Waits on the host until every process arrives.
core::Status mpi_barrier();

// Every process's `mine`, in rank order, on every process.
core::Expected<std::vector<std::string>> mpi_all_gather(const std::string& mine);

// Ends every process of the job with `exit_code` (after a failure that would leave the others
// waiting in a collective).
[[noreturn]] void mpi_abort(int exit_code);

// Number of visible CUDA devices; 0 when there is no driver or no GPU (never an error).
int visible_device_count();

}  // namespace hpsim::kernels
