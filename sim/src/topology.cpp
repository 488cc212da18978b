// Topology: construction, switch-level shortest paths (Boost.Graph Dijkstra) and cached routes.
#include "hpsim/sim/topology.h"

#include <algorithm>
#include <cmath>
#include <map>

#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/dijkstra_shortest_paths.hpp>
#include <fmt/format.h>

#include "topology_impl.h"

namespace hpsim::sim {
namespace {

// Paths minimise latency first, then hops: weight = latency * kHopScale + 1.
constexpr std::int64_t kHopScale = 4096;

std::uint64_t mix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::uint64_t hash_seq(const std::vector<std::int32_t>& seq) {
  std::uint64_t h = 0x1234567ULL + seq.size();
  for (std::int32_t v : seq) h = mix64(h ^ static_cast<std::uint64_t>(static_cast<std::uint32_t>(v)));
  return h;
}

std::int32_t intern(const std::vector<std::int32_t>& seq, std::vector<std::vector<std::int32_t>>& table,
                    std::unordered_map<std::uint64_t, std::vector<std::int32_t>>& by_hash) {
  auto& candidates = by_hash[hash_seq(seq)];
  for (std::int32_t id : candidates) {
    if (table[static_cast<std::size_t>(id)] == seq) return id;
  }
  const auto id = static_cast<std::int32_t>(table.size());
  table.push_back(seq);
  candidates.push_back(id);
  return id;
}

std::string kind_name(VertexKind kind) { return kind == VertexKind::kGpu ? "gpu" : "switch"; }

bool is_gpu_name(std::string_view name, std::int64_t num_gpus, std::int64_t* index) {
  if (name.size() < 4 || name.substr(0, 3) != "gpu") return false;
  std::int64_t value = 0;
  for (char c : name.substr(3)) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
    if (value > (std::int64_t{1} << 40)) return false;
  }
  if (name.size() > 4 && name[3] == '0') return false;  // "gpu01" is not a GPU name
  if (index != nullptr) *index = value;
  return value < num_gpus || num_gpus < 0;
}

}  // namespace

std::int64_t Topology::Impl::weight(const Link& link) { return link.latency_ns * kHopScale + 1; }

void Topology::Impl::compute_distances() {
  num_switches = static_cast<std::int64_t>(vertices.size()) - num_gpus;
  const auto s = static_cast<std::size_t>(num_switches);
  dist.assign(s * s, kUnreachable);
  if (num_switches == 0) return;
  using Graph = boost::adjacency_list<boost::vecS, boost::vecS, boost::directedS, boost::no_property,
                                      boost::property<boost::edge_weight_t, std::int64_t>>;
  Graph graph(s);
  for (const Link& link : links) {
    if (link.from >= num_gpus && link.to >= num_gpus) {
      boost::add_edge(static_cast<std::size_t>(link.from - num_gpus), static_cast<std::size_t>(link.to - num_gpus),
                      weight(link), graph);
    }
  }
  std::vector<std::int64_t> d(s);
  for (std::size_t a = 0; a < s; ++a) {
    boost::dijkstra_shortest_paths(
        graph, a,
        boost::distance_map(boost::make_iterator_property_map(d.begin(), boost::get(boost::vertex_index, graph)))
            .distance_inf(kUnreachable));
    std::copy(d.begin(), d.end(), dist.begin() + static_cast<std::ptrdiff_t>(a * s));
  }
}

std::int32_t Topology::Impl::intern_prefix(const std::vector<std::int32_t>& seq) const {
  const std::int32_t id = intern(seq, prefix_classes, prefix_class_by_hash);
  const auto needed = prefix_classes.size() * classes.size();
  if (path_class_table.size() < needed) path_class_table.resize(needed, -1);
  return id;
}

std::int32_t Topology::Impl::intern_path(const std::vector<std::int32_t>& seq) const {
  return intern(seq, path_classes, path_class_by_hash);
}

