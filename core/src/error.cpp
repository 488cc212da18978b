#include "hpsim/core/error.h"

namespace hpsim::core {

const char* to_string(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return "invalid argument";
    case ErrorCode::kParse: return "parse error";
    case ErrorCode::kIo: return "i/o error";
    case ErrorCode::kUnsupported: return "unsupported";
    case ErrorCode::kNoDevice: return "no device";
    case ErrorCode::kOutOfMemory: return "out of memory";
    case ErrorCode::kCuda: return "cuda error";
    case ErrorCode::kNccl: return "nccl error";
    case ErrorCode::kTimeout: return "timeout";
    case ErrorCode::kCancelled: return "cancelled";
    case ErrorCode::kInternal: return "internal error";
  }
  return "unknown error";
}

void assert_fail(const char* expr, const char* file, int line, const std::string& message) {
  std::fprintf(stderr, "hpsim: assertion failed: %s\n  at %s:%d\n  %s\n", expr, file, line, message.c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace hpsim::core
