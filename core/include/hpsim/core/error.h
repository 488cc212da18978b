#pragma once
// Errors: one mechanism per situation (CONVENTIONS.md).
//  - HPSIM_ASSERT: broken invariant in host code; prints and aborts, also in release builds.
//  - Expected<T> / Status: expected failures (bad input, I/O, no GPU), carrying an Error that
//    names the field or file and the rule it broke.

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <variant>

#include <fmt/format.h>

namespace hpsim::core {

enum class ErrorCode {
  kInvalidArgument,  // a value breaks a rule (field path in the message)
  kParse,            // malformed JSON or CSV
  kIo,               // missing or unreadable file
  kUnsupported,      // a shape or option this build or kernel cannot do
  kNoDevice,         // needs a GPU and there is none
  kOutOfMemory,      // does not fit in device or host memory
  kCuda,             // CUDA runtime or library failure
  kNccl,             // NCCL failure
  kTimeout,          // a collective or run exceeded its time limit
  kCancelled,        // stopped by the user
  kInternal,         // a bug: should not happen
};

const char* to_string(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;

  // "path: what is wrong" — the form every validation message takes.
  static Error field(std::string_view path, std::string_view rule) {
    return Error{ErrorCode::kInvalidArgument, fmt::format("{}: {}", path, rule)};
  }
};

// A value or an Error. Deliberately small: no exceptions cross module boundaries.
template <typename T>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : storage_(std::move(value)) {}          // NOLINT(google-explicit-constructor)
  Expected(Error error) : storage_(std::move(error)) {}      // NOLINT(google-explicit-constructor)

  bool has_value() const { return storage_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & { return checked(); }
  const T& value() const& { return const_cast<Expected*>(this)->checked(); }
  T&& value() && { return std::move(checked()); }
  T& operator*() & { return checked(); }
  const T& operator*() const& { return const_cast<Expected*>(this)->checked(); }
  T* operator->() { return &checked(); }
  const T* operator->() const { return &const_cast<Expected*>(this)->checked(); }

  const Error& error() const {
    if (has_value()) {
      std::fprintf(stderr, "hpsim: Expected::error() called on a value\n");
      std::abort();
    }
    return std::get<1>(storage_);
  }

 private:
  T& checked() {
    if (!has_value()) {
      std::fprintf(stderr, "hpsim: Expected::value() called on an error: %s\n", std::get<1>(storage_).message.c_str());
      std::abort();
    }
    return std::get<0>(storage_);
  }
  std::variant<T, Error> storage_;
};

// Success or an Error.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT(google-explicit-constructor)
  static Status ok() { return Status(); }

  bool is_ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

[[noreturn]] void assert_fail(const char* expr, const char* file, int line, const std::string& message);

}  // namespace hpsim::core

// Broken invariant in host code: prints the expression, file:line and message, then aborts.
#define HPSIM_ASSERT(cond, ...)                                                               \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      ::hpsim::core::assert_fail(#cond, __FILE__, __LINE__, ::fmt::format(__VA_ARGS__));       \
    }                                                                                          \
  } while (0)

// Propagates an error from an expression returning Status. The local's name carries the line,
// so that nested uses (a lambda inside a HPSIM_TRY) do not shadow each other.
#define HPSIM_TRY_CONCAT_(a, b) a##b
#define HPSIM_TRY_NAME_(line) HPSIM_TRY_CONCAT_(hpsim_try_status_, line)
#define HPSIM_TRY(expr) HPSIM_TRY_IMPL_(expr, HPSIM_TRY_NAME_(__LINE__))
#define HPSIM_TRY_IMPL_(expr, name)              \
  do {                                           \
    ::hpsim::core::Status name = (expr);         \
    if (!name) return name.error();              \
  } while (0)