std::int32_t Topology::Impl::path_class_of(std::int32_t prefix_class, std::int32_t last_class) const {
  auto& slot = path_class_table[static_cast<std::size_t>(prefix_class) * classes.size() + static_cast<std::size_t>(last_class)];
  if (slot < 0) {
    std::vector<std::int32_t> seq = prefix_classes[static_cast<std::size_t>(prefix_class)];
    seq.push_back(last_class);
    slot = intern_path(seq);
  }
  return slot;
}

void Topology::Impl::fill_source(std::int64_t src_gpu, SourceCache& cache) const {
  const auto s = static_cast<std::size_t>(num_switches);
  cache.to_switch.assign(s, PrefixEntry{});
  const auto& first_links = out_links[static_cast<std::size_t>(src_gpu)];
  std::vector<LinkId> best_first;
  std::vector<LinkId> candidates;
  std::vector<std::int32_t> class_seq;
  for (std::size_t b = 0; b < s; ++b) {
    // Cheapest first hop into the switch graph.
    std::int64_t best = kUnreachable;
    best_first.clear();
    for (LinkId id : first_links) {
      const Link& l = links[static_cast<std::size_t>(id)];
      if (l.to < num_gpus) continue;
      const std::int64_t rest = dist[static_cast<std::size_t>(l.to - num_gpus) * s + b];
      if (rest >= kUnreachable) continue;
      const std::int64_t cost = weight(l) + rest;
      if (cost < best) {
        best = cost;
        best_first.clear();
      }
      if (cost == best) best_first.push_back(id);
    }
    if (best >= kUnreachable) continue;
    const std::uint64_t key = (static_cast<std::uint64_t>(src_gpu) << 32) ^ static_cast<std::uint64_t>(b);
    auto pick = [&](const std::vector<LinkId>& options, std::uint64_t salt) {
      return options[static_cast<std::size_t>(mix64(key ^ mix64(salt)) % options.size())];
    };
    PrefixEntry entry;
    entry.cost = best;
    entry.offset = static_cast<std::int32_t>(cache.arena.size());
    class_seq.clear();
    LinkId hop = pick(best_first, 0);
    auto v = static_cast<std::size_t>(links[static_cast<std::size_t>(hop)].to);
    cache.arena.push_back(hop);
    class_seq.push_back(links[static_cast<std::size_t>(hop)].link_class);
    entry.latency_ns += links[static_cast<std::size_t>(hop)].latency_ns;
    const std::size_t target = b + static_cast<std::size_t>(num_gpus);
    while (v != target) {
      const std::int64_t here = dist[(v - static_cast<std::size_t>(num_gpus)) * s + b];
      candidates.clear();
      for (LinkId id : out_links[v]) {
        const Link& l = links[static_cast<std::size_t>(id)];
        if (l.to < num_gpus) continue;
        const std::int64_t rest = dist[static_cast<std::size_t>(l.to - num_gpus) * s + b];
        if (rest < kUnreachable && weight(l) + rest == here) candidates.push_back(id);
      }
      HPSIM_ASSERT(!candidates.empty(), "no next hop from vertex {} toward switch {}", v, b);
      hop = pick(candidates, v + 1);
      cache.arena.push_back(hop);
      class_seq.push_back(links[static_cast<std::size_t>(hop)].link_class);
      entry.latency_ns += links[static_cast<std::size_t>(hop)].latency_ns;
      v = static_cast<std::size_t>(links[static_cast<std::size_t>(hop)].to);
    }
    entry.length = static_cast<std::int32_t>(cache.arena.size()) - entry.offset;
    entry.prefix_class = intern_prefix(class_seq);
    cache.to_switch[b] = entry;
  }
}

const Topology::Impl::SourceCache& Topology::Impl::source(std::int64_t src_gpu) const {
  auto& slot = sources[static_cast<std::size_t>(src_gpu)];
  if (!slot) {
    slot = std::make_unique<SourceCache>();
    fill_source(src_gpu, *slot);
  }
  return *slot;
}

