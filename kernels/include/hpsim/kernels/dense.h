#pragma once
// Dense projections (W_in: d -> H*h and W_out: H*h -> d of the HP layer) through cuBLAS, bf16 in
// and out with fp32 accumulation. Row-major: x [rows][in], w [out][in], y [rows][out].
//   forward:   y = x w^T
//   backward:  dx = dy w,  dw = dy^T x
// cuBLAS is deterministic for a fixed shape, stream and workspace.

#include <cstdint>
#include <memory>

#include "hpsim/core/error.h"
#include "hpsim/kernels/types.h"

namespace hpsim::kernels {

// Owns the cuBLAS handle; create once per device and thread, reuse for every launch.
class DenseContext {
 public:
  virtual ~DenseContext() = default;
  virtual int device() const = 0;
};

core::Expected<std::unique_ptr<DenseContext>> create_dense_context();

struct DenseForwardArgs {
  DenseContext* context = nullptr;
  const Bf16* x = nullptr;                  // [rows][in]
  const Bf16* w = nullptr;                  // [out][in]
  Bf16* y = nullptr;                        // [rows][out] out
  std::int64_t rows = 0;
  std::int64_t in_features = 0;             // multiple of 8
  std::int64_t out_features = 0;            // multiple of 8
};

struct DenseBackwardArgs {
  DenseContext* context = nullptr;
  const Bf16* x = nullptr;                  // [rows][in]
  const Bf16* w = nullptr;                  // [out][in]
  const Bf16* dy = nullptr;                 // [rows][out]
  Bf16* dx = nullptr;                       // [rows][in] out, may be null (skipped)
  Bf16* dw = nullptr;                       // [out][in] out, may be null (skipped)
  std::int64_t rows = 0;
  std::int64_t in_features = 0;
  std::int64_t out_features = 0;
};

core::Status can_implement(const DenseForwardArgs& args);
std::int64_t workspace_bytes(const DenseForwardArgs& args);
core::Status launch(const DenseForwardArgs& args, void* workspace, Stream stream);

core::Status can_implement(const DenseBackwardArgs& args);
std::int64_t workspace_bytes(const DenseBackwardArgs& args);
core::Status launch(const DenseBackwardArgs& args, void* workspace, Stream stream);

}  // namespace hpsim::kernels
