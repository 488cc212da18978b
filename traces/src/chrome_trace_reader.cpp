// Chrome Trace Event JSON reader: complete ("X") events back into a core::Timeline.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "hpsim/core/json.h"
#include "hpsim/traces/chrome_trace.h"

namespace hpsim::traces {
namespace {

using nlohmann::json;

// "rank 12" -> 12.
bool parse_rank_name(const std::string& name, std::int64_t* rank) {
  constexpr std::string_view kPrefix = "rank ";
  if (name.size() <= kPrefix.size() || name.compare(0, kPrefix.size(), kPrefix) != 0) return false;
  const char* begin = name.data() + kPrefix.size();
  const char* end = name.data() + name.size();
  const auto [ptr, ec] = std::from_chars(begin, end, *rank);
  return ec == std::errc() && ptr == end && *rank >= 0;
}

class Reader {
 public:
  explicit Reader(std::string origin) : origin_(std::move(origin)) {}

  core::Error error(std::size_t event, std::string_view field, std::string_view rule) const {
    return core::Error{core::ErrorCode::kParse, fmt::format("{}: traceEvents[{}].{}: {}", origin_, event, field, rule)};
  }

  core::Expected<core::Timeline> read(const json& doc) {
    const json* events = nullptr;
    core::Timeline timeline;
    if (doc.is_array()) {
      events = &doc;
    } else if (doc.is_object() && doc.contains("traceEvents") && doc["traceEvents"].is_array()) {
      events = &doc["traceEvents"];
      if (doc.contains("otherData") && doc["otherData"].is_object()) {
        const json& other = doc["otherData"];
        if (other.contains("source") && other["source"].is_string()) timeline.source = other["source"].get<std::string>();
        if (other.contains("strategy") && other["strategy"].is_string()) timeline.strategy = other["strategy"].get<std::string>();
      }
    } else {
      return core::Error{core::ErrorCode::kParse,
                         fmt::format("{}: expected an array of events or an object with a \"traceEvents\" array", origin_)};
    }

    // Processes named "rank N" and threads named after a lane.
    std::map<std::int64_t, std::int64_t> rank_of_pid;
    std::map<std::pair<std::int64_t, std::int64_t>, core::Lane> lane_of_thread;
    for (std::size_t i = 0; i < events->size(); ++i) {
      const json& e = (*events)[i];
      if (!e.is_object()) return error(i, "", "expected an object");
      if (!e.contains("ph") || !e["ph"].is_string() || e["ph"].get<std::string>() != "M") continue;
      if (!e.contains("name") || !e["name"].is_string() || !e.contains("args") || !e["args"].is_object()) continue;
      const std::string what = e["name"].get<std::string>();
      const json& args = e["args"];
      if (!args.contains("name") || !args["name"].is_string()) continue;
      const std::string value = args["name"].get<std::string>();
      const std::int64_t pid = e.contains("pid") && e["pid"].is_number_integer() ? e["pid"].get<std::int64_t>() : 0;
      const std::int64_t tid = e.contains("tid") && e["tid"].is_number_integer() ? e["tid"].get<std::int64_t>() : 0;
      std::int64_t rank = 0;
      if (what == "process_name" && parse_rank_name(value, &rank)) rank_of_pid[pid] = rank;
      if (what == "thread_name" && value == "compute") lane_of_thread[{pid, tid}] = core::Lane::kCompute;
      if (what == "thread_name" && value == "comm") lane_of_thread[{pid, tid}] = core::Lane::kComm;
    }
    const bool named_ranks = !rank_of_pid.empty();

    std::map<std::int64_t, core::RankTimeline> ranks;
    for (const auto& [pid, rank] : rank_of_pid) ranks[rank].rank = rank;
    for (std::size_t i = 0; i < events->size(); ++i) {
      const json& e = (*events)[i];
      if (!e.contains("ph") || !e["ph"].is_string()) return error(i, "ph", "expected a string");
      if (e["ph"].get<std::string>() != "X") continue;
      if (!e.contains("pid") || !e["pid"].is_number_integer()) return error(i, "pid", "expected an integer");
      const std::int64_t pid = e["pid"].get<std::int64_t>();
      std::int64_t rank = pid;
      if (named_ranks) {
        const auto it = rank_of_pid.find(pid);
        if (it == rank_of_pid.end()) continue;  // not a rank (e.g. the network process)
        rank = it->second;
      }
      const std::int64_t tid = e.contains("tid") && e["tid"].is_number_integer() ? e["tid"].get<std::int64_t>() : 0;
      core::Span span;
      const auto lane_it = lane_of_thread.find({pid, tid});
      span.lane = lane_it != lane_of_thread.end() ? lane_it->second : (tid == 0 ? core::Lane::kCompute : core::Lane::kComm);
      if (!e.contains("name") || !e["name"].is_string()) return error(i, "name", "expected a string");
      span.stage = e["name"].get<std::string>();
      if (!e.contains("ts") || !e["ts"].is_number()) return error(i, "ts", "expected a number (microseconds)");
      if (!e.contains("dur") || !e["dur"].is_number()) return error(i, "dur", "expected a number (microseconds)");
      const double ts = e["ts"].get<double>();
      const double dur = e["dur"].get<double>();
      if (!std::isfinite(ts) || !std::isfinite(dur) || dur < 0) return error(i, "dur", "must be finite and >= 0");
      span.start_ns = std::llround(ts * 1e3);
      span.end_ns = std::llround((ts + dur) * 1e3);
      if (e.contains("args")) {
        const json& args = e["args"];
        if (!args.is_object()) return error(i, "args", "expected an object");
        auto status = read_args(args, i, span);
        if (!status) return status.error();
      }
      if (span.end_ns < span.start_ns) return error(i, "args.end_ns", "must be >= start_ns");
      ranks[rank].rank = rank;
      ranks[rank].spans.push_back(std::move(span));
    }
    for (auto& [rank, rt] : ranks) timeline.ranks.push_back(std::move(rt));
    return timeline;
  }

