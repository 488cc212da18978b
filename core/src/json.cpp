// Strict JSON reading and writing of the vocabulary types (nlohmann-json stays in this file).
#include "hpsim/core/json.h"

#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "enums.h"
#include "hpsim/core/validate.h"

namespace hpsim::core {
namespace {

using nlohmann::json;

// Walks one JSON object, recording every structural error with its path; marks the keys it
// consumed so that the unknown ones can be reported at the end.
class ObjectReader {
 public:
  ObjectReader(const json& object, std::string path, std::vector<FieldError>& errors)
      : object_(object), path_(std::move(path)), errors_(errors) {
    if (!object_.is_object()) {
      fail(path_.empty() ? "(document)" : path_, "expected an object");
      valid_ = false;
    }
  }

  ~ObjectReader() {
    if (!valid_) return;
    for (const auto& [key, value] : object_.items()) {
      if (!seen_.contains(key)) fail(child(key), "unknown field");
    }
  }
  ObjectReader(const ObjectReader&) = delete;
  ObjectReader& operator=(const ObjectReader&) = delete;

  std::string child(std::string_view key) const { return path_.empty() ? std::string(key) : path_ + "." + std::string(key); }

  const json* find(std::string_view key, bool required = true) {
    if (!valid_) return nullptr;
    seen_.insert(std::string(key));
    auto it = object_.find(key);
    if (it == object_.end()) {
      if (required) fail(child(key), "missing field");
      return nullptr;
    }
    return &*it;
  }

  void integer(std::string_view key, std::int64_t& out) {
    if (const json* v = find(key)) {
      if (v->is_number_integer()) {
        out = v->get<std::int64_t>();
      } else if (v->is_number_float() && v->get<double>() == static_cast<double>(static_cast<std::int64_t>(v->get<double>()))) {
        out = static_cast<std::int64_t>(v->get<double>());
      } else {
        fail(child(key), "expected an integer, got " + describe(*v));
      }
    }
  }

  void unsigned_integer(std::string_view key, std::uint64_t& out) {
    if (const json* v = find(key)) {
      if (v->is_number_unsigned()) {
        out = v->get<std::uint64_t>();
      } else {
        fail(child(key), "expected a non-negative integer, got " + describe(*v));
      }
    }
  }

  void number(std::string_view key, double& out, bool required = true) {
    if (const json* v = find(key, required)) {
      if (v->is_number()) {
        out = v->get<double>();
      } else {
        fail(child(key), "expected a number, got " + describe(*v));
      }
    }
  }

  void string(std::string_view key, std::string& out, bool required = true) {
    if (const json* v = find(key, required)) {
      if (v->is_string()) {
        out = v->get<std::string>();
      } else {
        fail(child(key), "expected a string, got " + describe(*v));
      }
    }
  }

  template <typename E, std::size_t N>
  void enumeration(std::string_view key, const detail::EnumTable<E, N>& table, E& out) {
    if (const json* v = find(key)) {
      if (!v->is_string()) {
        fail(child(key), "expected one of " + detail::choices(table) + ", got " + describe(*v));
        return;
      }
      if (auto parsed = detail::parse_enum(table, v->get<std::string>())) {
        out = *parsed;
      } else {
        fail(child(key), "expected one of " + detail::choices(table) + ", got \"" + v->get<std::string>() + "\"");
      }
    }
  }

  template <typename Fn>
  void object(std::string_view key, Fn&& fn, bool required = true) {
    if (const json* v = find(key, required)) {
      ObjectReader sub(*v, child(key), errors_);
      if (sub.valid_) fn(sub);
    }
  }

  template <typename Fn>
  void array(std::string_view key, Fn&& fn, bool required = true) {
    if (const json* v = find(key, required)) {
      if (!v->is_array()) {
        fail(child(key), "expected an array, got " + describe(*v));
        return;
      }
      for (std::size_t i = 0; i < v->size(); ++i) fn((*v)[i], child(key) + "[" + std::to_string(i) + "]");
    }
  }

