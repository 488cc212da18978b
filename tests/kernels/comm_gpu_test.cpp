// NCCL collectives: exact results with uneven and empty splits, on every visible GPU
// (label gpu: one GPU is a valid W = 1 run) and on two or more (label multigpu).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
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

TEST(NcclCollectivesMultiGpu, ACollectiveAPeerNeverJoinsTimesOutAndAbortsInsteadOfHanging) {
  REQUIRE_GPUS(2);
  std::vector<int> devices = {0, 1};
  auto comms = create_local_communicators(devices, CommOptions{std::chrono::milliseconds(1000)});
  ASSERT_TRUE(comms) << comms.error().message;
  const std::int64_t per_peer = 1 << 20;
  std::vector<core::Status> status(2);
  std::vector<double> seconds(2);
  per_rank(2, [&](int r) {
    auto& c = *(*comms)[static_cast<std::size_t>(r)];
    cudaSetDevice(c.device());
    void *send = nullptr, *recv = nullptr;
    cudaMalloc(&send, static_cast<std::size_t>(per_peer * 2));
    cudaMalloc(&recv, static_cast<std::size_t>(per_peer * 2));
    cudaStream_t stream;
    cudaStreamCreate(&stream);
    // Rank 1 joins only after rank 0 has given up: rank 0 must time out and abort; rank 1 then
    // talks to an aborted peer and must return, not hang: with what rank 0 had sent before it
    // gave up, or with a timeout or NCCL's own error.
    if (r == 1) std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    const auto start = std::chrono::steady_clock::now();
    core::Status st = c.all_to_all(send, recv, per_peer, stream);
    if (st) st = c.wait(stream, "all_to_all of the timeout test");
    seconds[static_cast<std::size_t>(r)] =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    status[static_cast<std::size_t>(r)] = st;
    // After an abort the stream may never drain: leave it and the buffers to process exit.
  });
  ASSERT_FALSE(status[0]);
  EXPECT_EQ(status[0].error().code, core::ErrorCode::kTimeout) << status[0].error().message;
  EXPECT_NE(status[0].error().message.find("all_to_all of the timeout test"), std::string::npos);
  EXPECT_NE(status[0].error().message.find("rank 0 of 2"), std::string::npos) << status[0].error().message;
  EXPECT_TRUE((*comms)[0]->is_aborted());
  // Both ranks returned (the join above); rank 1 within its own timeout of joining, whatever it got.
  EXPECT_LT(seconds[1], 1.0 + 5.0) << "rank 1 returned only after " << seconds[1] << " s";
  std::printf("rank 0: %s (%.2f s)\nrank 1: %s (%.2f s)\n", status[0].error().message.c_str(), seconds[0],
              status[1] ? "finished with what rank 0 had sent" : status[1].error().message.c_str(), seconds[1]);
  // A later collective on an aborted communicator is refused at once.
  auto again = (*comms)[0]->all_reduce_sum(nullptr, nullptr, 0, Communicator::ReduceType::kF32, nullptr);
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().message.find("aborted"), std::string::npos) << again.error().message;
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
