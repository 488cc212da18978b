// Recorded routing counts (docs/model.md, "Routing trace files"). Strict: every structural problem
// and every broken routing rule is reported with its path, all of them together.
#include <set>

#include <nlohmann/json.hpp>

#include "hpsim/core/json.h"
#include "hpsim/model/workload.h"
#include "error_lines.h"

namespace hpsim::model {
namespace {

using nlohmann::json;

constexpr std::string_view kFormat = "hpsim-routing-counts";
constexpr std::int64_t kVersion = 1;

class TraceReader {
 public:
  explicit TraceReader(const json& doc) : doc_(doc) {}

  std::vector<std::string>& errors() { return errors_; }
  void fail(const std::string& path, const std::string& rule) { errors_.push_back(path + ": " + rule); }

  bool has(const char* key) const { return doc_.contains(key); }

  std::int64_t positive_integer(const char* key, bool required = true) {
    seen_.insert(key);
    auto it = doc_.find(key);
    if (it == doc_.end()) {
      if (required) fail(key, "missing field");
      return 0;
    }
    if (!it->is_number_integer()) {
      fail(key, "expected an integer");
      return 0;
    }
    const auto v = it->get<std::int64_t>();
    if (v <= 0) fail(key, fmt::format("must be > 0, got {}", v));
    return v;
  }

  void string(const char* key, std::string_view expected, bool required) {
    seen_.insert(key);
    auto it = doc_.find(key);
    if (it == doc_.end()) {
      if (required) fail(key, "missing field");
      return;
    }
    if (!it->is_string()) {
      fail(key, "expected a string");
      return;
    }
    if (!expected.empty() && it->get<std::string>() != expected) {
      fail(key, fmt::format("expected \"{}\", got \"{}\"", expected, it->get<std::string>()));
    }
  }

  // One source rank's row: E non-negative integer counts, each <= n, summing to n * k.
  void row(const json& v, const std::string& path, std::int64_t E, std::int64_t n, std::int64_t k,
           std::vector<double>& out) {
    if (!v.is_array()) {
      fail(path, "expected an array of per-expert counts");
      return;
    }
    if (static_cast<std::int64_t>(v.size()) != E) {
      fail(path, fmt::format("expected {} counts (num_experts), got {}", E, v.size()));
      return;
    }
    std::int64_t sum = 0;
    for (std::size_t e = 0; e < v.size(); ++e) {
      const auto cpath = fmt::format("{}[{}]", path, e);
      if (!v[e].is_number_integer()) {
        fail(cpath, "expected an integer count");
        return;
      }
      const auto c = v[e].get<std::int64_t>();
      if (c < 0 || c > n) {
        fail(cpath, fmt::format("must be in [0, tokens_per_rank = {}] (an expert takes a token at most once), got {}",
                                n, c));
        return;
      }
      sum += c;
      out.push_back(static_cast<double>(c));
    }
    if (sum != n * k) {
      fail(path, fmt::format("counts sum to {}, expected tokens_per_rank * top_k = {}", sum, n * k));
    }
  }

  // A [W][E] array of rows.
  void ranks(const json& v, const std::string& path, std::int64_t W, std::int64_t E, std::int64_t n, std::int64_t k,
             std::vector<double>& out) {
    if (!v.is_array()) {
      fail(path, "expected an array with one row per source rank");
      return;
    }
    if (static_cast<std::int64_t>(v.size()) != W) {
      fail(path, fmt::format("expected {} rows (num_ranks), got {}", W, v.size()));
      return;
    }
    for (std::size_t r = 0; r < v.size(); ++r) row(v[r], fmt::format("{}[{}]", path, r), E, n, k, out);
  }

  void mark_seen(const char* key) { seen_.insert(key); }

  void unknown_fields() {
    for (const auto& [key, value] : doc_.items()) {
      if (!seen_.contains(key)) fail(key, "unknown field");
    }
  }

 private:
  const json& doc_;
  std::vector<std::string> errors_;
  std::set<std::string, std::less<>> seen_;
};

}  // namespace

core::Expected<RoutingTrace> parse_routing_trace(std::string_view json_text) {
  json doc;
  try {
    doc = json::parse(json_text.begin(), json_text.end());
  } catch (const json::parse_error& e) {
    return core::Error{core::ErrorCode::kParse, fmt::format("(document): malformed JSON: {}", e.what())};
  }
  if (!doc.is_object()) return core::Error{core::ErrorCode::kParse, "(document): expected an object"};

  TraceReader r(doc);
  RoutingTrace t;
  r.string("format", kFormat, true);
  r.mark_seen("version");
  if (!doc.contains("version")) {
    r.fail("version", "missing field");
  } else if (!doc["version"].is_number_integer() || doc["version"].get<std::int64_t>() != kVersion) {
    r.fail("version", fmt::format("expected {}", kVersion));
  }
  r.string("note", "", false);
  t.num_ranks = r.positive_integer("num_ranks");
  t.tokens_per_rank = r.positive_integer("tokens_per_rank");
  t.num_experts = r.positive_integer("num_experts");
  t.top_k = r.positive_integer("top_k");
  const bool has_hp = doc.contains("hp");
  t.num_heads = r.positive_integer("num_heads", has_hp);
  if (t.top_k > 0 && t.num_experts > 0 && t.top_k > t.num_experts) {
    r.fail("top_k", fmt::format("must be <= num_experts ({}), got {}", t.num_experts, t.top_k));
  }
  r.mark_seen("ep");
  r.mark_seen("hp");
  r.unknown_fields();
  if (!doc.contains("ep") && !has_hp) r.fail("ep", "the file needs an \"ep\" or an \"hp\" section (or both)");
  if (!r.errors().empty()) {
    std::string message;
    for (const auto& e : r.errors()) message += (message.empty() ? "" : "\n") + e;
    return core::Error{core::ErrorCode::kInvalidArgument, message};
  }

  const auto W = t.num_ranks, E = t.num_experts, n = t.tokens_per_rank, k = t.top_k;
  if (doc.contains("ep")) r.ranks(doc["ep"], "ep", W, E, n, k, t.ep_counts);
  if (has_hp) {
    const auto& hp = doc["hp"];
    if (!hp.is_array()) {
      r.fail("hp", "expected an array with one [num_ranks][num_experts] block per head");
    } else if (static_cast<std::int64_t>(hp.size()) != t.num_heads) {
      r.fail("hp", fmt::format("expected {} heads (num_heads), got {}", t.num_heads, hp.size()));
    } else {
      for (std::size_t g = 0; g < hp.size(); ++g) r.ranks(hp[g], fmt::format("hp[{}]", g), W, E, n, k, t.hp_counts);
    }
  }
  if (!r.errors().empty()) {
    std::string message;
    for (const auto& e : r.errors()) message += (message.empty() ? "" : "\n") + e;
    return core::Error{core::ErrorCode::kInvalidArgument, message};
  }
  return t;
}

core::Expected<RoutingTrace> load_routing_trace(const std::string& path) {
  auto text = core::read_text_file(path);
  if (!text) return text.error();
  auto trace = parse_routing_trace(*text);
  if (!trace) return detail::prefix_lines(trace.error(), path + ": ");
  return trace;
}

}  // namespace hpsim::model
