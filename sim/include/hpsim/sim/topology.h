#pragma once
// Topology: the cluster as a directed graph of GPUs and switches joined by links, each with a
// capacity (GB/s, 1e9 bytes/s, per direction) and a latency. Built from a core::ClusterSpec
// (fat tree or rail-optimised, below) or read from a custom JSON file (docs/simulator.md).
//
// Built-in shapes (one vertex per GPU, GPUs numbered node-major: GPU g is local GPU g % G of node
// g / G, with G GPUs per node):
//  - per node an NVSwitch; each GPU has a link to it and one back ("nvlink_up", "nvlink_down"),
//    each of intra_node.bandwidth_gbps and intra_node.latency_us;
//  - one NIC per GPU into a leaf switch ("nic_up", "nic_down"), inter_node tier.
//      fat tree: nodes n .. n + nodes_per_leaf - 1 share a leaf;
//      rail-optimised: local GPU i of every node of a group of nodes_per_leaf nodes shares leaf
//      (group, i), so traffic between equal local indices never leaves the rail.
//  - when there is more than one leaf, every leaf has one link to and from each of
//    TopologyOptions::num_spines spines ("leaf_up", "spine_down", inter_node latency), each of
//    capacity = (the leaf's NIC capacity below it) / oversubscription / num_spines.
// Every link pays its tier's latency once (a GPU-NVSwitch-GPU path pays intra_node.latency twice).
//
// Routing: a path never passes through a GPU. Among the paths from GPU src to GPU dst the one with
// the least total latency is taken, then the fewest hops; equal-cost choices (ECMP, e.g. which
// spine) are made by a hash of (src GPU, last switch before dst), so they are deterministic and
// spread over the alternatives. Switch-to-switch distances come from Dijkstra on the graph; each
// source GPU's paths to every switch are computed once and cached, which makes route(src, dst) a
// constant-time lookup without storing all W x W paths.
//
// Not thread-safe: route() fills the cache. Copies share it.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hpsim/core/error.h"
#include "hpsim/core/scenario.h"

namespace hpsim::sim {

using VertexId = std::int32_t;
using LinkId = std::int32_t;

enum class VertexKind { kGpu, kSwitch };

struct TopologyOptions {
  std::int64_t num_spines = 1;  // spine switches of the built-in shapes (>= 1)
};

struct Vertex {
  std::string name;  // "gpu3", "nvs0", "leaf1", "spine0", or a custom name
  VertexKind kind = VertexKind::kGpu;
};

struct Link {
  VertexId from = 0;
  VertexId to = 0;
  double bandwidth_gbps = 0;    // GB/s per direction
  std::int64_t latency_ns = 0;  // paid once per traversal
  std::int32_t link_class = 0;  // index into link_classes()
};

// Links of the same kind, capacity and latency form a class ("nic_up", "leaf_up", ...). The flow
// network treats the links of a class as interchangeable when it aggregates symmetric flows.
struct LinkClass {
  std::string name;
  double bandwidth_gbps = 0;
  std::int64_t latency_ns = 0;
  std::int64_t num_links = 0;
};

// One link as a builder or a custom file gives it. Vertex names: "gpu<i>" for GPU i, anything
// else for a switch declared in the switch list.
struct LinkSpec {
  std::string from;
  std::string to;
  double bandwidth_gbps = 0;
  double latency_us = 0;
  std::string kind;          // class name; default "<from kind>-<to kind>" (e.g. "gpu-switch")
  bool duplex = false;       // also add the link to -> from
  std::string reverse_kind;  // class name of the reverse link; default kind + ".rev"
};

// The path from one GPU to another: `prefix` (from the source GPU to the last switch; empty for a
// direct GPU-to-GPU link) followed by `last` (into the destination GPU). Valid until the Topology
// is destroyed.
struct Route {
  std::span<const LinkId> prefix;
  LinkId last = -1;
  std::int32_t path_class = -1;  // interned sequence of link classes, see path_class_links()
  std::int64_t latency_ns = 0;   // sum over the links

  std::int32_t num_hops() const { return static_cast<std::int32_t>(prefix.size()) + 1; }
  LinkId hop(std::int32_t i) const {
    return i < static_cast<std::int32_t>(prefix.size()) ? prefix[static_cast<std::size_t>(i)] : last;
  }
};

class Topology {
 public:
  // Built-in fat tree or rail-optimised shape (topology = custom reads cluster.topology_file).
  static core::Expected<Topology> from_cluster(const core::ClusterSpec& cluster, const TopologyOptions& options = {});
  // Custom topology (docs/simulator.md, "Custom topology files"); `origin` names it in errors.
  static core::Expected<Topology> from_json(std::string_view json_text, const std::string& origin = "topology");
  static core::Expected<Topology> load(const std::string& path);
  // From vertex names and links: GPUs are "gpu0" .. "gpu<num_gpus-1>".
  static core::Expected<Topology> from_links(std::string name, std::int64_t num_gpus,
                                             const std::vector<std::string>& switch_names,
                                             const std::vector<LinkSpec>& links, const std::string& origin = "topology");

  const std::string& name() const;
  std::int64_t num_gpus() const;
  std::int64_t num_vertices() const;
  std::int64_t num_links() const;
  const Vertex& vertex(VertexId v) const;
  const Link& link(LinkId id) const;
  std::span<const LinkClass> link_classes() const;
  // Vertex id of a name, or -1.
  VertexId find_vertex(std::string_view name) const;

  // Path between two different GPUs (asserts src != dst and both < num_gpus()). Every pair has
  // one: construction fails otherwise.
  Route route(std::int64_t src_gpu, std::int64_t dst_gpu) const;
  std::vector<LinkId> path(std::int64_t src_gpu, std::int64_t dst_gpu) const;

  std::int32_t num_path_classes() const;
  // The link classes along the paths of a path class, in order.
  std::span<const std::int32_t> path_class_links(std::int32_t path_class) const;
  std::string path_class_name(std::int32_t path_class) const;  // e.g. "nic_up>leaf_up>spine_down>nic_down"

  // One line per class: name, links, capacity, latency.
  std::string describe() const;

  struct Impl;

 private:
  explicit Topology(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

}  // namespace hpsim::sim
