#pragma once
// The full layer executor: builds the EP or the HP layer of a Scenario on W local GPUs (one host
// thread per GPU, NCCL communicators from ncclCommInitAll; or, with ExecOptions::mpi, one process
// per GPU started by mpirun, the NCCL id broadcast over MPI), with random weights and inputs, and
// runs forward and backward with the project's kernels. Every stage on every rank is bracketed
// with CUDA events; the result is the measured core::Timeline (same stage names as the model's
// LayerPlan, so it compares span by span with the simulated one), the bytes actually posted per
// peer and phase, and the measured per-rank peak device memory by part.
//
// Routing is either the real router's choice or forced from the scenario's workload (uniform,
// Zipf skew, ownership), so skew can be dialled in. With forced routing the router still runs
// (its time is measured); its selections are then overwritten outside any measured span.

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "hpsim/core/error.h"
#include "hpsim/core/memory_report.h"
#include "hpsim/core/scenario.h"
#include "hpsim/core/timeline.h"
#include "hpsim/core/traffic.h"

namespace hpsim::exec {

struct ExecOptions {
  std::vector<int> devices;      // GPUs to use; empty = 0 .. W-1 (MPI: this process's GPU; empty = its node-local rank)
  // One process per GPU under mpirun (needs HPSIM_WITH_MPI): this process runs its MPI rank, W
  // must equal the number of processes, and every process returns the whole result (the ranks'
  // measurements are all-gathered). After an error the caller ends the job (kernels::mpi_abort):
  // the other processes may be waiting for this one in a collective.
  bool mpi = false;
  int warmup_iterations = 2;
  int iterations = 5;            // timed; the reported timeline is the median one
  bool include_backward = true;
  bool forced_routing = true;    // false: the router's own selections (random weights)
  std::chrono::milliseconds timeout{std::chrono::seconds(120)};
  std::function<void(const std::string&)> progress;  // optional status lines
};

struct ExecResult {
  core::Strategy strategy = core::Strategy::kHp;
  core::Timeline timeline;            // source "executed", the median iteration
  std::vector<double> iteration_us;   // per timed iteration, slowest rank's layer time
  std::vector<core::TrafficMatrix> traffic;  // bytes posted per peer: dispatch, combine, ...
  core::MemoryReport memory;          // measured peak per rank, by part
  std::string device_name;
  std::string nccl_version;
};

core::Expected<ExecResult> execute_layer(const core::Scenario& scenario, core::Strategy strategy,
                                         const ExecOptions& options);

// Device bytes one rank's arena reserves for the layer (worst-case EP receive sizes), so callers
// can say "does not fit" before touching the GPU.
std::int64_t arena_bytes_needed(const core::Scenario& scenario, core::Strategy strategy, bool include_backward);

}  // namespace hpsim::exec