core::Expected<Topology> Topology::from_links(std::string name, std::int64_t num_gpus,
                                              const std::vector<std::string>& switch_names,
                                              const std::vector<LinkSpec>& links, const std::string& origin) {
  if (num_gpus <= 0) return core::Error::field(origin + ": num_gpus", fmt::format("must be > 0, got {}", num_gpus));
  if (num_gpus > (std::int64_t{1} << 24)) {
    return core::Error::field(origin + ": num_gpus", fmt::format("must be <= 2^24, got {}", num_gpus));
  }
  auto impl = std::make_shared<Impl>();
  impl->name = std::move(name);
  impl->num_gpus = num_gpus;
  impl->vertices.reserve(static_cast<std::size_t>(num_gpus) + switch_names.size());
  for (std::int64_t g = 0; g < num_gpus; ++g) {
    impl->vertices.push_back(Vertex{fmt::format("gpu{}", g), VertexKind::kGpu});
    impl->vertex_index.emplace(impl->vertices.back().name, static_cast<VertexId>(g));
  }
  for (std::size_t i = 0; i < switch_names.size(); ++i) {
    const std::string& sw = switch_names[i];
    const std::string path = fmt::format("{}: switches[{}]", origin, i);
    if (sw.empty()) return core::Error::field(path, "must not be empty");
    if (is_gpu_name(sw, -1, nullptr)) return core::Error::field(path, fmt::format("'{}' is a GPU name (gpu<i>)", sw));
    const auto id = static_cast<VertexId>(impl->vertices.size());
    if (!impl->vertex_index.emplace(sw, id).second) {
      return core::Error::field(path, fmt::format("duplicate switch name '{}'", sw));
    }
    impl->vertices.push_back(Vertex{sw, VertexKind::kSwitch});
  }

  std::map<std::tuple<std::string, double, std::int64_t>, std::int32_t> class_ids;
  auto add_link = [&](VertexId from, VertexId to, double gbps, std::int64_t latency_ns, const std::string& kind) {
    const auto key = std::make_tuple(kind, gbps, latency_ns);
    auto [it, inserted] = class_ids.emplace(key, static_cast<std::int32_t>(impl->classes.size()));
    if (inserted) {
      std::string class_name = kind;
      // Two classes of the same kind but different capacity or latency get distinct names.
      for (const auto& c : impl->classes) {
        if (c.name == kind) class_name = fmt::format("{}#{}", kind, impl->classes.size());
      }
      impl->classes.push_back(LinkClass{class_name, gbps, latency_ns, 0});
    }
    impl->classes[static_cast<std::size_t>(it->second)].num_links += 1;
    impl->links.push_back(Link{from, to, gbps, latency_ns, it->second});
  };

  for (std::size_t i = 0; i < links.size(); ++i) {
    const LinkSpec& spec = links[i];
    const std::string path = fmt::format("{}: links[{}]", origin, i);
    const auto from_it = impl->vertex_index.find(spec.from);
    if (from_it == impl->vertex_index.end()) {
      return core::Error::field(path + ".from", fmt::format("unknown vertex '{}'", spec.from));
    }
    const auto to_it = impl->vertex_index.find(spec.to);
    if (to_it == impl->vertex_index.end()) {
      return core::Error::field(path + ".to", fmt::format("unknown vertex '{}'", spec.to));
    }
    if (from_it->second == to_it->second) return core::Error::field(path, "must join two different vertices");
    if (!(spec.bandwidth_gbps > 0) || !std::isfinite(spec.bandwidth_gbps)) {
      return core::Error::field(path + ".bandwidth_gbps", fmt::format("must be > 0, got {}", spec.bandwidth_gbps));
    }
    if (!(spec.latency_us >= 0) || !std::isfinite(spec.latency_us)) {
      return core::Error::field(path + ".latency_us", fmt::format("must be >= 0, got {}", spec.latency_us));
    }
    const Vertex& a = impl->vertices[static_cast<std::size_t>(from_it->second)];
    const Vertex& b = impl->vertices[static_cast<std::size_t>(to_it->second)];
    const std::string kind = spec.kind.empty() ? kind_name(a.kind) + "-" + kind_name(b.kind) : spec.kind;
    const auto latency_ns = static_cast<std::int64_t>(std::llround(spec.latency_us * 1e3));
    add_link(from_it->second, to_it->second, spec.bandwidth_gbps, latency_ns, kind);
    if (spec.duplex) {
      const std::string reverse = spec.reverse_kind.empty() ? kind + ".rev" : spec.reverse_kind;
      add_link(to_it->second, from_it->second, spec.bandwidth_gbps, latency_ns, reverse);
    }
  }

  const std::size_t nv = impl->vertices.size();
  impl->out_links.assign(nv, {});
  impl->in_links.assign(nv, {});
  for (std::size_t id = 0; id < impl->links.size(); ++id) {
    impl->out_links[static_cast<std::size_t>(impl->links[id].from)].push_back(static_cast<LinkId>(id));
    impl->in_links[static_cast<std::size_t>(impl->links[id].to)].push_back(static_cast<LinkId>(id));
  }
  for (std::int64_t g = 0; g < num_gpus; ++g) {
    const auto gi = static_cast<std::size_t>(g);
    if (impl->out_links[gi].empty() || impl->in_links[gi].empty()) {
      return core::Error::field(origin + ": links", fmt::format("gpu{} needs at least one link out and one link in", g));
    }
  }
  impl->last_hop_offsets.assign(static_cast<std::size_t>(num_gpus) + 1, 0);
  for (std::int64_t g = 0; g < num_gpus; ++g) {
    for (LinkId id : impl->in_links[static_cast<std::size_t>(g)]) {
      const Link& l = impl->links[static_cast<std::size_t>(id)];
      impl->last_hops.push_back(Impl::LastHop{Impl::weight(l), l.latency_ns, l.from, id, l.link_class});
    }
    impl->last_hop_offsets[static_cast<std::size_t>(g) + 1] = static_cast<std::int32_t>(impl->last_hops.size());
  }
  impl->compute_distances();
  impl->sources.resize(static_cast<std::size_t>(num_gpus));
  impl->intern_prefix({});  // prefix class 0: direct GPU-to-GPU link
  return Topology(std::move(impl));
}

