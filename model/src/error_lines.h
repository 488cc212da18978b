#pragma once
// Helper: put a prefix ("file: " or "field: ") before every line of a multi-line Error, so that
// each line still names where it comes from when a front end prints one "error: ..." per line.
#include <string>
#include <string_view>

#include "hpsim/core/error.h"

namespace hpsim::model::detail {

inline core::Error prefix_lines(const core::Error& error, std::string_view prefix) {
  std::string message;
  std::string_view rest = error.message;
  while (true) {
    const auto nl = rest.find('\n');
    if (!message.empty()) message.push_back('\n');
    message.append(prefix);
    message.append(rest.substr(0, nl));
    if (nl == std::string_view::npos) break;
    rest.remove_prefix(nl + 1);
  }
  return core::Error{error.code, message};
}

}  // namespace hpsim::model::detail