  template <typename Fn>
  void map(std::string_view key, Fn&& fn, bool required = true) {
    if (const json* v = find(key, required)) {
      if (!v->is_object()) {
        fail(child(key), "expected an object, got " + describe(*v));
        return;
      }
      for (const auto& [k, value] : v->items()) fn(k, value, child(key) + "." + k);
    }
  }

  bool valid() const { return valid_; }
  std::vector<FieldError>& errors() { return errors_; }

  void fail(std::string path, std::string rule) { errors_.push_back({std::move(path), std::move(rule)}); }

  static std::string describe(const json& v) {
    switch (v.type()) {
      case json::value_t::null: return "null";
      case json::value_t::boolean: return "a boolean";
      case json::value_t::string: return "a string";
      case json::value_t::array: return "an array";
      case json::value_t::object: return "an object";
      case json::value_t::number_float: return "a number with a fraction";
      default: return "a number";
    }
  }

 private:
  const json& object_;
  std::string path_;
  std::vector<FieldError>& errors_;
  std::set<std::string, std::less<>> seen_;
  bool valid_ = true;
};

Expected<json> parse_document(std::string_view text) {
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    // e.byte is the 1-based offset of the failure; turn it into line:column.
    std::size_t line = 1, column = 1;
    for (std::size_t i = 0; i + 1 < e.byte && i < text.size(); ++i) {
      if (text[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    std::string what = e.what();
    if (auto pos = what.find("parse error"); pos != std::string::npos) what = what.substr(pos);
    return Error{ErrorCode::kParse, fmt::format("(document): malformed JSON at line {}, column {}: {}", line, column, what)};
  }
}

Error prefix_file(const Error& error, const std::string& path) {
  std::string message;
  std::istringstream lines(error.message);
  std::string line;
  bool first = true;
  while (std::getline(lines, line)) {
    if (!first) message += '\n';
    message += path + ": " + line;
    first = false;
  }
  return Error{error.code, message};
}

// ---- Scenario -------------------------------------------------------------------------------

void read_model(ObjectReader& r, ModelSpec& m) {
  r.string("name", m.name);
  r.integer("d_model", m.d_model);
  r.integer("num_heads", m.num_heads);
  r.integer("head_dim", m.head_dim);
  r.integer("num_experts", m.num_experts);
  r.integer("top_k", m.top_k);
  r.integer("expert_hidden", m.expert_hidden);
  r.integer("num_layers", m.num_layers);
  r.integer("num_dense_layers", m.num_dense_layers);
  r.integer("dense_hidden", m.dense_hidden);
  r.integer("seq_len", m.seq_len);
  r.integer("vocab_size", m.vocab_size);
  r.integer("bytes_per_element", m.bytes_per_element);
}

void read_tier(ObjectReader& r, LinkTier& t) {
  r.number("bandwidth_gbps", t.bandwidth_gbps);
  r.number("latency_us", t.latency_us);
}

void read_cluster(ObjectReader& r, ClusterSpec& c) {
  r.string("name", c.name);
  r.integer("num_nodes", c.num_nodes);
  r.integer("gpus_per_node", c.gpus_per_node);
  r.object("gpu", [&](ObjectReader& g) {
    g.string("name", c.gpu.name);
    g.number("memory_gb", c.gpu.memory_gb);
  });
  r.object("intra_node", [&](ObjectReader& t) { read_tier(t, c.intra_node); });
  r.object("inter_node", [&](ObjectReader& t) { read_tier(t, c.inter_node); });
  r.enumeration("topology", detail::kTopologyNames, c.topology);
  r.integer("nodes_per_leaf", c.nodes_per_leaf);
  r.number("oversubscription", c.oversubscription);
  r.string("topology_file", c.topology_file, /*required=*/false);
}

void read_workload(ObjectReader& r, WorkloadSpec& w) {
  r.integer("tokens_per_rank", w.tokens_per_rank);
  r.enumeration("routing", detail::kRoutingNames, w.routing);
  r.number("zipf_skew", w.zipf_skew);
  r.enumeration("ownership", detail::kOwnershipNames, w.ownership);
  r.enumeration("mode", detail::kModeNames, w.mode);
  r.unsigned_integer("seed", w.seed);
  r.string("trace_file", w.trace_file, /*required=*/false);
}

void read_training(ObjectReader& r, TrainingSpec& t) {
  r.integer("micro_batches", t.micro_batches);
  r.integer("global_batch_tokens", t.global_batch_tokens);
  r.number("token_budget", t.token_budget);
  r.integer("weight_bytes", t.weight_bytes);
  r.integer("grad_bytes", t.grad_bytes);
  r.integer("optimizer_bytes", t.optimizer_bytes);
}

json tier_json(const LinkTier& t) { return {{"bandwidth_gbps", t.bandwidth_gbps}, {"latency_us", t.latency_us}}; }

json scenario_json(const Scenario& s) {
  const auto& m = s.model;
  const auto& c = s.cluster;
  const auto& w = s.workload;
  const auto& t = s.training;
  json cluster = {{"name", c.name},
                  {"num_nodes", c.num_nodes},
                  {"gpus_per_node", c.gpus_per_node},
                  {"gpu", {{"name", c.gpu.name}, {"memory_gb", c.gpu.memory_gb}}},
                  {"intra_node", tier_json(c.intra_node)},
                  {"inter_node", tier_json(c.inter_node)},
                  {"topology", to_string(c.topology)},
                  {"nodes_per_leaf", c.nodes_per_leaf},
                  {"oversubscription", c.oversubscription}};
  if (!c.topology_file.empty()) cluster["topology_file"] = c.topology_file;
  json workload = {{"tokens_per_rank", w.tokens_per_rank}, {"routing", to_string(w.routing)},
                   {"zipf_skew", w.zipf_skew},             {"ownership", to_string(w.ownership)},
                   {"mode", to_string(w.mode)},            {"seed", w.seed}};
  if (!w.trace_file.empty()) workload["trace_file"] = w.trace_file;
  return {{"name", s.name},
          {"description", s.description},
          {"model",
           {{"name", m.name},
            {"d_model", m.d_model},
            {"num_heads", m.num_heads},
            {"head_dim", m.head_dim},
            {"num_experts", m.num_experts},
            {"top_k", m.top_k},
            {"expert_hidden", m.expert_hidden},
            {"num_layers", m.num_layers},
            {"num_dense_layers", m.num_dense_layers},
            {"dense_hidden", m.dense_hidden},
            {"seq_len", m.seq_len},
            {"vocab_size", m.vocab_size},
            {"bytes_per_element", m.bytes_per_element}}},
          {"parallel", {{"strategy", to_string(s.parallel.strategy)}, {"num_ranks", s.parallel.num_ranks}}},
          {"cluster", cluster},
          {"workload", workload},
          {"training",
           {{"micro_batches", t.micro_batches},
            {"global_batch_tokens", t.global_batch_tokens},
            {"token_budget", t.token_budget},
            {"weight_bytes", t.weight_bytes},
            {"grad_bytes", t.grad_bytes},
            {"optimizer_bytes", t.optimizer_bytes}}}};
}

// ---- Profile --------------------------------------------------------------------------------

json profile_json(const Profile& p) {
  json kernels = json::object();
  for (const auto& [name, k] : p.kernels) {
    json points = json::array();
    for (const auto& pt : k.points) {
      json point = {{"shape", pt.shape}, {"flops", pt.flops}, {"bytes", pt.bytes}, {"time_us", pt.time_us}};
      if (pt.selections > 0) point["selections"] = pt.selections;  // routers only
      points.push_back(std::move(point));
    }
    kernels[name] = {{"alpha_us", k.alpha_us}, {"tflops", k.tflops}, {"gbps", k.gbps},
                     {"fit_error", k.fit_error}, {"points", points}};
    if (k.select_gps > 0) kernels[name]["select_gps"] = k.select_gps;
    if (k.roofline) kernels[name]["form"] = "roofline";
  }
  json collectives = json::object();
  for (const auto& [tier, by_name] : p.collectives) {
    json t = json::object();
    for (const auto& [name, c] : by_name) {
      json points = json::array();
      for (const auto& pt : c.points) {
        points.push_back({{"num_ranks", pt.num_ranks}, {"bytes", pt.bytes}, {"time_us", pt.time_us}});
      }
      t[name] = {{"alpha_us", c.alpha_us}, {"efficiency", c.efficiency}, {"fit_error", c.fit_error}, {"points", points}};
      if (c.has_large_line()) t[name]["large"] = {{"alpha_us", c.large_alpha_us}, {"efficiency", c.large_efficiency}};
    }
    collectives[tier] = t;
  }
  return {{"name", p.name},
          {"source", to_string(p.source)},
          {"note", p.note},
          {"gpu", p.gpu},
          {"date", p.date},
          {"versions", p.versions},
          {"bf16_tflops", p.bf16_tflops},
          {"fp32_tflops", p.fp32_tflops},
          {"hbm_gbps", p.hbm_gbps},
          {"host_sync_us", p.host_sync_us},
          {"kernels", kernels},
          {"collectives", collectives}};
}

void read_profile(ObjectReader& r, Profile& p) {
  r.string("name", p.name);
  r.enumeration("source", detail::kProfileSourceNames, p.source);
  r.string("note", p.note);
  r.string("gpu", p.gpu);
  r.string("date", p.date);
  r.map("versions", [&](const std::string& key, const json& v, const std::string& path) {
    if (v.is_string()) {
      p.versions[key] = v.get<std::string>();
    } else {
      r.fail(path, "expected a string");
    }
  });
  r.number("bf16_tflops", p.bf16_tflops);
  r.number("fp32_tflops", p.fp32_tflops);
  r.number("hbm_gbps", p.hbm_gbps);
  r.number("host_sync_us", p.host_sync_us, /*required=*/false);  // absent: kDefaultHostSyncUs
  r.map("kernels", [&](const std::string& name, const json& v, const std::string& path) {
    ObjectReader k(v, path, r.errors());
    if (!k.valid()) return;
    KernelFit fit;
    k.number("alpha_us", fit.alpha_us);
    k.number("tflops", fit.tflops);
    k.number("gbps", fit.gbps);
    k.number("select_gps", fit.select_gps, /*required=*/false);
    std::string form = "sum";
    k.string("form", form, /*required=*/false);
    if (form == "roofline") {
      fit.roofline = true;
    } else if (form != "sum") {
      r.errors().push_back({path + ".form", "must be \"sum\" or \"roofline\", got \"" + form + "\""});
    }
    k.number("fit_error", fit.fit_error);
    k.array("points", [&](const json& pv, const std::string& ppath) {
      ObjectReader pr(pv, ppath, r.errors());
      if (!pr.valid()) return;
      KernelPoint pt;
      pr.string("shape", pt.shape);
      pr.number("flops", pt.flops);
      pr.number("bytes", pt.bytes);
      pr.number("time_us", pt.time_us);
      pr.number("selections", pt.selections, /*required=*/false);
      fit.points.push_back(pt);
    });
    p.kernels[name] = fit;
  });
  r.map("collectives", [&](const std::string& tier, const json& tv, const std::string& tpath) {
    if (!tv.is_object()) {
      r.fail(tpath, "expected an object");
      return;
    }
    for (const auto& [name, v] : tv.items()) {
      ObjectReader c(v, tpath + "." + name, r.errors());
      if (!c.valid()) continue;
      CollectiveFit fit;
      c.number("alpha_us", fit.alpha_us);
      c.number("efficiency", fit.efficiency);
      c.number("fit_error", fit.fit_error);
      c.object(
          "large",
          [&](ObjectReader& large) {
            large.number("alpha_us", fit.large_alpha_us);
            large.number("efficiency", fit.large_efficiency);
          },
          /*required=*/false);
      c.array("points", [&](const json& pv, const std::string& ppath) {
        ObjectReader pr(pv, ppath, r.errors());
        if (!pr.valid()) return;
        CollectivePoint pt;
        pr.integer("num_ranks", pt.num_ranks);
        pr.number("bytes", pt.bytes);
        pr.number("time_us", pt.time_us);
        fit.points.push_back(pt);
      });
      p.collectives[tier][name] = fit;
    }
  });
}

// ---- Timeline and Report --------------------------------------------------------------------

json span_json(const Span& s) {
  return {{"stage", s.stage},       {"phase", to_string(s.phase)}, {"lane", to_string(s.lane)},
          {"start_ns", s.start_ns}, {"end_ns", s.end_ns},          {"bytes", s.bytes},
          {"flops", s.flops},       {"layer", s.layer},            {"micro_batch", s.micro_batch}};
}

json timeline_json(const Timeline& t) {
  json ranks = json::array();
  for (const auto& r : t.ranks) {
    json spans = json::array();
    for (const auto& s : r.spans) spans.push_back(span_json(s));
    ranks.push_back({{"rank", r.rank}, {"spans", spans}});
  }
  return {{"source", t.source}, {"strategy", t.strategy}, {"ranks", ranks}};
}

json traffic_json(const TrafficMatrix& m) {
  json sent = json::array();
  json received = json::array();
  for (std::int64_t r = 0; r < m.num_ranks; ++r) {
    sent.push_back(m.sent(r));
    received.push_back(m.received(r));
  }
  return {{"phase", m.phase},
          {"num_ranks", m.num_ranks},
          {"bytes", m.bytes},
          {"sent", sent},
          {"received", received},
          {"total_sent", m.total_sent()},
          {"max_sent", m.max_sent()},
          {"max_received", m.max_received()},
          {"send_imbalance", m.send_imbalance()},
          {"receive_imbalance", m.receive_imbalance()}};
}

json memory_json(const MemoryReport& m) {
  json ranks = json::array();
  for (const auto& r : m.ranks) {
    ranks.push_back({{"rank", r.rank},
                     {"weights", r.weights},
                     {"gradients", r.gradients},
                     {"optimizer", r.optimizer},
                     {"activations", r.activations},
                     {"comm_buffers", r.comm_buffers},
                     {"workspace", r.workspace},
                     {"peak", r.peak()}});
  }
  return {{"capacity_bytes", m.capacity_bytes},
          {"max_peak", m.max_peak()},
          {"mean_peak", m.mean_peak()},
          {"num_over_capacity", m.num_over_capacity()},
          {"ranks", ranks}};
}

json report_json(const Report& r) {
  json strategies = json::array();
  for (const auto& s : r.strategies) {
    json stages = json::array();
    for (const auto& st : s.stages) {
      stages.push_back({{"stage", st.stage},
                        {"phase", to_string(st.phase)},
                        {"lane", to_string(st.lane)},
                        {"max_us", st.max_us},
                        {"mean_us", st.mean_us},
                        {"bytes", st.bytes},
                        {"flops", st.flops}});
    }
    json traffic = json::array();
    for (const auto& m : s.traffic) traffic.push_back(traffic_json(m));
    json out = {{"strategy", s.strategy},
                {"stages", stages},
                {"layer_forward_us", s.layer_forward_us},
                {"layer_backward_us", s.layer_backward_us},
                {"layer_total_us", s.layer_total_us},
                {"traffic", traffic},
                {"metadata_bytes_per_rank", s.metadata_bytes_per_rank},
                {"memory", memory_json(s.memory)},
                {"step_us", s.step_us},
                {"tokens_per_second", s.tokens_per_second},
                {"hours_for_budget", s.hours_for_budget}};
    if (s.timeline) out["timeline"] = timeline_json(*s.timeline);
    strategies.push_back(out);
  }
  return {{"scenario", r.scenario}, {"engine", r.engine}, {"profile", r.profile}, {"strategies", strategies}};
}

template <typename T, typename ReadFn>
Expected<T> parse_with(std::string_view text, ReadFn&& read) {
  auto doc = parse_document(text);
  if (!doc) return doc.error();
  std::vector<FieldError> errors;
  T value{};
  {
    ObjectReader root(*doc, "", errors);
    if (root.valid()) read(root, value);
  }
  if (!errors.empty()) {
    Error e = join_field_errors(errors);
    return e;
  }
  return value;
}

}  // namespace

Expected<std::string> read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{ErrorCode::kIo, fmt::format("{}: cannot open file for reading", path)};
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Error{ErrorCode::kIo, fmt::format("{}: read failed", path)};
  return ss.str();
}

Status write_text_file(const std::string& path, std::string_view text) {
  // Write to a temporary file and rename, so that a failure leaves any old file intact.
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return Error{ErrorCode::kIo, fmt::format("{}: cannot open file for writing", path)};
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    out.flush();
    if (!out) return Error{ErrorCode::kIo, fmt::format("{}: write failed", path)};
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return Error{ErrorCode::kIo, fmt::format("{}: cannot replace file", path)};
  }
  return Status::ok();
}

Expected<Scenario> parse_scenario(std::string_view json_text) {
  return parse_with<Scenario>(json_text, [](ObjectReader& r, Scenario& s) {
    r.string("name", s.name);
    r.string("description", s.description, /*required=*/false);
    r.object("model", [&](ObjectReader& m) { read_model(m, s.model); });
    r.object("parallel", [&](ObjectReader& p) {
      p.enumeration("strategy", detail::kStrategyNames, s.parallel.strategy);
      p.integer("num_ranks", s.parallel.num_ranks);
    });
    r.object("cluster", [&](ObjectReader& c) { read_cluster(c, s.cluster); });
    r.object("workload", [&](ObjectReader& w) { read_workload(w, s.workload); });
    r.object("training", [&](ObjectReader& t) { read_training(t, s.training); });
  });
}

Expected<Scenario> load_scenario(const std::string& path) {
  auto text = read_text_file(path);
  if (!text) return text.error();
  auto scenario = parse_scenario(*text);
  if (!scenario) return prefix_file(scenario.error(), path);
  if (auto status = validate(*scenario); !status) return prefix_file(status.error(), path);
  return scenario;
}

std::string to_json(const Scenario& scenario) { return scenario_json(scenario).dump(2) + "\n"; }

Expected<Profile> parse_profile(std::string_view json_text) {
  return parse_with<Profile>(json_text, [](ObjectReader& r, Profile& p) { read_profile(r, p); });
}

Expected<Profile> load_profile(const std::string& path) {
  auto text = read_text_file(path);
  if (!text) return text.error();
  auto profile = parse_profile(*text);
  if (!profile) return prefix_file(profile.error(), path);
  if (auto status = validate(*profile); !status) return prefix_file(status.error(), path);
  return profile;
}

std::string to_json(const Profile& profile) { return profile_json(profile).dump(2) + "\n"; }
std::string to_json(const Report& report) { return report_json(report).dump(2) + "\n"; }
std::string to_json(const Timeline& timeline) { return timeline_json(timeline).dump(2) + "\n"; }

Expected<Timeline> parse_timeline(std::string_view json_text) {
  return parse_with<Timeline>(json_text, [](ObjectReader& r, Timeline& t) {
    r.string("source", t.source);
    r.string("strategy", t.strategy);
    r.array("ranks", [&](const json& rv, const std::string& rpath) {
      ObjectReader rr(rv, rpath, r.errors());
      if (!rr.valid()) return;
      RankTimeline rank;
      rr.integer("rank", rank.rank);
      rr.array("spans", [&](const json& sv, const std::string& spath) {
        ObjectReader sr(sv, spath, r.errors());
        if (!sr.valid()) return;
        Span s;
        sr.string("stage", s.stage);
        sr.enumeration("phase", detail::kPhaseNames, s.phase);
        sr.enumeration("lane", detail::kLaneNames, s.lane);
        sr.integer("start_ns", s.start_ns);
        sr.integer("end_ns", s.end_ns);
        sr.number("bytes", s.bytes);
        sr.number("flops", s.flops);
        sr.integer("layer", s.layer);
        sr.integer("micro_batch", s.micro_batch);
        rank.spans.push_back(s);
      });
      t.ranks.push_back(std::move(rank));
    });
  });
}

}  // namespace hpsim::core
