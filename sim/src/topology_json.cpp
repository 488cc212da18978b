// Custom topology files (docs/simulator.md, "Custom topology files"). Reading is strict: unknown
// or missing fields and wrong types are errors naming the file and the field's path.
#include <set>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "hpsim/core/json.h"
#include "hpsim/sim/topology.h"
#include "topology_impl.h"

namespace hpsim::sim {
namespace {

using nlohmann::json;

// Every GPU pair is checked for a path up to this many GPUs; larger files check every GPU against
// GPU 0 in both directions.
constexpr std::int64_t kFullCheckGpus = 2048;

struct Reader {
  std::string origin;
  std::vector<std::string> errors;

  void fail(const std::string& path, const std::string& rule) { errors.push_back(fmt::format("{}: {}: {}", origin, path, rule)); }

  void check_keys(const json& object, const std::string& path, const std::set<std::string>& allowed,
                  const std::set<std::string>& required) {
    for (const auto& [key, value] : object.items()) {
      if (allowed.count(key) == 0) fail(path.empty() ? key : path + "." + key, "unknown field");
    }
    for (const auto& key : required) {
      if (!object.contains(key)) fail(path.empty() ? key : path + "." + key, "missing");
    }
  }

  std::string get_string(const json& object, const std::string& key, const std::string& path) {
    if (!object.contains(key)) return {};
    const json& v = object.at(key);
    if (!v.is_string()) {
      fail(path + key, "expected a string");
      return {};
    }
    return v.get<std::string>();
  }

  double get_number(const json& object, const std::string& key, const std::string& path) {
    if (!object.contains(key)) return 0;
    const json& v = object.at(key);
    if (!v.is_number()) {
      fail(path + key, "expected a number");
      return 0;
    }
    return v.get<double>();
  }

  bool get_bool(const json& object, const std::string& key, const std::string& path) {
    if (!object.contains(key)) return false;
    const json& v = object.at(key);
    if (!v.is_boolean()) {
      fail(path + key, "expected true or false");
      return false;
    }
    return v.get<bool>();
  }
};

}  // namespace

core::Expected<Topology> Topology::from_json(std::string_view json_text, const std::string& origin) {
  json doc;
  try {
    doc = json::parse(json_text.begin(), json_text.end());
  } catch (const json::parse_error& e) {
    return core::Error{core::ErrorCode::kParse, fmt::format("{}: malformed JSON: {}", origin, e.what())};
  }
  if (!doc.is_object()) return core::Error{core::ErrorCode::kParse, fmt::format("{}: expected a JSON object", origin)};

  Reader reader{origin, {}};
  reader.check_keys(doc, "", {"name", "num_gpus", "switches", "links"}, {"num_gpus", "links"});
  const std::string name = reader.get_string(doc, "name", "");
  std::int64_t num_gpus = 0;
  if (doc.contains("num_gpus")) {
    if (!doc["num_gpus"].is_number_integer()) {
      reader.fail("num_gpus", "expected an integer");
    } else {
      num_gpus = doc["num_gpus"].get<std::int64_t>();
    }
  }
  std::vector<std::string> switches;
  if (doc.contains("switches")) {
    if (!doc["switches"].is_array()) {
      reader.fail("switches", "expected an array of names");
    } else {
      for (std::size_t i = 0; i < doc["switches"].size(); ++i) {
        const json& v = doc["switches"][i];
        if (!v.is_string()) {
          reader.fail(fmt::format("switches[{}]", i), "expected a string");
        } else {
          switches.push_back(v.get<std::string>());
        }
      }
    }
  }
  std::vector<LinkSpec> links;
  if (doc.contains("links")) {
    if (!doc["links"].is_array()) {
      reader.fail("links", "expected an array of links");
    } else {
      for (std::size_t i = 0; i < doc["links"].size(); ++i) {
        const json& v = doc["links"][i];
        const std::string path = fmt::format("links[{}]", i);
        if (!v.is_object()) {
          reader.fail(path, "expected an object");
          continue;
        }
        reader.check_keys(v, path, {"from", "to", "bandwidth_gbps", "latency_us", "kind", "duplex", "reverse_kind"},
                          {"from", "to", "bandwidth_gbps", "latency_us"});
        LinkSpec spec;
        spec.from = reader.get_string(v, "from", path + ".");
        spec.to = reader.get_string(v, "to", path + ".");
        spec.bandwidth_gbps = reader.get_number(v, "bandwidth_gbps", path + ".");
        spec.latency_us = reader.get_number(v, "latency_us", path + ".");
        spec.kind = reader.get_string(v, "kind", path + ".");
        spec.duplex = reader.get_bool(v, "duplex", path + ".");
        spec.reverse_kind = reader.get_string(v, "reverse_kind", path + ".");
        if (!spec.reverse_kind.empty() && !spec.duplex) reader.fail(path + ".reverse_kind", "only allowed with \"duplex\": true");
        links.push_back(std::move(spec));
      }
    }
  }
  if (!reader.errors.empty()) {
    std::string message;
    for (const auto& e : reader.errors) message += (message.empty() ? "" : "\n") + e;
    return core::Error{core::ErrorCode::kInvalidArgument, message};
  }

  auto topology = from_links(name.empty() ? origin : name, num_gpus, switches, links, origin);
  if (!topology) return topology;
  const Impl& impl = *topology->impl_;
  const std::int64_t n = impl.num_gpus;
  for (std::int64_t s = 0; s < n; ++s) {
    for (std::int64_t d = 0; d < n; ++d) {
      if (s == d) continue;
      if (n > kFullCheckGpus && s != 0 && d != 0) continue;
      if (!impl.has_route(s, d)) {
        return core::Error::field(origin + ": links",
                                  fmt::format("no path from gpu{} to gpu{} (paths go through switches or a direct link, "
                                              "never through another GPU)",
                                              s, d));
      }
    }
  }
  return topology;
}

core::Expected<Topology> Topology::load(const std::string& path) {
  auto text = core::read_text_file(path);
  if (!text) return text.error();
  return from_json(*text, path);
}

}  // namespace hpsim::sim
