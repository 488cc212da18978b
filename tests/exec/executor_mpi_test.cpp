// One process per GPU under mpirun: the collectives over an MPI-bootstrapped communicator are
// exact, and the executor run as one process per rank measures the same layer as the one-process
// executor (same stages in the same order, the same traffic and memory, byte for byte).
//
// Started by ctest without mpirun, the binary launches itself under `mpirun -np 2` and returns
// its status; with fewer than two GPUs, without MPI support or without mpirun it exits 77 (ctest
// counts that as skipped). Labels gpu and multigpu.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <sys/wait.h>
#include <unistd.h>

#include "../kernels/comm_checks.h"
#include "hpsim/exec/executor.h"
#include "hpsim/kernels/comm.h"
#include "hpsim/model/plan_builder.h"
#include "small_scenario.h"

namespace hpsim::exec {
namespace {

constexpr int kSkip = 77;
constexpr int kWorld = 2;

kernels::MpiProcess g_process;

std::unique_ptr<kernels::Communicator> mpi_comm() {
  auto comm = kernels::create_mpi_communicator(g_process.local_rank, kernels::CommOptions{std::chrono::seconds(60)});
  EXPECT_TRUE(comm) << comm.error().message;
  return comm ? std::move(*comm) : nullptr;
}

TEST(MpiCollectives, AllToAllVExactWithUnevenAndEmptySplits) {
  auto comm = mpi_comm();
  ASSERT_NE(comm, nullptr);
  EXPECT_EQ(comm->rank(), g_process.rank);
  EXPECT_EQ(comm->size(), kWorld);
  const std::string fail = kernels::testing::check_all_to_all_v_rank(*comm, g_process.rank, kWorld);
  EXPECT_TRUE(fail.empty()) << "rank " << g_process.rank << ": " << fail;
}

TEST(MpiCollectives, AllToAllAllReduceAllGatherExact) {
  auto comm = mpi_comm();
  ASSERT_NE(comm, nullptr);
  const std::string fail = kernels::testing::check_equal_all_to_all_and_reduce_rank(*comm, g_process.rank, kWorld);
  EXPECT_TRUE(fail.empty()) << "rank " << g_process.rank << ": " << fail;
}

// The one-process executor tests' layer, under Zipf(1) routing (uneven EP splits).
core::Scenario small_scenario(core::Strategy strategy) {
  core::Scenario s = testing::small_scenario(kWorld, strategy);
  s.workload.routing = core::Routing::kZipf;
  s.workload.zipf_skew = 1.0;
  return s;
}

void expect_complete_timeline(const ExecResult& r, core::Strategy strategy) {
  ASSERT_EQ(r.timeline.ranks.size(), static_cast<std::size_t>(kWorld));
  ASSERT_EQ(r.iteration_us.size(), 3u);
  const auto& stages = model::layer_stages(strategy);
  for (const auto& rank : r.timeline.ranks) {
    ASSERT_EQ(rank.spans.size(), stages.size()) << "rank " << rank.rank;
    for (std::size_t i = 0; i < stages.size(); ++i) {
      EXPECT_EQ(rank.spans[i].stage, stages[i].name) << "rank " << rank.rank << " span " << i;
      EXPECT_GE(rank.spans[i].end_ns, rank.spans[i].start_ns);
    }
  }
}

// Runs the same layer from this one process on both GPUs and compares what does not depend on
// timing with the one-process-per-GPU run.
void expect_same_as_one_process(const core::Scenario& s, core::Strategy strategy, ExecOptions o,
                                const ExecResult& per_process) {
  o.mpi = false;
  auto threaded = execute_layer(s, strategy, o);
  ASSERT_TRUE(threaded) << threaded.error().message;
  ASSERT_EQ(threaded->traffic.size(), per_process.traffic.size());
  for (std::size_t m = 0; m < threaded->traffic.size(); ++m) {
    EXPECT_EQ(threaded->traffic[m].phase, per_process.traffic[m].phase);
    EXPECT_EQ(threaded->traffic[m].bytes, per_process.traffic[m].bytes) << threaded->traffic[m].phase;
    EXPECT_GT(per_process.traffic[m].total_sent(), 0.0) << per_process.traffic[m].phase;
  }
  ASSERT_EQ(threaded->memory.ranks.size(), per_process.memory.ranks.size());
  for (std::size_t r = 0; r < threaded->memory.ranks.size(); ++r) {
    EXPECT_EQ(threaded->memory.ranks[r].peak(), per_process.memory.ranks[r].peak()) << "rank " << r;
    EXPECT_EQ(per_process.memory.ranks[r].rank, static_cast<std::int64_t>(r));
  }
  std::printf("%s layer, one process per GPU: %.1f us; one process: %.1f us (median iterations)\n",
              to_string(strategy), static_cast<double>(per_process.timeline.end_ns()) / 1e3,
              static_cast<double>(threaded->timeline.end_ns()) / 1e3);
}

void expect_same_layer(core::Strategy strategy) {
  const auto s = small_scenario(strategy);
  ExecOptions o;
  o.iterations = 3;
  o.warmup_iterations = 1;
  o.mpi = true;
  auto per_process = execute_layer(s, strategy, o);
  if (!per_process) {
    // The other process may wait for this one in a collective: end the job with the reason.
    std::fprintf(stderr, "rank %d: %s\n", g_process.rank, per_process.error().message.c_str());
    kernels::mpi_abort(1);
  }
  // Every process holds the same gathered result.
  expect_complete_timeline(*per_process, strategy);
  // Rank 0 alone runs the one-process executor; rank 1's process waits at the barrier.
  ASSERT_TRUE(kernels::mpi_barrier());
  if (g_process.rank == 0) expect_same_as_one_process(s, strategy, o, *per_process);
  ASSERT_TRUE(kernels::mpi_barrier());
}

TEST(MpiExecutor, HpLayerMatchesTheOneProcessExecutor) { expect_same_layer(core::Strategy::kHp); }

TEST(MpiExecutor, EpLayerMatchesTheOneProcessExecutor) { expect_same_layer(core::Strategy::kEp); }

TEST(MpiExecutor, AWorldOfTheWrongSizeIsAnError) {
  auto s = small_scenario(core::Strategy::kHp);
  s.parallel.num_ranks = 4;
  ExecOptions o;
  o.mpi = true;
  auto r = execute_layer(s, core::Strategy::kHp, o);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("mpirun started 2"), std::string::npos) << r.error().message;
}

// Without mpirun: launch this binary under it, or say why not (exit 77).
int launch_under_mpirun(const char* self, int argc, char** argv) {
  if (!kernels::has_mpi_support()) {
    std::printf("skipped: this build has no MPI support\n");
    return kSkip;
  }
  if (kernels::visible_device_count() < kWorld) {
    std::printf("skipped: needs %d GPUs, found %d\n", kWorld, kernels::visible_device_count());
    return kSkip;
  }
  if (std::system("command -v mpirun > /dev/null 2>&1") != 0) {
    std::printf("skipped: no mpirun on PATH\n");
    return kSkip;
  }
  // Open MPI refuses root without this flag (other launchers do not know it).
  const std::string as_root = ::geteuid() == 0 ? " --allow-run-as-root" : "";
  std::string command = "mpirun -np " + std::to_string(kWorld) + as_root + " " + std::string(self);
  for (int i = 1; i < argc; ++i) command += std::string(" '") + argv[i] + "'";
  std::printf("%s\n", command.c_str());
  std::fflush(stdout);
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

}  // namespace
}  // namespace hpsim::exec

int main(int argc, char** argv) {
  using namespace hpsim;
  if (!kernels::started_by_mpirun()) return exec::launch_under_mpirun(argv[0], argc, argv);
  ::testing::InitGoogleTest(&argc, argv);
  auto process = kernels::mpi_start();
  if (!process) {
    std::fprintf(stderr, "%s\n", process.error().message.c_str());
    return 1;
  }
  exec::g_process = *process;
  if (process->size != exec::kWorld) {
    std::fprintf(stderr, "start with mpirun -np %d\n", exec::kWorld);
    kernels::mpi_abort(2);
  }
  const int rc = RUN_ALL_TESTS();
  // Each process passed or failed on its own; the job fails if any did.
  int worst = rc;
  auto all = kernels::mpi_all_gather(std::to_string(rc));
  if (all) {
    for (const auto& v : *all) worst = std::max(worst, std::atoi(v.c_str()));
  }
  kernels::mpi_finish();
  return worst;
}
