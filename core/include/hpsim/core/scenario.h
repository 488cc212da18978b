#pragma once
// Scenario: what to model. Symbols follow the paper and DESIGN.md section 2:
//   n tokens per rank, d model width, H heads, h head width, E experts (per head for HP, in total
//   for EP), k active experts per token (per head for HP), f expert hidden width, W ranks in the
//   EP/HP group, s bytes per element.

#include <cstdint>
#include <string>

namespace hpsim::core {

enum class Strategy { kEp, kHp };
enum class Routing { kUniform, kZipf, kTrace };
enum class Ownership { kContiguous, kStrided };
enum class WorkloadMode { kExpectation, kSampled };
enum class TopologyKind { kFatTree, kRailOptimized, kCustom };

const char* to_string(Strategy v);
const char* to_string(Routing v);
const char* to_string(Ownership v);
const char* to_string(WorkloadMode v);
const char* to_string(TopologyKind v);

struct ModelSpec {
  std::string name;
  std::int64_t d_model = 0;          // d
  std::int64_t num_heads = 0;        // H (HP sub-tokens per token)
  std::int64_t head_dim = 0;         // h
  std::int64_t num_experts = 0;      // E: per head for HP, in total for EP
  std::int64_t top_k = 0;            // k: per head for HP, per token for EP
  std::int64_t expert_hidden = 0;    // f
  std::int64_t num_layers = 0;       // all transformer layers
  std::int64_t num_dense_layers = 0; // leading layers with a dense FFN instead of MoE
  std::int64_t dense_hidden = 0;     // FFN width of the dense layers
  std::int64_t seq_len = 0;          // T (attention context)
  std::int64_t vocab_size = 0;       // embedding and output projection
  std::int64_t bytes_per_element = 0;  // s (bf16 = 2)
};

struct ParallelSpec {
  Strategy strategy = Strategy::kHp;
  std::int64_t num_ranks = 0;  // W: ranks in the EP/HP group
};

// One tier of links: per GPU, per direction.
struct LinkTier {
  double bandwidth_gbps = 0;  // GB/s (1e9 bytes/s) per direction
  double latency_us = 0;      // one hop
};

struct GpuSpec {
  std::string name;
  double memory_gb = 0;  // device memory, 1e9 bytes
};

struct ClusterSpec {
  std::string name;
  std::int64_t num_nodes = 0;
  std::int64_t gpus_per_node = 0;
  GpuSpec gpu;
  LinkTier intra_node;  // NVLink through NVSwitch
  LinkTier inter_node;  // one NIC per GPU into leaf/spine switches
  TopologyKind topology = TopologyKind::kFatTree;
  std::int64_t nodes_per_leaf = 0;  // fat tree: nodes under one leaf switch
  double oversubscription = 1.0;    // leaf uplink oversubscription (>= 1)
  std::string topology_file;        // custom topology JSON (topology = custom only)

  std::int64_t num_gpus() const { return num_nodes * gpus_per_node; }
};

struct WorkloadSpec {
  std::int64_t tokens_per_rank = 0;  // n per micro-batch
  Routing routing = Routing::kUniform;
  double zipf_skew = 0;  // expert i drawn with weight 1/(i+1)^skew
  Ownership ownership = Ownership::kContiguous;
  WorkloadMode mode = WorkloadMode::kExpectation;
  std::uint64_t seed = 0;
  std::string trace_file;  // routing = trace: recorded per-expert counts
};

// What a training run adds to one layer: micro-batches, batch, budget, state bytes.
struct TrainingSpec {
  std::int64_t micro_batches = 0;         // per step, per rank
  std::int64_t global_batch_tokens = 0;   // tokens per optimizer step, all ranks
  double token_budget = 0;                // tokens for the whole run
  std::int64_t weight_bytes = 0;          // per parameter (bf16 weights = 2)
  std::int64_t grad_bytes = 0;            // per parameter
  std::int64_t optimizer_bytes = 0;       // per parameter (Adam with fp32 master, m, v = 12)
};

struct Scenario {
  std::string name;
  std::string description;
  ModelSpec model;
  ParallelSpec parallel;
  ClusterSpec cluster;
  WorkloadSpec workload;
  TrainingSpec training;
};

}  // namespace hpsim::core
