#pragma once
// The collective checks of one rank, shared by the one-process tests (a host thread per rank)
// and the one-process-per-GPU tests under mpirun: each returns "" when rank r of w received
// exactly what it should, else what went wrong.
#include <cstdint>
#include <string>
#include <vector>

#include <cuda_runtime.h>

#include "hpsim/kernels/comm.h"

namespace hpsim::kernels::testing {

// Byte b of the block that rank src sends to rank dst: recognisable and never zero.
inline std::uint8_t pattern(int src, int dst, std::int64_t b) {
  return static_cast<std::uint8_t>(1 + (src * 31 + dst * 7 + b * 13) % 251);
}

// All-to-all-v with uneven splits and empty ones: src sends (src + 2*dst) % 5 * 37 bytes to dst.
inline std::string check_all_to_all_v_rank(Communicator& c, int r, int w) {
  auto count = [](int src, int dst) -> std::int64_t { return ((src + 2 * dst) % 5) * 37; };
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
  std::string fail;
  if (!status) {
    fail = status.error().message;
  } else {
    for (int p = 0; p < w && fail.empty(); ++p) {
      for (std::int64_t b = 0; b < rb[p]; ++b) {
        if (got[static_cast<std::size_t>(ro[p] + b)] != pattern(p, r, b)) {
          fail = "rank " + std::to_string(r) + ": wrong byte " + std::to_string(b) + " from peer " + std::to_string(p);
          break;
        }
      }
    }
    if (got.back() != 0) fail = "wrote past the end of the receive buffer";
  }
  cudaStreamDestroy(stream);
  cudaFree(d_send);
  cudaFree(d_recv);
  return fail;
}

// All-to-all with equal splits, an fp32 sum all-reduce and an all-gather.
inline std::string check_equal_all_to_all_and_reduce_rank(Communicator& c, int r, int w) {
  const std::int64_t per_peer = 4098;  // not a power of two
  const std::int64_t count = 1001;
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
  std::string fail;
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
  return fail;
}

}  // namespace hpsim::kernels::testing
