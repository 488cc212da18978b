// NCCL collectives: exact results with uneven and empty splits, on every visible GPU
// (label gpu: one GPU is a valid W = 1 run) and on two or more (label multigpu).
#include <gtest/gtest.h>

#include <cstring>
#include <numeric>
#include <thread>

#include <cuda_runtime.h>

#include "hpsim/kernels/comm.h"
#include "comm_checks.h"

namespace hpsim::kernels {
namespace {

#define CHECK_CUDA(expr) ASSERT_EQ((expr), cudaSuccess) << #expr

// GTEST_SKIP only leaves the function it is written in, so this is a macro.
#define REQUIRE_GPUS(n)                                                       \
  do {                                                                        \
    const int have_ = visible_device_count();                                \
    if (have_ < (n)) GTEST_SKIP() << "needs " << (n) << " GPU(s), found " << have_; \
  } while (0)

std::vector<std::unique_ptr<Communicator>> make_comms(int w) {
  std::vector<int> devices(static_cast<std::size_t>(w));
  std::iota(devices.begin(), devices.end(), 0);
  auto comms = create_local_communicators(devices, CommOptions{std::chrono::seconds(60)});
  EXPECT_TRUE(comms) << comms.error().message;
  return comms ? std::move(*comms) : std::vector<std::unique_ptr<Communicator>>{};
}

// Runs fn(rank) on one host thread per rank and joins.
template <typename Fn>
void per_rank(int w, Fn&& fn) {
  std::vector<std::thread> threads;
  for (int r = 0; r < w; ++r) threads.emplace_back([&, r] { fn(r); });
  for (auto& t : threads) t.join();
}

// Runs check(communicator, rank, w) on one host thread per rank and expects every rank to pass.
template <typename Check>
void check_on_threads(int w, Check&& check) {
  auto comms = make_comms(w);
  ASSERT_EQ(static_cast<int>(comms.size()), w);
  std::vector<std::string> failures(static_cast<std::size_t>(w));
  per_rank(w, [&](int r) {
    failures[static_cast<std::size_t>(r)] = check(*comms[static_cast<std::size_t>(r)], r, w);
  });
  for (const auto& f : failures) EXPECT_TRUE(f.empty()) << f;
}

void check_all_to_all_v(int w) { check_on_threads(w, testing::check_all_to_all_v_rank); }

void check_equal_all_to_all_and_reduce(int w) { check_on_threads(w, testing::check_equal_all_to_all_and_reduce_rank); }

TEST(NcclCollectives, AllToAllVExactWithUnevenAndEmptySplitsOnAllVisibleGpus) {
  REQUIRE_GPUS(1);
  check_all_to_all_v(visible_device_count());
}

TEST(NcclCollectives, AllToAllAllReduceAllGatherExactOnAllVisibleGpus) {
  REQUIRE_GPUS(1);
  check_equal_all_to_all_and_reduce(visible_device_count());
}

TEST(NcclCollectivesMultiGpu, AllToAllVExactOnTwoGpus) {
  REQUIRE_GPUS(2);
  check_all_to_all_v(2);
}

TEST(NcclCollectivesMultiGpu, AllToAllAllReduceAllGatherExactOnTwoGpus) {
  REQUIRE_GPUS(2);
  check_equal_all_to_all_and_reduce(2);
}

TEST(NcclCommunicators, NoGpuOrBadDeviceIsAnErrorNotACrash) {
  const int have = visible_device_count();
  std::vector<int> devices = {have + 3};
  auto comms = create_local_communicators(devices, CommOptions{});
  ASSERT_FALSE(comms);
  EXPECT_EQ(comms.error().code, core::ErrorCode::kNoDevice);
}

}  // namespace
}  // namespace hpsim::kernels
