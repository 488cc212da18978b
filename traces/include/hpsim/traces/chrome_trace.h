#pragma once
// Chrome Trace Event JSON (opens in Perfetto and chrome://tracing); the layout is in
// docs/trace-format.md. One process per rank ("rank N"), one thread per lane ("compute", "comm"),
// a complete ("X") event per span with its stage, phase, bytes, FLOPs, layer and micro-batch,
// flow arrows ("s"/"f") for transfers between ranks, and counters ("C"). Timestamps are in
// microseconds printed with three decimals, so integer nanoseconds survive exactly; every span
// also carries start_ns and end_ns. The same input gives the same bytes.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "hpsim/core/error.h"
#include "hpsim/core/timeline.h"

namespace hpsim::traces {

// A transfer between two ranks, drawn as an arrow from the sender's span to the receiver's.
struct FlowArrow {
  std::string name;            // usually the stage, e.g. "dispatch"
  std::int64_t src_rank = 0;
  std::int64_t dst_rank = 0;
  std::int64_t start_ns = 0;   // left the sender
  std::int64_t end_ns = 0;     // arrived
  double bytes = 0;            // per flow
  std::int64_t num_flows = 1;  // flows this arrow stands for
  core::Lane src_lane = core::Lane::kComm;
  core::Lane dst_lane = core::Lane::kComm;
};

// One value of a counter track at one time. rank < 0 puts it on the "network" process.
struct CounterSample {
  std::string name;   // e.g. "bytes in flight", "memory in use"
  std::int64_t rank = -1;
  std::int64_t t_ns = 0;
  double value = 0;
};

struct TraceExtras {
  std::vector<FlowArrow> flows;
  std::vector<CounterSample> counters;
  // Adds per rank a "comm bytes" counter: the bytes of the collective in progress (from the
  // comm spans), 0 between them.
  bool comm_bytes_counters = true;
};

std::string to_chrome_trace(const core::Timeline& timeline, const TraceExtras& extras = {});
core::Status write_chrome_trace(const std::string& path, const core::Timeline& timeline, const TraceExtras& extras = {});

// Reads the spans back (flows and counters are skipped). Accepts hpsim's traces and, leniently,
// other Chrome traces: a process named "rank N" is rank N, otherwise its pid is; a thread named
// "compute" or "comm" is that lane, otherwise tid 0 is compute and any other is comm. Errors name
// `origin` and the event.
core::Expected<core::Timeline> parse_chrome_trace(std::string_view json_text, const std::string& origin = "trace");
core::Expected<core::Timeline> read_chrome_trace(const std::string& path);

}  // namespace hpsim::traces
