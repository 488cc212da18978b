#pragma once
// Text helpers shared by the trace and CSV writers: deterministic number formatting and JSON
// string escaping.

#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace hpsim::traces::detail {

// Integer nanoseconds as microseconds with exactly three decimals ("12.345"): exact and stable.
inline void append_us(std::string& out, std::int64_t ns) {
  if (ns < 0) {
    out += '-';
    // Avoid overflow on the most negative value by working with the magnitude in two parts.
    const std::uint64_t mag = static_cast<std::uint64_t>(-(ns + 1)) + 1;
    fmt::format_to(std::back_inserter(out), "{}.{:03}", mag / 1000, mag % 1000);
    return;
  }
  fmt::format_to(std::back_inserter(out), "{}.{:03}", ns / 1000, ns % 1000);
}

// Shortest text that reads back to the same double; JSON null for NaN and infinities.
inline void append_number(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  fmt::format_to(std::back_inserter(out), "{}", v);
}

inline void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          fmt::format_to(std::back_inserter(out), "\\u{:04x}", static_cast<unsigned>(static_cast<unsigned char>(c)));
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

}  // namespace hpsim::traces::detail
