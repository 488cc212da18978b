// Chrome Trace Event JSON writer (docs/trace-format.md). Written by hand, one event per line, so
// the output is compact, streams in one pass and is the same bytes for the same input.
#include <algorithm>
#include <map>

#include "hpsim/core/json.h"
#include "hpsim/traces/chrome_trace.h"
#include "text.h"

namespace hpsim::traces {
namespace {

using detail::append_json_string;
using detail::append_number;
using detail::append_us;

int tid_of(core::Lane lane) { return lane == core::Lane::kCompute ? 0 : 1; }

class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}

  void begin(const char* ph, std::string_view name, std::int64_t pid, int tid) {
    out_ += first_ ? "\n" : ",\n";
    first_ = false;
    out_ += "{\"ph\":\"";
    out_ += ph;
    out_ += "\",\"name\":";
    append_json_string(out_, name);
    fmt::format_to(std::back_inserter(out_), ",\"pid\":{},\"tid\":{}", pid, tid);
  }
  void ts(std::int64_t ns) {
    out_ += ",\"ts\":";
    append_us(out_, ns);
  }
  void raw(std::string_view text) { out_ += text; }
  void end() { out_ += '}'; }

  void metadata(std::string_view what, std::int64_t pid, int tid, std::string_view key, std::string_view value) {
    begin("M", what, pid, tid);
    out_ += ",\"args\":{";
    append_json_string(out_, key);
    out_ += ':';
    append_json_string(out_, value);
    out_ += "}}";
  }
  void metadata_int(std::string_view what, std::int64_t pid, int tid, std::int64_t value) {
    begin("M", what, pid, tid);
    fmt::format_to(std::back_inserter(out_), ",\"args\":{{\"sort_index\":{}}}}}", value);
  }
  void counter(std::string_view name, std::int64_t pid, std::int64_t t_ns, double value) {
    begin("C", name, pid, 0);
    ts(t_ns);
    out_ += ",\"args\":{\"value\":";
    append_number(out_, value);
    out_ += "}}";
  }

 private:
  std::string& out_;
  bool first_ = true;
};

// Where an arrow ends: inside the receiver's span of the same stage, so viewers bind it there.
// A flow that arrived before the receiver started its collective is drawn at that start.
std::int64_t arrow_end(const core::RankTimeline* rank, const FlowArrow& f) {
  if (rank == nullptr) return f.end_ns;
  const core::Span* later = nullptr;
  for (const core::Span& s : rank->spans) {
    if (s.lane != f.dst_lane || s.stage != f.name) continue;
    if (s.start_ns <= f.end_ns && f.end_ns <= s.end_ns) return f.end_ns;
    if (s.start_ns > f.end_ns && (later == nullptr || s.start_ns < later->start_ns)) later = &s;
  }
  return later != nullptr ? later->start_ns : f.end_ns;
}

}  // namespace

std::string to_chrome_trace(const core::Timeline& timeline, const TraceExtras& extras) {
  std::string out;
  out += "{\"displayTimeUnit\":\"ns\",\"otherData\":{\"format\":\"hpsim-chrome-trace\",\"version\":1,\"source\":";
  append_json_string(out, timeline.source);
  out += ",\"strategy\":";
  append_json_string(out, timeline.strategy);
  fmt::format_to(std::back_inserter(out), ",\"num_ranks\":{}}},\n\"traceEvents\":[", timeline.ranks.size());
  Writer w(out);

  std::int64_t network_pid = 0;
  std::map<std::int64_t, const core::RankTimeline*> by_rank;
  for (const auto& rank : timeline.ranks) {
    by_rank[rank.rank] = &rank;
    network_pid = std::max(network_pid, rank.rank + 1);
  }
  for (const auto& rank : timeline.ranks) {
    const std::int64_t pid = rank.rank;
    w.metadata("process_name", pid, 0, "name", fmt::format("rank {}", rank.rank));
    w.metadata_int("process_sort_index", pid, 0, rank.rank);
    w.metadata("thread_name", pid, 0, "name", "compute");
    w.metadata_int("thread_sort_index", pid, 0, 0);
    w.metadata("thread_name", pid, 1, "name", "comm");
    w.metadata_int("thread_sort_index", pid, 1, 1);
  }
  const bool has_network = std::any_of(extras.counters.begin(), extras.counters.end(),
                                       [](const CounterSample& c) { return c.rank < 0; });
  if (has_network) {
    w.metadata("process_name", network_pid, 0, "name", "network");
    w.metadata_int("process_sort_index", network_pid, 0, network_pid);
  }

  for (const auto& rank : timeline.ranks) {
    for (const core::Span& s : rank.spans) {
      w.begin("X", s.stage, rank.rank, tid_of(s.lane));
      out += ",\"cat\":";
      append_json_string(out, core::to_string(s.lane));
      w.ts(s.start_ns);
      out += ",\"dur\":";
      append_us(out, s.end_ns - s.start_ns);
      out += ",\"args\":{\"stage\":";
      append_json_string(out, s.stage);
      out += ",\"phase\":";
      append_json_string(out, core::to_string(s.phase));
      out += ",\"lane\":";
      append_json_string(out, core::to_string(s.lane));
      out += ",\"bytes\":";
      append_number(out, s.bytes);
      out += ",\"flops\":";
      append_number(out, s.flops);
      fmt::format_to(std::back_inserter(out), ",\"layer\":{},\"micro_batch\":{},\"start_ns\":{},\"end_ns\":{}}}}}", s.layer,
                     s.micro_batch, s.start_ns, s.end_ns);
    }
  }

  std::int64_t id = 0;
  for (const FlowArrow& f : extras.flows) {
    ++id;
    w.begin("s", f.name, f.src_rank, tid_of(f.src_lane));
    out += ",\"cat\":\"transfer\"";
    fmt::format_to(std::back_inserter(out), ",\"id\":{}", id);
    w.ts(f.start_ns);
    out += ",\"args\":{\"bytes\":";
    append_number(out, f.bytes);
    fmt::format_to(std::back_inserter(out), ",\"num_flows\":{},\"dst_rank\":{},\"arrived_ns\":{}}}}}", f.num_flows,
                   f.dst_rank, f.end_ns);
    const auto it = by_rank.find(f.dst_rank);
    w.begin("f", f.name, f.dst_rank, tid_of(f.dst_lane));
    out += ",\"cat\":\"transfer\",\"bp\":\"e\"";
    fmt::format_to(std::back_inserter(out), ",\"id\":{}", id);
    w.ts(arrow_end(it == by_rank.end() ? nullptr : it->second, f));
    w.end();
  }

  if (extras.comm_bytes_counters) {
    for (const auto& rank : timeline.ranks) {
      std::vector<const core::Span*> comm;
      for (const core::Span& s : rank.spans) {
        if (s.lane == core::Lane::kComm) comm.push_back(&s);
      }
      std::stable_sort(comm.begin(), comm.end(), [](const core::Span* a, const core::Span* b) { return a->start_ns < b->start_ns; });
      for (const core::Span* s : comm) {
        w.counter("comm bytes", rank.rank, s->start_ns, s->bytes);
        w.counter("comm bytes", rank.rank, s->end_ns, 0);
      }
    }
  }
  for (const CounterSample& c : extras.counters) {
    w.counter(c.name, c.rank < 0 ? network_pid : c.rank, c.t_ns, c.value);
  }
  out += "\n]}\n";
  return out;
}

core::Status write_chrome_trace(const std::string& path, const core::Timeline& timeline, const TraceExtras& extras) {
  return core::write_text_file(path, to_chrome_trace(timeline, extras));
}

}  // namespace hpsim::traces
