#pragma once
// Private state of sim::Topology (topology.cpp builds it, topology_json.cpp feeds it).

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "hpsim/sim/topology.h"

namespace hpsim::sim {

inline constexpr std::int64_t kUnreachable = std::numeric_limits<std::int64_t>::max() / 4;

struct Topology::Impl {
  std::string name;
  std::int64_t num_gpus = 0;
  std::vector<Vertex> vertices;  // GPUs first (0 .. num_gpus-1), then switches
  std::vector<Link> links;
  std::vector<LinkClass> classes;
  std::unordered_map<std::string, VertexId> vertex_index;
  std::vector<std::vector<LinkId>> out_links;  // per vertex, in link order
  std::vector<std::vector<LinkId>> in_links;
  // The links into each GPU, flat, with what route() needs of them (one cache line per GPU).
  struct LastHop {
    std::int64_t weight = 0;
    std::int64_t latency_ns = 0;
    VertexId from = 0;
    LinkId link = 0;
    std::int32_t link_class = 0;
  };
  std::vector<std::int32_t> last_hop_offsets;  // per GPU, into last_hops
  std::vector<LastHop> last_hops;

  // Switch-level all-pairs distances: dist[a * num_switches + b], switch index = vertex - num_gpus.
  std::int64_t num_switches = 0;
  std::vector<std::int64_t> dist;

  // Per source GPU, its best path to every switch (computed on first use).
  struct PrefixEntry {
    std::int64_t cost = kUnreachable;
    std::int64_t latency_ns = 0;
    std::int32_t offset = 0;
    std::int32_t length = 0;
    std::int32_t prefix_class = -1;
  };
  struct SourceCache {
    std::vector<PrefixEntry> to_switch;
    std::vector<LinkId> arena;
  };
  mutable std::vector<std::unique_ptr<SourceCache>> sources;

  // Interned sequences of link classes: prefixes (without the last link) and whole paths.
  mutable std::vector<std::vector<std::int32_t>> prefix_classes;
  mutable std::unordered_map<std::uint64_t, std::vector<std::int32_t>> prefix_class_by_hash;
  mutable std::vector<std::vector<std::int32_t>> path_classes;
  mutable std::unordered_map<std::uint64_t, std::vector<std::int32_t>> path_class_by_hash;
  mutable std::vector<std::int32_t> path_class_table;  // [prefix_class * num classes + link class]

  static std::int64_t weight(const Link& link);
  const SourceCache& source(std::int64_t src_gpu) const;
  void fill_source(std::int64_t src_gpu, SourceCache& cache) const;
  std::int32_t intern_prefix(const std::vector<std::int32_t>& seq) const;
  std::int32_t intern_path(const std::vector<std::int32_t>& seq) const;
  std::int32_t path_class_of(std::int32_t prefix_class, std::int32_t last_class) const;
  void compute_distances();
  bool has_route(std::int64_t src_gpu, std::int64_t dst_gpu) const;
};

}  // namespace hpsim::sim
