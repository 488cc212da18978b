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

// The numerics check: the W-GPU layer against a one-GPU run of the same layer (all W ranks'
// tokens, heads and experts on the first GPU, with the same weights, inputs and forced routing),
// after one forward and backward. For the output Y, the input gradient dX and every weight
// gradient: the relative L2 difference and the largest absolute one. The W ranks' pieces are
// concatenated in rank order, or added for the gradients of replicated weights (each rank holds
// the partial sum over its tokens). The two runs differ only where the dense GEMMs tile
// differently at the two row counts and in the order of the partial sums' addition, so the
// differences are at the level of bf16 rounding: kNumericsTolerance bounds them.
inline constexpr double kNumericsTolerance = 1e-2;

struct NumericsDifference {
  std::string tensor;  // "Y", "dX", "dW_in", "dK", ...
  std::int64_t count = 0;
  bool summed_over_ranks = false;
  double relative_l2 = 0;  // ||W-GPU - one-GPU|| / ||one-GPU||
  double max_abs = 0;
};

struct NumericsReport {
  core::Strategy strategy = core::Strategy::kHp;
  int ranks = 1;
  std::vector<NumericsDifference> tensors;
  bool passed(double tolerance = kNumericsTolerance) const {
    for (const auto& t : tensors) {
      if (!(t.relative_l2 <= tolerance)) return false;
    }
    return !tensors.empty();
  }
};

// Needs W visible GPUs, forced routing and room for the one-GPU layer on the first GPU.
core::Expected<NumericsReport> check_numerics(const core::Scenario& scenario, core::Strategy strategy,
                                              const ExecOptions& options);

// Device bytes one rank's arena reserves for the layer (worst-case EP receive sizes), so callers
// can say "does not fit" before touching the GPU.
std::int64_t arena_bytes_needed(const core::Scenario& scenario, core::Strategy strategy, bool include_backward);

}  // namespace hpsim::exec