 private:
  core::Status read_args(const json& args, std::size_t i, core::Span& span) const {
    if (args.contains("stage")) {
      if (!args["stage"].is_string()) return error(i, "args.stage", "expected a string");
      span.stage = args["stage"].get<std::string>();
    }
    if (args.contains("phase")) {
      if (!args["phase"].is_string()) return error(i, "args.phase", "expected a string");
      const std::string phase = args["phase"].get<std::string>();
      if (phase == "forward") {
        span.phase = core::Phase::kForward;
      } else if (phase == "backward") {
        span.phase = core::Phase::kBackward;
      } else {
        return error(i, "args.phase", fmt::format("must be \"forward\" or \"backward\", got \"{}\"", phase));
      }
    }
    if (args.contains("lane")) {
      if (!args["lane"].is_string()) return error(i, "args.lane", "expected a string");
      const std::string lane = args["lane"].get<std::string>();
      if (lane == "compute") {
        span.lane = core::Lane::kCompute;
      } else if (lane == "comm") {
        span.lane = core::Lane::kComm;
      } else {
        return error(i, "args.lane", fmt::format("must be \"compute\" or \"comm\", got \"{}\"", lane));
      }
    }
    for (const char* key : {"bytes", "flops"}) {
      if (!args.contains(key) || args[key].is_null()) continue;
      if (!args[key].is_number()) return error(i, fmt::format("args.{}", key), "expected a number");
      (std::string_view(key) == "bytes" ? span.bytes : span.flops) = args[key].get<double>();
    }
    for (const char* key : {"layer", "micro_batch", "start_ns", "end_ns"}) {
      if (!args.contains(key)) continue;
      if (!args[key].is_number_integer()) return error(i, fmt::format("args.{}", key), "expected an integer");
      const auto v = args[key].get<std::int64_t>();
      const std::string_view k(key);
      if (k == "layer") span.layer = v;
      if (k == "micro_batch") span.micro_batch = v;
      if (k == "start_ns") span.start_ns = v;
      if (k == "end_ns") span.end_ns = v;
    }
    return core::Status::ok();
  }

  std::string origin_;
};

}  // namespace

core::Expected<core::Timeline> parse_chrome_trace(std::string_view json_text, const std::string& origin) {
  json doc;
  try {
    doc = json::parse(json_text.begin(), json_text.end());
  } catch (const json::parse_error& e) {
    return core::Error{core::ErrorCode::kParse, fmt::format("{}: malformed JSON: {}", origin, e.what())};
  }
  return Reader(origin).read(doc);
}

core::Expected<core::Timeline> read_chrome_trace(const std::string& path) {
  auto text = core::read_text_file(path);
  if (!text) return text.error();
  return parse_chrome_trace(*text, path);
}

}  // namespace hpsim::traces
