// NCCL collectives: exact results with uneven and empty splits, on every visible GPU
// (label gpu: one GPU is a valid W = 1 run) and on two or more (label multigpu).
#include <gtest/gtest.h>

#include <cstring>
#include <numeric>
#include <thread>

#include <cuda_runtime.h>

#include "hpsim/kernels/comm.h"

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

// Byte b of the block that rank src sends to rank dst: recognisable and never zero.
std::uint8_t pattern(int src, int dst, std::int64_t b) {
  return static_cast<std::uint8_t>(1 + (src * 31 + dst * 7 + b * 13) % 251);
}

void check_all_to_all_v(int w) {
  auto comms = make_comms(w);
  ASSERT_EQ(static_cast<int>(comms.size()), w);
  // Uneven splits, with empty ones: src sends (src + 2*dst) % 5 * 37 bytes to dst.
  auto count = [](int src, int dst) -> std::int64_t { return ((src + 2 * dst) % 5) * 37; };
  std::vector<std::string> failures(static_cast<std::size_t>(w));
  per_rank(w, [&](int r) {
    auto& c = *comms[static_cast<std::size_t>(r)];
    cudaSetDevice(c.device());
    std::vector<std::int64_t> sb(w), so(w), rb(w), ro(w);
    std::int64_t st = 0, rt = 0;
    for (int p = 0; p < w; ++p) {
      sb[p] = count(r, p);
      so[p] = st;
      st += sb[p];
      rb[p] = count(p, r);
      ro[p] = rt;
      rt += rb[p];
    }
    std::vector<std::uint8_t> host_send(static_cast<std::size_t>(st) + 1);
    for (int p = 0; p < w; ++p) {
      for (std::int64_t b = 0; b < sb[p]; ++b) host_send[static_cast<std::size_t>(so[p] + b)] = pattern(r, p, b);
    }
    void *d_send = nullptr, *d_recv = nullptr;
    cudaMalloc(&d_send, host_send.size());
    cudaMalloc(&d_recv, static_cast<std::size_t>(rt) + 1);
    cudaMemcpy(d_send, host_send.data(), host_send.size(), cudaMemcpyHostToDevice);
    cudaMemset(d_recv, 0, static_cast<std::size_t>(rt) + 1);  // 0 never appears in the pattern
    cudaStream_t stream;
    cudaStreamCreate(&stream);
    auto status = c.all_to_all_v(d_send, sb, so, d_recv, rb, ro, stream);
    if (status) status = c.wait(stream, "all_to_all_v");
    std::vector<std::uint8_t> got(static_cast<std::size_t>(rt) + 1);
    cudaMemcpy(got.data(), d_recv, got.size(), cudaMemcpyDeviceToHost);
    if (!status) {
      failures[static_cast<std::size_t>(r)] = status.error().message;
    } else {
      for (int p = 0; p < w && failures[static_cast<std::size_t>(r)].empty(); ++p) {
        for (std::int64_t b = 0; b < rb[p]; ++b) {
          if (got[static_cast<std::size_t>(ro[p] + b)] != pattern(p, r, b)) {
            failures[static_cast<std::size_t>(r)] = "rank " + std::to_string(r) + ": wrong byte " + std::to_string(b) +
                                                    " from peer " + std::to_string(p);
            break;
          }
        }
      }
      if (got.back() != 0) failures[static_cast<std::size_t>(r)] = "wrote past the end of the receive buffer";
    }
    cudaStreamDestroy(stream);
    cudaFree(d_send);
    cudaFree(d_recv);
  });
  for (const auto& f : failures) EXPECT_TRUE(f.empty()) << f;
}

void check_equal_all_to_all_and_reduce(int w) {
  auto comms = make_comms(w);
  ASSERT_EQ(static_cast<int>(comms.size()), w);
  const std::int64_t per_peer = 4098;  // not a power of two
  const std::int64_t count = 1001;
  std::vector<std::string> failures(static_cast<std::size_t>(w));
  per_rank(w, [&](int r) {
    auto& c = *comms[static_cast<std::size_t>(r)];
    cudaSetDevice(c.device());
    std::vector<std::uint8_t> host(static_cast<std::size_t>(per_peer * w));
    for (int p = 0; p < w; ++p) {
      for (std::int64_t b = 0; b < per_peer; ++b) host[static_cast<std::size_t>(p * per_peer + b)] = pattern(r, p, b);
    }
    std::vector<float> values(static_cast<std::size_t>(count));
    for (std::int64_t i = 0; i < count; ++i) values[static_cast<std::size_t>(i)] = static_cast<float>(r + 1) * 0.5f + static_cast<float>(i);
    void *d_send, *d_recv, *d_vals, *d_sum, *d_gather;
    cudaMalloc(&d_send, host.size());
    cudaMalloc(&d_recv, host.size());
    cudaMalloc(&d_vals, values.size() * 4);
    cudaMalloc(&d_sum, values.size() * 4);
    cudaMalloc(&d_gather, static_cast<std::size_t>(per_peer * w));
    cudaMemcpy(d_send, host.data(), host.size(), cudaMemcpyHostToDevice);
    cudaMemcpy(d_vals, values.data(), values.size() * 4, cudaMemcpyHostToDevice);
    cudaStream_t stream;
    cudaStreamCreate(&stream);
    core::Status s = c.all_to_all(d_send, d_recv, per_peer, stream);
    if (s) s = c.all_reduce_sum(d_vals, d_sum, count, Communicator::ReduceType::kF32, stream);
    if (s) s = c.all_gather(d_send, d_gather, per_peer, stream);
    if (s) s = c.wait(stream, "all_to_all + all_reduce + all_gather");
    std::string& fail = failures[static_cast<std::size_t>(r)];
    if (!s) fail = s.error().message;
    std::vector<std::uint8_t> got(host.size()), gathered(host.size());
    std::vector<float> sum(values.size());
    cudaMemcpy(got.data(), d_recv, got.size(), cudaMemcpyDeviceToHost);
    cudaMemcpy(gathered.data(), d_gather, gathered.size(), cudaMemcpyDeviceToHost);
    cudaMemcpy(sum.data(), d_sum, sum.size() * 4, cudaMemcpyDeviceToHost);
    for (int p = 0; p < w && fail.empty(); ++p) {
      for (std::int64_t b = 0; b < per_peer; ++b) {
        if (got[static_cast<std::size_t>(p * per_peer + b)] != pattern(p, r, b)) {
          fail = "all_to_all: wrong byte from peer " + std::to_string(p);
          break;
        }
        // all_gather collects every rank's first block (the one addressed to peer 0).
        if (gathered[static_cast<std::size_t>(p * per_peer + b)] != pattern(p, 0, b)) {
          fail = "all_gather: wrong byte from peer " + std::to_string(p);
          break;
        }
      }
    }
    for (std::int64_t i = 0; i < count && fail.empty(); ++i) {
      // sum over ranks q of ((q+1)/2 + i): exact in fp32 at these sizes.
      const double expect = 0.5 * w * (w + 1) / 2.0 + static_cast<double>(w) * static_cast<double>(i);
      if (static_cast<double>(sum[static_cast<std::size_t>(i)]) != expect) fail = "all_reduce: wrong sum at " + std::to_string(i);
    }
    cudaStreamDestroy(stream);
    for (void* p : {d_send, d_recv, d_vals, d_sum, d_gather}) cudaFree(p);
  });
  for (const auto& f : failures) EXPECT_TRUE(f.empty()) << f;
}

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
