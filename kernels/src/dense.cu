// Dense projections (dense.h) through cuBLAS: bf16 operands and outputs, fp32 compute, the
// caller's workspace handed to cuBLAS so that launches never allocate.
#include <cublas_v2.h>

#include <fmt/format.h>

#include "hpsim/kernels/cuda_check.h"
#include "hpsim/kernels/dense.h"
#include "kernel_limits.h"

namespace hpsim::kernels {
namespace {

core::Error cublas_error(cublasStatus_t status, const char* statement) {
  int device = -1;
  if (cudaGetDevice(&device) != cudaSuccess) device = -1;
  return core::Error{core::ErrorCode::kCuda, fmt::format("{} failed on device {}: {} ({})", statement, device,
                                                         cublasGetStatusString(status), static_cast<int>(status))};
}

#define HPSIM_CUBLAS_TRY(expr)                                                      \
  do {                                                                              \
    const cublasStatus_t hpsim_cublas_status_ = (expr);                             \
    if (hpsim_cublas_status_ != CUBLAS_STATUS_SUCCESS) return cublas_error(hpsim_cublas_status_, #expr); \
  } while (0)

class CublasContext final : public DenseContext {
 public:
  CublasContext(cublasHandle_t handle, int device) : handle_(handle), device_(device) {}
  ~CublasContext() override { cublasDestroy(handle_); }
  CublasContext(const CublasContext&) = delete;
  CublasContext& operator=(const CublasContext&) = delete;
  int device() const override { return device_; }
  cublasHandle_t handle() const { return handle_; }

 private:
  cublasHandle_t handle_;
  int device_;
};

core::Status prepare(DenseContext* context, void* workspace, cudaStream_t stream, cublasHandle_t& handle) {
  handle = static_cast<CublasContext*>(context)->handle();
  HPSIM_CUBLAS_TRY(cublasSetStream(handle, stream));
  HPSIM_CUBLAS_TRY(cublasSetWorkspace(handle, workspace, static_cast<size_t>(limits::kDenseWorkspace)));
  return core::Status::ok();
}

// Row-major C[m][n] = op(A) op(B) expressed for column-major cuBLAS.
core::Status gemm(cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb, std::int64_t m, std::int64_t n,
                  std::int64_t k, const void* a, std::int64_t lda, const void* b, std::int64_t ldb, void* c, std::int64_t ldc) {
  const float alpha = 1.0f, beta = 0.0f;
  HPSIM_CUBLAS_TRY(cublasGemmEx(handle, ta, tb, static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), &alpha, a,
                                CUDA_R_16BF, static_cast<int>(lda), b, CUDA_R_16BF, static_cast<int>(ldb), &beta, c, CUDA_R_16BF,
                                static_cast<int>(ldc), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  return core::Status::ok();
}

}  // namespace

core::Expected<std::unique_ptr<DenseContext>> create_dense_context() {
  int device = 0;
  HPSIM_CUDA_TRY(cudaGetDevice(&device));
  cublasHandle_t handle = nullptr;
  HPSIM_CUBLAS_TRY(cublasCreate(&handle));
  return std::unique_ptr<DenseContext>(std::make_unique<CublasContext>(handle, device));
}

core::Status launch(const DenseForwardArgs& args, void* workspace, Stream stream) {
  HPSIM_TRY(can_implement(args));
  if (args.rows == 0) return core::Status::ok();
  cublasHandle_t handle = nullptr;
  HPSIM_TRY(prepare(args.context, workspace, static_cast<cudaStream_t>(stream), handle));
  // y^T (out x rows) = w (out x in, col-major view of [out][in] transposed) * x^T
  return gemm(handle, CUBLAS_OP_T, CUBLAS_OP_N, args.out_features, args.rows, args.in_features, args.w, args.in_features,
              args.x, args.in_features, args.y, args.out_features);
}

core::Status launch(const DenseBackwardArgs& args, void* workspace, Stream stream) {
  HPSIM_TRY(can_implement(args));
  cublasHandle_t handle = nullptr;
  HPSIM_TRY(prepare(args.context, workspace, static_cast<cudaStream_t>(stream), handle));
  if (args.dx != nullptr && args.rows > 0) {
    // dx^T (in x rows) = w^T (in x out) * dy^T (out x rows)
    HPSIM_TRY(gemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, args.in_features, args.rows, args.out_features, args.w,
                   args.in_features, args.dy, args.out_features, args.dx, args.in_features));
  }
  if (args.dw != nullptr) {
    if (args.rows == 0) {
      HPSIM_CUDA_TRY(cudaMemsetAsync(args.dw, 0, static_cast<size_t>(args.out_features * args.in_features) * 2,
                                     static_cast<cudaStream_t>(stream)));
      return core::Status::ok();
    }
    // dw^T (in x out) = x^T (in x rows) * dy (rows x out)
    HPSIM_TRY(gemm(handle, CUBLAS_OP_N, CUBLAS_OP_T, args.in_features, args.out_features, args.rows, args.x,
                   args.in_features, args.dy, args.out_features, args.dw, args.in_features));
  }
  return core::Status::ok();
}

}  // namespace hpsim::kernels
