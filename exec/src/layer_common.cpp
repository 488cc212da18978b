#include "layer_common.h"

#include <algorithm>
#include <mutex>
#include <type_traits>

#include "hpsim/core/rng.h"

namespace hpsim::exec::detail {
namespace {

constexpr std::int64_t kPool = 1 << 22;  // values in the host pool

template <typename T, typename Convert>
core::Status fill_from_pool(T* dst, std::int64_t count, float scale, std::uint64_t seed, cudaStream_t stream,
                            Convert convert) {
  if (count <= 0) return core::Status::ok();
  const std::int64_t pool_size = std::min<std::int64_t>(kPool, count);
  // Pinned so that the copies are asynchronous; freed after the stream drains.
  T* pool = nullptr;
  HPSIM_CUDA_TRY(cudaMallocHost(reinterpret_cast<void**>(&pool), static_cast<std::size_t>(pool_size) * sizeof(T)));
  core::Rng rng(seed);
  for (std::int64_t i = 0; i < pool_size; ++i) pool[i] = convert(static_cast<float>(rng.normal()) * scale);
  // Each chunk starts at a different pool offset, so that repeated blocks are not aligned copies.
  std::int64_t done = 0, shift = 0;
  while (done < count) {
    const std::int64_t start = shift % pool_size;
    const std::int64_t len = std::min(count - done, pool_size - start);
    cudaError_t e = cudaMemcpyAsync(dst + done, pool + start, static_cast<std::size_t>(len) * sizeof(T),
                                    cudaMemcpyHostToDevice, stream);
    if (e != cudaSuccess) {
      cudaFreeHost(pool);
      HPSIM_CUDA_TRY(e);
    }
    done += len;
    shift += 7919;
  }
  cudaError_t e = cudaStreamSynchronize(stream);
  cudaFreeHost(pool);
  HPSIM_CUDA_TRY(e);
  return core::Status::ok();
}

}  // namespace

core::Status fill_random_bf16(Bf16* dst, std::int64_t count, float scale, std::uint64_t seed, cudaStream_t stream) {
  return fill_from_pool(dst, count, scale, seed, stream, [](float v) { return kernels::to_bf16(v); });
}

core::Status fill_random_f32(float* dst, std::int64_t count, float scale, std::uint64_t seed, cudaStream_t stream) {
  return fill_from_pool(dst, count, scale, seed, stream, [](float v) { return v; });
}

namespace {

template <typename T>
core::Expected<NumericsTensor> host_tensor_of(const std::string& name, const T* src, std::int64_t count,
                                              bool summed_over_ranks) {
  std::vector<T> raw(static_cast<std::size_t>(count));
  HPSIM_CUDA_TRY(cudaMemcpy(raw.data(), src, raw.size() * sizeof(T), cudaMemcpyDeviceToHost));
  NumericsTensor t{name, summed_over_ranks, {}};
  t.values.reserve(raw.size());
  for (const T& v : raw) {
    if constexpr (std::is_same_v<T, Bf16>) {
      t.values.push_back(static_cast<double>(kernels::to_float(v)));
    } else {
      t.values.push_back(static_cast<double>(v));
    }
  }
  return t;
}

}  // namespace

core::Expected<NumericsTensor> host_tensor(const std::string& name, const Bf16* src, std::int64_t count,
                                           bool summed_over_ranks) {
  return host_tensor_of(name, src, count, summed_over_ranks);
}

core::Expected<NumericsTensor> host_tensor(const std::string& name, const float* src, std::int64_t count,
                                           bool summed_over_ranks) {
  return host_tensor_of(name, src, count, summed_over_ranks);
}

core::Status split_blocks(const void* packed, void* blocked, std::int64_t rows, std::int64_t blocks,
                          std::int64_t block_bytes, cudaStream_t stream) {
  const auto* src = static_cast<const std::uint8_t*>(packed);
  auto* dst = static_cast<std::uint8_t*>(blocked);
  for (std::int64_t b = 0; b < blocks; ++b) {
    HPSIM_CUDA_TRY(cudaMemcpy2DAsync(dst + b * rows * block_bytes, static_cast<std::size_t>(block_bytes),
                                     src + b * block_bytes, static_cast<std::size_t>(blocks * block_bytes),
                                     static_cast<std::size_t>(block_bytes), static_cast<std::size_t>(rows),
                                     cudaMemcpyDeviceToDevice, stream));
  }
  return core::Status::ok();
}

core::Status join_blocks(const void* blocked, void* packed, std::int64_t rows, std::int64_t blocks,
                         std::int64_t block_bytes, cudaStream_t stream) {
  const auto* src = static_cast<const std::uint8_t*>(blocked);
  auto* dst = static_cast<std::uint8_t*>(packed);
  for (std::int64_t b = 0; b < blocks; ++b) {
    HPSIM_CUDA_TRY(cudaMemcpy2DAsync(dst + b * block_bytes, static_cast<std::size_t>(blocks * block_bytes),
                                     src + b * rows * block_bytes, static_cast<std::size_t>(block_bytes),
                                     static_cast<std::size_t>(block_bytes), static_cast<std::size_t>(rows),
                                     cudaMemcpyDeviceToDevice, stream));
  }
  return core::Status::ok();
}

}  // namespace hpsim::exec::detail
