#pragma once
// Timeline as CSV: one row per span, header
//   source,strategy,rank,lane,stage,phase,layer,micro_batch,start_ns,end_ns,duration_ns,bytes,flops
// Fields are quoted (RFC 4180) when they hold a comma, a quote or a line break. Ranks without
// spans have no row. docs/trace-format.md describes the columns.

#include <string>
#include <string_view>

#include "hpsim/core/error.h"
#include "hpsim/core/timeline.h"

namespace hpsim::traces {

std::string to_csv(const core::Timeline& timeline);
core::Status write_timeline_csv(const std::string& path, const core::Timeline& timeline);
core::Expected<core::Timeline> parse_timeline_csv(std::string_view csv_text, const std::string& origin = "csv");

}  // namespace hpsim::traces