core::Expected<Topology> Topology::from_cluster(const core::ClusterSpec& cluster, const TopologyOptions& options) {
  if (cluster.topology == core::TopologyKind::kCustom) {
    if (cluster.topology_file.empty()) {
      return core::Error::field("cluster.topology_file", "must name a topology JSON file when cluster.topology is \"custom\"");
    }
    auto topology = load(cluster.topology_file);
    if (!topology) return topology.error();
    if (cluster.num_gpus() > 0 && topology->num_gpus() != cluster.num_gpus()) {
      return core::Error::field("cluster.topology_file",
                                fmt::format("'{}' has {} GPUs, the cluster {} ({} nodes x {})", cluster.topology_file,
                                            topology->num_gpus(), cluster.num_gpus(), cluster.num_nodes,
                                            cluster.gpus_per_node));
    }
    return topology;
  }
  if (cluster.num_nodes <= 0) return core::Error::field("cluster.num_nodes", fmt::format("must be > 0, got {}", cluster.num_nodes));
  if (cluster.gpus_per_node <= 0) {
    return core::Error::field("cluster.gpus_per_node", fmt::format("must be > 0, got {}", cluster.gpus_per_node));
  }
  if (cluster.nodes_per_leaf <= 0) {
    return core::Error::field("cluster.nodes_per_leaf", fmt::format("must be > 0, got {}", cluster.nodes_per_leaf));
  }
  if (!(cluster.oversubscription >= 1.0) || !std::isfinite(cluster.oversubscription)) {
    return core::Error::field("cluster.oversubscription", fmt::format("must be >= 1, got {}", cluster.oversubscription));
  }
  if (options.num_spines < 1) {
    return core::Error::field("sim.num_spines", fmt::format("must be >= 1, got {}", options.num_spines));
  }
  const std::int64_t nodes = cluster.num_nodes;
  const std::int64_t per_node = cluster.gpus_per_node;
  const std::int64_t num_gpus = nodes * per_node;
  const bool rail = cluster.topology == core::TopologyKind::kRailOptimized;
  const std::int64_t groups = (nodes + cluster.nodes_per_leaf - 1) / cluster.nodes_per_leaf;
  const std::int64_t num_leaves = rail ? groups * per_node : groups;
  const std::int64_t num_spines = num_leaves > 1 ? options.num_spines : 0;

  std::vector<std::string> switches;
  switches.reserve(static_cast<std::size_t>(nodes + num_leaves + num_spines));
  for (std::int64_t n = 0; n < nodes; ++n) switches.push_back(fmt::format("nvs{}", n));
  for (std::int64_t l = 0; l < num_leaves; ++l) switches.push_back(fmt::format("leaf{}", l));
  for (std::int64_t x = 0; x < num_spines; ++x) switches.push_back(fmt::format("spine{}", x));

  const double intra_gbps = cluster.intra_node.bandwidth_gbps;
  const double inter_gbps = cluster.inter_node.bandwidth_gbps;
  const double intra_us = cluster.intra_node.latency_us;
  const double inter_us = cluster.inter_node.latency_us;
  std::vector<LinkSpec> links;
  links.reserve(static_cast<std::size_t>(num_gpus * 4 + num_leaves * num_spines * 2));
  for (std::int64_t g = 0; g < num_gpus; ++g) {
    const std::int64_t node = g / per_node;
    const std::int64_t local = g % per_node;
    const std::string gpu = fmt::format("gpu{}", g);
    const std::string nvs = fmt::format("nvs{}", node);
    links.push_back({gpu, nvs, intra_gbps, intra_us, "nvlink_up", true, "nvlink_down"});
    const std::int64_t group = node / cluster.nodes_per_leaf;
    const std::int64_t leaf = rail ? group * per_node + local : group;
    links.push_back({gpu, fmt::format("leaf{}", leaf), inter_gbps, inter_us, "nic_up", true, "nic_down"});
  }
  const double leaf_down_gbps = static_cast<double>(rail ? cluster.nodes_per_leaf : cluster.nodes_per_leaf * per_node) * inter_gbps;
  const double uplink_gbps = leaf_down_gbps / cluster.oversubscription / static_cast<double>(std::max<std::int64_t>(num_spines, 1));
  for (std::int64_t l = 0; l < num_leaves; ++l) {
    for (std::int64_t x = 0; x < num_spines; ++x) {
      links.push_back({fmt::format("leaf{}", l), fmt::format("spine{}", x), uplink_gbps, inter_us, "leaf_up", true,
                       "spine_down"});
    }
  }
  const std::string name = cluster.name.empty() ? std::string(rail ? "rail-optimised" : "fat-tree") : cluster.name;
  return from_links(name, num_gpus, switches, links, "cluster");
}

