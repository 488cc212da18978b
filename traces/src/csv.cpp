// Timeline <-> CSV (csv.h).
#include "hpsim/traces/csv.h"

#include <charconv>
#include <map>
#include <vector>

#include <fmt/format.h>

#include "hpsim/core/json.h"
#include "text.h"

namespace hpsim::traces {
namespace {

constexpr std::string_view kHeader =
    "source,strategy,rank,lane,stage,phase,layer,micro_batch,start_ns,end_ns,duration_ns,bytes,flops";

void append_field(std::string& out, std::string_view s) {
  if (s.find_first_of(",\"\r\n") == std::string_view::npos) {
    out += s;
    return;
  }
  out += '"';
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
}

// Splits one record; `pos` moves past it. Quoted fields may hold commas, quotes and line breaks.
bool next_record(std::string_view text, std::size_t& pos, std::vector<std::string>& fields) {
  fields.clear();
  if (pos >= text.size()) return false;
  std::string field;
  bool quoted = false;
  while (pos < text.size()) {
    const char c = text[pos++];
    if (quoted) {
      if (c == '"') {
        if (pos < text.size() && text[pos] == '"') {
          field += '"';
          ++pos;
        } else {
          quoted = false;
        }
      } else {
        field += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.push_back(std::move(field));
      field.clear();
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && pos < text.size() && text[pos] == '\n') ++pos;
      break;
    } else {
      field += c;
    }
  }
  fields.push_back(std::move(field));
  return true;
}

template <typename T>
bool parse_number(const std::string& s, T* out) {
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

}  // namespace

std::string to_csv(const core::Timeline& timeline) {
  std::string out(kHeader);
  out += '\n';
  for (const auto& rank : timeline.ranks) {
    for (const core::Span& s : rank.spans) {
      append_field(out, timeline.source);
      out += ',';
      append_field(out, timeline.strategy);
      fmt::format_to(std::back_inserter(out), ",{},{},", rank.rank, core::to_string(s.lane));
      append_field(out, s.stage);
      fmt::format_to(std::back_inserter(out), ",{},{},{},{},{},{},", core::to_string(s.phase), s.layer, s.micro_batch,
                     s.start_ns, s.end_ns, s.end_ns - s.start_ns);
      detail::append_number(out, s.bytes);
      out += ',';
      detail::append_number(out, s.flops);
      out += '\n';
    }
  }
  return out;
}

core::Status write_timeline_csv(const std::string& path, const core::Timeline& timeline) {
  return core::write_text_file(path, to_csv(timeline));
}

core::Expected<core::Timeline> parse_timeline_csv(std::string_view text, const std::string& origin) {
  std::size_t pos = 0;
  std::vector<std::string> f;
  if (!next_record(text, pos, f) || fmt::format("{}", fmt::join(f, ",")) != kHeader) {
    return core::Error{core::ErrorCode::kParse, fmt::format("{}: line 1: expected the header \"{}\"", origin, kHeader)};
  }
  core::Timeline timeline;
  std::map<std::int64_t, core::RankTimeline> ranks;
  std::int64_t line = 1;
  while (next_record(text, pos, f)) {
    ++line;
    if (f.size() == 1 && f[0].empty()) continue;  // blank line
    auto fail = [&](std::string_view column, std::string_view rule) {
      return core::Error{core::ErrorCode::kParse, fmt::format("{}: line {}: {}: {}", origin, line, column, rule)};
    };
    if (f.size() != 13) return fail("row", fmt::format("expected 13 fields, got {}", f.size()));
    timeline.source = f[0];
    timeline.strategy = f[1];
    std::int64_t rank = 0;
    if (!parse_number(f[2], &rank) || rank < 0) return fail("rank", "expected an integer >= 0");
    core::Span s;
    if (f[3] == "compute") {
      s.lane = core::Lane::kCompute;
    } else if (f[3] == "comm") {
      s.lane = core::Lane::kComm;
    } else {
      return fail("lane", "must be compute or comm");
    }
    s.stage = f[4];
    if (f[5] == "forward") {
      s.phase = core::Phase::kForward;
    } else if (f[5] == "backward") {
      s.phase = core::Phase::kBackward;
    } else {
      return fail("phase", "must be forward or backward");
    }
    if (!parse_number(f[6], &s.layer)) return fail("layer", "expected an integer");
    if (!parse_number(f[7], &s.micro_batch)) return fail("micro_batch", "expected an integer");
    if (!parse_number(f[8], &s.start_ns)) return fail("start_ns", "expected an integer");
    if (!parse_number(f[9], &s.end_ns)) return fail("end_ns", "expected an integer");
    if (!parse_number(f[11], &s.bytes)) return fail("bytes", "expected a number");
    if (!parse_number(f[12], &s.flops)) return fail("flops", "expected a number");
    ranks[rank].rank = rank;
    ranks[rank].spans.push_back(std::move(s));
  }
  for (auto& [r, rt] : ranks) timeline.ranks.push_back(std::move(rt));
  return timeline;
}

}  // namespace hpsim::traces
