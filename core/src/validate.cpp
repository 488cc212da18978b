// Rule checks of scenarios and profiles. Each rule is written once, here, and every front end
// (CLI, GUI, tests) shows its message verbatim.
#include "hpsim/core/validate.h"

#include <cmath>

namespace hpsim::core {
namespace {

class Checker {
 public:
  explicit Checker(std::vector<FieldError>& errors) : errors_(errors) {}

  void positive(const std::string& path, double v) {
    if (!(v > 0) || !std::isfinite(v)) fail(path, fmt::format("must be > 0, got {}", v));
  }
  void positive(const std::string& path, std::int64_t v) {
    if (v <= 0) fail(path, fmt::format("must be > 0, got {}", v));
  }
  void non_negative(const std::string& path, double v) {
    if (!(v >= 0) || !std::isfinite(v)) fail(path, fmt::format("must be >= 0, got {}", v));
  }
  void non_negative(const std::string& path, std::int64_t v) {
    if (v < 0) fail(path, fmt::format("must be >= 0, got {}", v));
  }
  void not_empty(const std::string& path, const std::string& v) {
    if (v.empty()) fail(path, "must not be empty");
  }
  void fail(std::string path, std::string rule) { errors_.push_back({std::move(path), std::move(rule)}); }

 private:
  std::vector<FieldError>& errors_;
};

void check_model(const ModelSpec& m, Checker& c) {
  c.not_empty("model.name", m.name);
  c.positive("model.d_model", m.d_model);
  c.positive("model.num_heads", m.num_heads);
  c.positive("model.head_dim", m.head_dim);
  c.positive("model.num_experts", m.num_experts);
  c.positive("model.top_k", m.top_k);
  c.positive("model.expert_hidden", m.expert_hidden);
  c.positive("model.num_layers", m.num_layers);
  c.non_negative("model.num_dense_layers", m.num_dense_layers);
  c.positive("model.dense_hidden", m.dense_hidden);
  c.positive("model.seq_len", m.seq_len);
  c.positive("model.vocab_size", m.vocab_size);
  if (m.top_k > 0 && m.num_experts > 0 && m.top_k > m.num_experts) {
    c.fail("model.top_k", fmt::format("must be <= model.num_experts ({}), got {}", m.num_experts, m.top_k));
  }
  if (m.num_layers > 0 && m.num_dense_layers >= m.num_layers) {
    c.fail("model.num_dense_layers",
           fmt::format("must be < model.num_layers ({}) so that at least one layer is MoE, got {}", m.num_layers,
                       m.num_dense_layers));
  }
  if (m.bytes_per_element != 1 && m.bytes_per_element != 2 && m.bytes_per_element != 4) {
    c.fail("model.bytes_per_element", fmt::format("must be 1, 2 or 4, got {}", m.bytes_per_element));
  }
}

void check_tier(const std::string& path, const LinkTier& t, Checker& c) {
  c.positive(path + ".bandwidth_gbps", t.bandwidth_gbps);
  c.non_negative(path + ".latency_us", t.latency_us);
}

void check_cluster(const ClusterSpec& cl, Checker& c) {
  c.not_empty("cluster.name", cl.name);
  c.positive("cluster.num_nodes", cl.num_nodes);
  c.positive("cluster.gpus_per_node", cl.gpus_per_node);
  c.not_empty("cluster.gpu.name", cl.gpu.name);
  c.positive("cluster.gpu.memory_gb", cl.gpu.memory_gb);
  check_tier("cluster.intra_node", cl.intra_node, c);
  check_tier("cluster.inter_node", cl.inter_node, c);
  c.positive("cluster.nodes_per_leaf", cl.nodes_per_leaf);
  if (!(cl.oversubscription >= 1.0) || !std::isfinite(cl.oversubscription)) {
    c.fail("cluster.oversubscription", fmt::format("must be >= 1, got {}", cl.oversubscription));
  }
  if (cl.topology == TopologyKind::kCustom && cl.topology_file.empty()) {
    c.fail("cluster.topology_file", "must name a topology JSON file when cluster.topology is \"custom\"");
  }
  if (cl.topology != TopologyKind::kCustom && !cl.topology_file.empty()) {
    c.fail("cluster.topology_file", "is only read when cluster.topology is \"custom\"");
  }
}

void check_workload(const WorkloadSpec& w, const ModelSpec& m, Checker& c) {
  c.positive("workload.tokens_per_rank", w.tokens_per_rank);
  c.non_negative("workload.zipf_skew", w.zipf_skew);
  if (w.routing != Routing::kZipf && w.zipf_skew != 0) {
    c.fail("workload.zipf_skew", "must be 0 unless workload.routing is \"zipf\"");
  }
  if (w.routing == Routing::kTrace && w.trace_file.empty()) {
    c.fail("workload.trace_file", "must name a routing-counts file when workload.routing is \"trace\"");
  }
  if (w.routing != Routing::kTrace && !w.trace_file.empty()) {
    c.fail("workload.trace_file", "is only read when workload.routing is \"trace\"");
  }
  (void)m;
}

void check_training(const TrainingSpec& t, const Scenario& s, Checker& c) {
  c.positive("training.micro_batches", t.micro_batches);
  c.positive("training.global_batch_tokens", t.global_batch_tokens);
  c.positive("training.token_budget", t.token_budget);
  c.positive("training.weight_bytes", t.weight_bytes);
  c.positive("training.grad_bytes", t.grad_bytes);
  c.non_negative("training.optimizer_bytes", t.optimizer_bytes);
  (void)s;
}

void check_parallel(const Scenario& s, Checker& c) {
  const auto& p = s.parallel;
  c.positive("parallel.num_ranks", p.num_ranks);
  if (p.num_ranks <= 0) return;
  const std::int64_t gpus = s.cluster.num_gpus();
  if (gpus > 0 && p.num_ranks > gpus) {
    c.fail("parallel.num_ranks", fmt::format("must be <= the cluster's GPUs ({} nodes x {} = {}), got {}",
                                             s.cluster.num_nodes, s.cluster.gpus_per_node, gpus, p.num_ranks));
  }
  for (const auto& e : check_strategy(s, p.strategy)) c.fail(e.path, e.rule);
}

}  // namespace

std::vector<FieldError> check_strategy(const Scenario& s, Strategy strategy) {
  std::vector<FieldError> errors;
  const auto& m = s.model;
  const std::int64_t w = s.parallel.num_ranks;
  if (w <= 0) return errors;
  if (strategy == Strategy::kHp && m.num_heads > 0 && m.num_heads % w != 0) {
    errors.push_back({"parallel.num_ranks", fmt::format("must divide model.num_heads ({}) for HP (each rank owns H/W "
                                                        "heads), got {}",
                                                        m.num_heads, w)});
  }
  if (strategy == Strategy::kEp && m.num_experts > 0 && m.num_experts % w != 0) {
    errors.push_back({"parallel.num_ranks", fmt::format("must divide model.num_experts ({}) for EP (each rank owns "
                                                        "E/W experts), got {}",
                                                        m.num_experts, w)});
  }
  return errors;
}

std::vector<FieldError> check_scenario(const Scenario& s) {
  std::vector<FieldError> errors;
  Checker c(errors);
  c.not_empty("name", s.name);
  check_model(s.model, c);
  check_parallel(s, c);
  check_cluster(s.cluster, c);
  check_workload(s.workload, s.model, c);
  check_training(s.training, s, c);
  return errors;
}

std::vector<FieldError> check_profile(const Profile& p) {
  std::vector<FieldError> errors;
  Checker c(errors);
  c.not_empty("name", p.name);
  c.not_empty("gpu", p.gpu);
  c.positive("bf16_tflops", p.bf16_tflops);
  c.positive("fp32_tflops", p.fp32_tflops);
  c.positive("hbm_gbps", p.hbm_gbps);
  c.non_negative("host_sync_us", p.host_sync_us);
  for (const auto& [name, k] : p.kernels) {
    const std::string path = "kernels." + name;
    c.non_negative(path + ".alpha_us", k.alpha_us);
    c.non_negative(path + ".tflops", k.tflops);
    c.non_negative(path + ".gbps", k.gbps);
    c.non_negative(path + ".select_gps", k.select_gps);
    if (k.tflops <= 0 && k.gbps <= 0 && k.select_gps <= 0) {
      c.fail(path, "needs tflops, gbps or select_gps > 0 (else its time is constant)");
    }
  }
  for (const auto& [tier, by_name] : p.collectives) {
    if (tier != "intra_node" && tier != "inter_node") {
      c.fail("collectives." + tier, "unknown link tier; expected \"intra_node\" or \"inter_node\"");
    }
    for (const auto& [name, col] : by_name) {
      const std::string path = "collectives." + tier + "." + name;
      c.non_negative(path + ".alpha_us", col.alpha_us);
      if (!(col.efficiency > 0 && col.efficiency <= 1.0)) {
        c.fail(path + ".efficiency", fmt::format("must be in (0, 1], got {}", col.efficiency));
      }
      if (col.large_alpha_us != 0 || col.large_efficiency != 0) {
        c.non_negative(path + ".large.alpha_us", col.large_alpha_us);
        if (!(col.large_efficiency > col.efficiency && col.large_efficiency <= 1.0)) {
          c.fail(path + ".large.efficiency",
                 fmt::format("must be in (efficiency = {}, 1], got {}", col.efficiency, col.large_efficiency));
        }
      }
    }
  }
  return errors;
}

Error join_field_errors(const std::vector<FieldError>& errors) {
  std::string message;
  for (std::size_t i = 0; i < errors.size(); ++i) {
    if (i > 0) message += '\n';
    message += errors[i].to_string();
  }
  return Error{ErrorCode::kInvalidArgument, message};
}

Status validate(const Scenario& scenario) {
  auto errors = check_scenario(scenario);
  if (errors.empty()) return Status::ok();
  return join_field_errors(errors);
}

Status validate(const Profile& profile) {
  auto errors = check_profile(profile);
  if (errors.empty()) return Status::ok();
  return join_field_errors(errors);
}

}  // namespace hpsim::core