const std::string& Topology::name() const { return impl_->name; }
std::int64_t Topology::num_gpus() const { return impl_->num_gpus; }
std::int64_t Topology::num_vertices() const { return static_cast<std::int64_t>(impl_->vertices.size()); }
std::int64_t Topology::num_links() const { return static_cast<std::int64_t>(impl_->links.size()); }
const Vertex& Topology::vertex(VertexId v) const { return impl_->vertices.at(static_cast<std::size_t>(v)); }
const Link& Topology::link(LinkId id) const { return impl_->links[static_cast<std::size_t>(id)]; }
std::span<const LinkClass> Topology::link_classes() const { return impl_->classes; }

VertexId Topology::find_vertex(std::string_view name) const {
  const auto it = impl_->vertex_index.find(std::string(name));
  return it == impl_->vertex_index.end() ? -1 : it->second;
}

bool Topology::Impl::has_route(std::int64_t src_gpu, std::int64_t dst_gpu) const {
  const SourceCache& cache = source(src_gpu);
  for (LinkId id : in_links[static_cast<std::size_t>(dst_gpu)]) {
    const Link& l = links[static_cast<std::size_t>(id)];
    if (l.from == src_gpu) return true;
    if (l.from >= num_gpus && cache.to_switch[static_cast<std::size_t>(l.from - num_gpus)].cost < kUnreachable) return true;
  }
  return false;
}

