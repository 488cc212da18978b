#include "hpsim/sim/topology.h"

#include <limits>
#include <set>
#include <utility>

#include <gtest/gtest.h>

namespace hpsim::sim {
namespace {

core::ClusterSpec cluster(std::int64_t nodes, std::int64_t per_node, std::int64_t nodes_per_leaf,
                          core::TopologyKind kind = core::TopologyKind::kFatTree, double oversubscription = 1.0) {
  core::ClusterSpec c;
  c.name = "test";
  c.num_nodes = nodes;
  c.gpus_per_node = per_node;
  c.gpu = {"H200", 141};
  c.intra_node = {400.0, 1.0};
  c.inter_node = {50.0, 3.0};
  c.topology = kind;
  c.nodes_per_leaf = nodes_per_leaf;
  c.oversubscription = oversubscription;
  return c;
}

const LinkClass* find_class(const Topology& t, const std::string& name) {
  for (const auto& c : t.link_classes()) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

TEST(Topology, FatTreeHasOneLinkEachWayPerGpuAndPerLeafSpinePair) {
  auto t = Topology::from_cluster(cluster(8, 4, 2, core::TopologyKind::kFatTree, 2.0), TopologyOptions{3});
  ASSERT_TRUE(t.has_value()) << t.error().message;
  EXPECT_EQ(t->num_gpus(), 32);
  EXPECT_EQ(t->num_vertices(), 32 + 8 + 4 + 3);  // GPUs, NVSwitches, leaves, spines
  ASSERT_NE(find_class(*t, "nvlink_up"), nullptr);
  EXPECT_EQ(find_class(*t, "nvlink_up")->num_links, 32);
  EXPECT_EQ(find_class(*t, "nic_down")->num_links, 32);
  EXPECT_EQ(find_class(*t, "leaf_up")->num_links, 4 * 3);
  EXPECT_EQ(find_class(*t, "spine_down")->num_links, 4 * 3);
  // A leaf has 2 nodes x 4 NICs of 50 GB/s below it: 400 GB/s, halved by oversubscription 2,
  // spread over 3 spines.
  EXPECT_DOUBLE_EQ(find_class(*t, "leaf_up")->bandwidth_gbps, 400.0 / 2.0 / 3.0);
  EXPECT_EQ(find_class(*t, "nic_up")->latency_ns, 3000);
}

TEST(Topology, TrafficInsideANodeStaysOnNvlink) {
  auto t = Topology::from_cluster(cluster(2, 4, 1));
  ASSERT_TRUE(t.has_value());
  const Route r = t->route(1, 3);
  EXPECT_EQ(r.num_hops(), 2);
  EXPECT_EQ(t->path_class_name(r.path_class), "nvlink_up>nvlink_down");
  EXPECT_EQ(r.latency_ns, 2000);
  EXPECT_EQ(t->vertex(t->link(r.hop(0)).from).name, "gpu1");
  EXPECT_EQ(t->vertex(t->link(r.hop(1)).to).name, "gpu3");
}

TEST(Topology, CrossLeafTrafficGoesUpToASpineAndDown) {
  auto t = Topology::from_cluster(cluster(4, 2, 2));
  ASSERT_TRUE(t.has_value());
  const Route same_leaf = t->route(0, 2);  // nodes 0 and 1 share leaf 0
  EXPECT_EQ(t->path_class_name(same_leaf.path_class), "nic_up>nic_down");
  const Route cross = t->route(0, 7);  // node 3 is under leaf 1
  EXPECT_EQ(t->path_class_name(cross.path_class), "nic_up>leaf_up>spine_down>nic_down");
  EXPECT_EQ(cross.latency_ns, 4 * 3000);
}

TEST(Topology, RailOptimisedKeepsEqualLocalIndicesUnderOneLeaf) {
  auto t = Topology::from_cluster(cluster(4, 2, 4, core::TopologyKind::kRailOptimized));
  ASSERT_TRUE(t.has_value());
  // GPU 1 of node 0 (gpu1) and GPU 1 of node 3 (gpu7) share rail leaf 1: two hops.
  EXPECT_EQ(t->path_class_name(t->route(1, 7).path_class), "nic_up>nic_down");
  // Different rails between nodes: through a spine.
  EXPECT_EQ(t->path_class_name(t->route(0, 7).path_class), "nic_up>leaf_up>spine_down>nic_down");
}

TEST(Topology, EcmpSpreadsOverSpinesAndIsDeterministic) {
  const auto spec = cluster(16, 2, 2);
  auto a = Topology::from_cluster(spec, TopologyOptions{4});
  auto b = Topology::from_cluster(spec, TopologyOptions{4});
  ASSERT_TRUE(a.has_value() && b.has_value());
  std::set<VertexId> spines;
  for (std::int64_t src = 0; src < 32; ++src) {
    if (src / 4 == 7) continue;  // same leaf as the destination
    const auto pa = a->path(src, 31);
    EXPECT_EQ(pa, b->path(src, 31));
    ASSERT_EQ(pa.size(), 4u);
    spines.insert(a->link(pa[1]).to);
  }
  EXPECT_GT(spines.size(), 1u);
}

// Independent check: Bellman-Ford over (latency, hops) with no GPU in the middle of a path.
TEST(Topology, RoutesAreTheCheapestPathsByLatencyThenHops) {
  auto t = Topology::from_cluster(cluster(6, 2, 2, core::TopologyKind::kFatTree, 1.5), TopologyOptions{2});
  ASSERT_TRUE(t.has_value());
  using Cost = std::pair<std::int64_t, std::int64_t>;
  const Cost inf{std::numeric_limits<std::int64_t>::max(), 0};
  const auto nv = static_cast<std::size_t>(t->num_vertices());
  for (std::int64_t src = 0; src < t->num_gpus(); ++src) {
    std::vector<Cost> best(nv, inf);
    best[static_cast<std::size_t>(src)] = {0, 0};
    for (std::size_t round = 0; round < nv; ++round) {
      for (LinkId l = 0; l < t->num_links(); ++l) {
        const Link& link = t->link(l);
        const auto from = static_cast<std::size_t>(link.from);
        if (best[from] == inf) continue;
        if (t->vertex(link.from).kind == VertexKind::kGpu && link.from != src) continue;
        const Cost c{best[from].first + link.latency_ns, best[from].second + 1};
        if (c < best[static_cast<std::size_t>(link.to)]) best[static_cast<std::size_t>(link.to)] = c;
      }
    }
    for (std::int64_t dst = 0; dst < t->num_gpus(); ++dst) {
      if (dst == src) continue;
      const auto path = t->path(src, dst);
      std::int64_t latency = 0;
      VertexId at = static_cast<VertexId>(src);
      for (LinkId l : path) {
        ASSERT_EQ(t->link(l).from, at);
        at = t->link(l).to;
        latency += t->link(l).latency_ns;
      }
      ASSERT_EQ(at, dst);
      EXPECT_EQ(Cost(latency, static_cast<std::int64_t>(path.size())), best[static_cast<std::size_t>(dst)])
          << "gpu" << src << " -> gpu" << dst;
      EXPECT_EQ(t->route(src, dst).latency_ns, latency);
    }
  }
}

TEST(Topology, ReadsACustomFileWithADirectGpuLink) {
  const char* text = R"({
    "name": "pair-and-switch",
    "num_gpus": 3,
    "switches": ["sw"],
    "links": [
      {"from": "gpu0", "to": "gpu1", "bandwidth_gbps": 100, "latency_us": 0.5, "kind": "bridge", "duplex": true},
      {"from": "gpu0", "to": "sw", "bandwidth_gbps": 25, "latency_us": 2, "duplex": true},
      {"from": "gpu1", "to": "sw", "bandwidth_gbps": 25, "latency_us": 2, "duplex": true},
      {"from": "gpu2", "to": "sw", "bandwidth_gbps": 25, "latency_us": 2, "duplex": true}
    ]})";
  auto t = Topology::from_json(text, "custom.json");
  ASSERT_TRUE(t.has_value()) << t.error().message;
  EXPECT_EQ(t->name(), "pair-and-switch");
  EXPECT_EQ(t->path_class_name(t->route(0, 1).path_class), "bridge");
  EXPECT_EQ(t->path_class_name(t->route(1, 0).path_class), "bridge.rev");
  EXPECT_EQ(t->path_class_name(t->route(0, 2).path_class), "gpu-switch>gpu-switch.rev");
  EXPECT_EQ(t->route(0, 2).latency_ns, 4000);
}

TEST(Topology, CustomFileErrorsNameTheFileAndField) {
  auto unknown_vertex = Topology::from_json(
      R"({"num_gpus": 2, "links": [{"from": "gpu0", "to": "nvs9", "bandwidth_gbps": 1, "latency_us": 0}]})", "t.json");
  ASSERT_FALSE(unknown_vertex.has_value());
  EXPECT_NE(unknown_vertex.error().message.find("t.json: links[0].to: unknown vertex 'nvs9'"), std::string::npos)
      << unknown_vertex.error().message;

  auto unknown_field = Topology::from_json(R"({"num_gpus": 1, "links": [], "color": "red"})", "t.json");
  ASSERT_FALSE(unknown_field.has_value());
  EXPECT_NE(unknown_field.error().message.find("t.json: color: unknown field"), std::string::npos);

  // gpu2 can send but nothing reaches it.
  auto cut = Topology::from_json(R"({"num_gpus": 3, "switches": ["sw"], "links": [
      {"from": "gpu0", "to": "sw", "bandwidth_gbps": 1, "latency_us": 0, "duplex": true},
      {"from": "gpu1", "to": "sw", "bandwidth_gbps": 1, "latency_us": 0, "duplex": true},
      {"from": "gpu2", "to": "sw", "bandwidth_gbps": 1, "latency_us": 0},
      {"from": "gpu0", "to": "gpu2", "bandwidth_gbps": 1, "latency_us": 0}]})",
                                 "t.json");
  ASSERT_FALSE(cut.has_value());
  EXPECT_NE(cut.error().message.find("no path from gpu1 to gpu2"), std::string::npos) << cut.error().message;

  auto bad_bandwidth = Topology::from_json(
      R"({"num_gpus": 2, "links": [{"from": "gpu0", "to": "gpu1", "bandwidth_gbps": 0, "latency_us": 0, "duplex": true}]})",
      "t.json");
  ASSERT_FALSE(bad_bandwidth.has_value());
  EXPECT_NE(bad_bandwidth.error().message.find("links[0].bandwidth_gbps: must be > 0"), std::string::npos);
}

TEST(Topology, RejectsABadClusterWithTheFieldName) {
  auto c = cluster(2, 4, 1);
  c.oversubscription = 0.5;
  auto t = Topology::from_cluster(c);
  ASSERT_FALSE(t.has_value());
  EXPECT_NE(t.error().message.find("cluster.oversubscription"), std::string::npos);
}

}  // namespace
}  // namespace hpsim::sim
