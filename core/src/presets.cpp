// Shipped presets. The four MoE configurations are the paper's (DESIGN.md section 2); the widths
// the paper does not state (dense FFN width, vocabulary) are assumptions named in docs/model.md.
#include "hpsim/core/presets.h"

#include <functional>

namespace hpsim::core {
namespace {

ModelSpec paper_model(std::string name, std::int64_t experts, std::int64_t top_k, std::int64_t hidden) {
  ModelSpec m;
  m.name = std::move(name);
  m.d_model = 1024;
  m.num_heads = 8;
  m.head_dim = 128;
  m.num_experts = experts;
  m.top_k = top_k;
  m.expert_hidden = hidden;
  m.num_layers = 12;
  m.num_dense_layers = 2;
  m.dense_hidden = 4096;   // assumption: 4d
  m.seq_len = 2048;
  m.vocab_size = 50304;    // assumption: GPT-2 vocabulary padded to a multiple of 128
  m.bytes_per_element = 2;
  return m;
}

ClusterSpec node_cluster(std::string name, std::string gpu, double memory_gb, std::int64_t nodes, std::int64_t gpus) {
  ClusterSpec c;
  c.name = std::move(name);
  c.num_nodes = nodes;
  c.gpus_per_node = gpus;
  c.gpu = {std::move(gpu), memory_gb};
  // NVLink 4 through NVSwitch: 18 links, 450 GB/s per direction per GPU (datasheet).
  c.intra_node = {450.0, 3.0};
  // One 400 Gb/s NIC per GPU: 50 GB/s per direction (datasheet), a few microseconds per hop.
  c.inter_node = {50.0, 5.0};
  c.topology = TopologyKind::kFatTree;
  c.nodes_per_leaf = 4;
  c.oversubscription = 1.0;
  return c;
}

struct ModelEntry {
  Preset preset;
  std::function<ModelSpec()> make;
};
struct ClusterEntry {
  Preset preset;
  std::function<ClusterSpec()> make;
};
struct ScenarioEntry {
  Preset preset;
  std::function<Scenario()> make;
};

const std::vector<ModelEntry>& models() {
  static const std::vector<ModelEntry> entries = {
      {{"paper-2.2b", "paper 2.2B: d=1024, H=8, h=128, E=384, k=4, f=256, 12 layers (2 dense)"},
       [] { return paper_model("paper-2.2b", 384, 4, 256); }},
      {{"paper-2.2b-g", "paper 2.2B-G (granular): E=768, k=8, f=128"},
       [] { return paper_model("paper-2.2b-g", 768, 8, 128); }},
      {{"paper-4.2b", "paper 4.2B: d=1024, H=8, h=128, E=768, k=4, f=256, 12 layers (2 dense)"},
       [] { return paper_model("paper-4.2b", 768, 4, 256); }},
      {{"paper-4.2b-g", "paper 4.2B-G (granular): E=1536, k=8, f=128"},
       [] { return paper_model("paper-4.2b-g", 1536, 8, 128); }},
  };
  return entries;
}

const std::vector<ClusterEntry>& clusters() {
  static const std::vector<ClusterEntry> entries = {
      {{"h200x2", "one node, 2 x H200 141 GB, NVLink"}, [] { return node_cluster("h200x2", "H200", 141, 1, 2); }},
      {{"h200x4", "one node, 4 x H200 141 GB, NVLink"}, [] { return node_cluster("h200x4", "H200", 141, 1, 4); }},
      {{"h200x8", "one node, 8 x H200 141 GB, NVLink through NVSwitch"},
       [] { return node_cluster("h200x8", "H200", 141, 1, 8); }},
      {{"h100x8", "one node, 8 x H100 80 GB, NVLink through NVSwitch"},
       [] { return node_cluster("h100x8", "H100", 80, 1, 8); }},
      {{"h100-16x8", "16 nodes x 8 H100 (128 GPUs), one 400 Gb/s NIC per GPU, fat tree"},
       [] { return node_cluster("h100-16x8", "H100", 80, 16, 8); }},
      {{"h200-16x8", "16 nodes x 8 H200 (128 GPUs), one 400 Gb/s NIC per GPU, fat tree"},
       [] { return node_cluster("h200-16x8", "H200", 141, 16, 8); }},
      {{"h100-128x8", "128 nodes x 8 H100 (1,024 GPUs), one 400 Gb/s NIC per GPU, fat tree"},
       [] { return node_cluster("h100-128x8", "H100", 80, 128, 8); }},
      {{"h200-128x8", "128 nodes x 8 H200 (1,024 GPUs), one 400 Gb/s NIC per GPU, fat tree"},
       [] { return node_cluster("h200-128x8", "H200", 141, 128, 8); }},
  };
  return entries;
}

Scenario make_scenario(std::string name, std::string description, const std::string& model, const std::string& cluster,
                       std::int64_t ranks, Routing routing, double skew) {
  Scenario s;
  s.name = std::move(name);
  s.description = std::move(description);
  s.model = model_preset(model).value();
  s.cluster = cluster_preset(cluster).value();
  s.parallel = {Strategy::kHp, ranks};
  s.workload.tokens_per_rank = 16384;
  s.workload.routing = routing;
  s.workload.zipf_skew = skew;
  s.workload.ownership = Ownership::kContiguous;
  s.workload.mode = WorkloadMode::kExpectation;
  s.workload.seed = 1;
  s.training = paper_training();
  return s;
}

const std::vector<ScenarioEntry>& scenarios() {
  static const std::vector<ScenarioEntry> entries = {
      {{"paper-4.2b-h200x8-uniform", "paper 4.2B layer, one node of 8 H200, uniform routing (default)"},
       [] {
         return make_scenario("paper-4.2b-h200x8-uniform", "paper 4.2B layer, one node of 8 H200, uniform routing",
                              "paper-4.2b", "h200x8", 8, Routing::kUniform, 0.0);
       }},
      {{"paper-4.2b-h200x8-zipf1", "paper 4.2B layer, one node of 8 H200, Zipf(1.0) routing (default)"},
       [] {
         return make_scenario("paper-4.2b-h200x8-zipf1", "paper 4.2B layer, one node of 8 H200, Zipf skew 1.0",
                              "paper-4.2b", "h200x8", 8, Routing::kZipf, 1.0);
       }},
      {{"paper-4.2b-h100x8", "paper 4.2B on one node of 8 H100 (the paper's Table 1 machine)"},
       [] {
         return make_scenario("paper-4.2b-h100x8", "paper 4.2B, one node of 8 H100, uniform routing", "paper-4.2b",
                              "h100x8", 8, Routing::kUniform, 0.0);
       }},
      {{"paper-4.2b-h200x2", "paper 4.2B layer at W=2 on 2 H200, 16,384 tokens per rank"},
       [] {
         return make_scenario("paper-4.2b-h200x2", "paper 4.2B layer, W=2 on 2 H200", "paper-4.2b", "h200x2", 2,
                              Routing::kUniform, 0.0);
       }},
      {{"ep-zipf1-h200-128x8", "EP over 1,024 H200 (128 nodes), Zipf skew 1.0, paper 4.2B-G layer widths"},
       [] {
         Scenario s = make_scenario("ep-zipf1-h200-128x8", "EP over 1,024 H200, Zipf skew 1.0", "paper-4.2b-g",
                                    "h200-128x8", 1024, Routing::kZipf, 1.0);
         s.parallel.strategy = Strategy::kEp;
         s.model.num_experts = 2048;  // E must be a multiple of W for EP
         return s;
       }},
  };
  return entries;
}

template <typename Entries>
std::vector<Preset> list(const Entries& entries) {
  std::vector<Preset> out;
  for (const auto& e : entries) out.push_back(e.preset);
  return out;
}

template <typename Entries>
auto find(const Entries& entries, const std::string& name, const char* kind)
    -> Expected<decltype(entries.front().make())> {
  for (const auto& e : entries) {
    if (e.preset.name == name) return e.make();
  }
  std::string names;
  for (const auto& e : entries) names += (names.empty() ? "" : ", ") + e.preset.name;
  return Error{ErrorCode::kInvalidArgument, fmt::format("unknown {} preset \"{}\"; known: {}", kind, name, names)};
}

}  // namespace

TrainingSpec paper_training() {
  TrainingSpec t;
  t.micro_batches = 1;
  t.global_batch_tokens = 655360;  // 0.66M tokens = 320 sequences of 2048
  t.token_budget = 10e9;
  t.weight_bytes = 2;      // bf16
  t.grad_bytes = 4;        // fp32 gradient accumulation
  t.optimizer_bytes = 12;  // Adam: fp32 master, m, v
  return t;
}

std::vector<Preset> model_presets() { return list(models()); }
std::vector<Preset> cluster_presets() { return list(clusters()); }
std::vector<Preset> scenario_presets() { return list(scenarios()); }

Expected<ModelSpec> model_preset(const std::string& name) { return find(models(), name, "model"); }
Expected<ClusterSpec> cluster_preset(const std::string& name) { return find(clusters(), name, "cluster"); }
Expected<Scenario> scenario_preset(const std::string& name) { return find(scenarios(), name, "scenario"); }

std::vector<Scenario> default_scenarios() {
  return {scenario_preset("paper-4.2b-h200x8-uniform").value(), scenario_preset("paper-4.2b-h200x8-zipf1").value()};
}

}  // namespace hpsim::core