Route Topology::route(std::int64_t src_gpu, std::int64_t dst_gpu) const {
  const Impl& impl = *impl_;
  HPSIM_ASSERT(src_gpu >= 0 && src_gpu < impl.num_gpus && dst_gpu >= 0 && dst_gpu < impl.num_gpus && src_gpu != dst_gpu,
               "route({}, {}) on a topology of {} GPUs", src_gpu, dst_gpu, impl.num_gpus);
  const Impl::SourceCache& cache = impl.source(src_gpu);
  std::int64_t best = kUnreachable;
  const Impl::LastHop* best_last = nullptr;
  const Impl::PrefixEntry* best_prefix = nullptr;
  static const Impl::PrefixEntry kDirect{0, 0, 0, 0, 0};
  const auto d = static_cast<std::size_t>(dst_gpu);
  for (std::int32_t i = impl.last_hop_offsets[d]; i < impl.last_hop_offsets[d + 1]; ++i) {
    const Impl::LastHop& hop = impl.last_hops[static_cast<std::size_t>(i)];
    const Impl::PrefixEntry* prefix = nullptr;
    if (hop.from == src_gpu) {
      prefix = &kDirect;
    } else if (hop.from >= impl.num_gpus) {
      prefix = &cache.to_switch[static_cast<std::size_t>(hop.from - impl.num_gpus)];
      if (prefix->cost >= kUnreachable) continue;
    } else {
      continue;  // never through another GPU
    }
    const std::int64_t cost = prefix->cost + hop.weight;
    if (cost < best) {
      best = cost;
      best_last = &hop;
      best_prefix = prefix;
    }
  }
  HPSIM_ASSERT(best_last != nullptr, "no path from gpu{} to gpu{}", src_gpu, dst_gpu);
  Route route;
  route.prefix = std::span<const LinkId>(cache.arena.data() + best_prefix->offset, static_cast<std::size_t>(best_prefix->length));
  route.last = best_last->link;
  route.path_class = impl.path_class_of(best_prefix->prefix_class, best_last->link_class);
  route.latency_ns = best_prefix->latency_ns + best_last->latency_ns;
  return route;
}

std::vector<LinkId> Topology::path(std::int64_t src_gpu, std::int64_t dst_gpu) const {
  const Route r = route(src_gpu, dst_gpu);
  std::vector<LinkId> out(r.prefix.begin(), r.prefix.end());
  out.push_back(r.last);
  return out;
}

std::int32_t Topology::num_path_classes() const { return static_cast<std::int32_t>(impl_->path_classes.size()); }

std::span<const std::int32_t> Topology::path_class_links(std::int32_t path_class) const {
  return impl_->path_classes.at(static_cast<std::size_t>(path_class));
}

std::string Topology::path_class_name(std::int32_t path_class) const {
  std::string out;
  for (std::int32_t c : path_class_links(path_class)) {
    if (!out.empty()) out += '>';
    out += impl_->classes[static_cast<std::size_t>(c)].name;
  }
  return out;
}

std::string Topology::describe() const {
  std::string out = fmt::format("topology {}: {} GPUs, {} switches, {} links\n", impl_->name, impl_->num_gpus,
                                impl_->num_switches, impl_->links.size());
  for (const LinkClass& c : impl_->classes) {
    out += fmt::format("  {:<14} {:>7} links  {:>9.2f} GB/s  {:>8} ns\n", c.name, c.num_links, c.bandwidth_gbps, c.latency_ns);
  }
  return out;
}

}  // namespace hpsim::sim
