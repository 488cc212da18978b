#include "hpsim/sim/flow_network.h"

#include <map>
#include <tuple>

#include <gtest/gtest.h>

#include "hpsim/core/rng.h"

namespace hpsim::sim {
namespace {

struct Arrived {
  TimeNs sent_ns = -1;
  TimeNs end_ns = -1;
};

class Collector final : public FlowListener {
 public:
  void on_arrival(const FlowArrival& a) override {
    // Groups of one flow here (or identical flows): keyed by their example.
    auto& slot = by_flow[{a.tag, a.example_src, a.example_dst}];
    slot.sent_ns = a.sent_ns;
    slot.end_ns = a.end_ns;
    for (const RankRun& run : a.receivers) {
      for (std::int32_t r = run.first; r <= run.last; ++r) received[r] += run.count;
    }
  }
  Arrived at(std::int64_t tag, std::int32_t src, std::int32_t dst) const {
    const auto it = by_flow.find({tag, src, dst});
    return it == by_flow.end() ? Arrived{} : it->second;
  }
  std::map<std::tuple<std::int64_t, std::int32_t, std::int32_t>, Arrived> by_flow;
  std::map<std::int32_t, std::int64_t> received;
};

// A switch with `n` GPUs; gpu i's links to and from it have up[i] and down[i] GB/s (= bytes/ns).
Topology star(std::int64_t n, const std::vector<double>& up, const std::vector<double>& down, double latency_us = 0) {
  std::vector<LinkSpec> links;
  for (std::int64_t i = 0; i < n; ++i) {
    links.push_back({fmt::format("gpu{}", i), "sw", up[static_cast<std::size_t>(i)], latency_us, "up", false, ""});
    links.push_back({"sw", fmt::format("gpu{}", i), down[static_cast<std::size_t>(i)], latency_us, "down", false, ""});
  }
  auto t = Topology::from_links("star", n, {"sw"}, links);
  HPSIM_ASSERT(t.has_value(), "{}", t.error().message);
  return std::move(t).value();
}

class FlowNetworkModes : public ::testing::TestWithParam<bool> {};

TEST_P(FlowNetworkModes, TwoFlowsIntoOneLinkEachGetHalf) {
  const Topology t = star(3, {1, 1, 1}, {1, 1, 1});
  EventQueue q;
  Collector c;
  FlowNetwork net(t, q, c, NetworkOptions{GetParam()});
  net.add_flow(0, 0, 2, 1000);
  net.add_flow(0, 1, 2, 1000);
  q.run();
  // Aggregated, the two identical flows arrive as one group of two.
  ASSERT_EQ(c.by_flow.size(), GetParam() ? 1u : 2u);
  for (const auto& [key, arrived] : c.by_flow) EXPECT_EQ(arrived.end_ns, 2000);
  EXPECT_EQ(c.received[2], 2);
  EXPECT_TRUE(net.idle());
}

TEST_P(FlowNetworkModes, AFlowThatEndsFreesItsShare) {
  const Topology t = star(3, {1, 1, 1}, {1, 1, 1});
  EventQueue q;
  Collector c;
  FlowNetwork net(t, q, c, NetworkOptions{GetParam()});
  net.add_flow(0, 0, 2, 1000);
  net.add_flow(0, 1, 2, 3000);
  q.run();
  // Both at 1/2 until the small one is done at 2000 ns (1000 bytes each sent); then the big one
  // has the link alone for its last 2000 bytes.
  EXPECT_EQ(c.at(0, 0, 2).end_ns, 2000);
  EXPECT_EQ(c.at(0, 1, 2).end_ns, 4000);
}

INSTANTIATE_TEST_SUITE_P(AggregateOnAndOff, FlowNetworkModes, ::testing::Values(false, true));

struct Probe {
  FlowNetwork* net;
  std::vector<double> rates;
};

void probe_rates(void* ctx, std::int64_t) {
  auto* p = static_cast<Probe*>(ctx);
  p->rates = {p->net->current_rate(0, 0, 2), p->net->current_rate(0, 0, 3), p->net->current_rate(0, 1, 3)};
}

// gpu0's uplink (1 GB/s) carries flows 1 and 2; gpu3's downlink (2 GB/s) carries flows 2 and 3.
TEST(FlowNetwork, ThreeFlowsWithDifferentBottlenecksGetTextbookShares) {
  const Topology t = star(4, {1, 100, 100, 100}, {100, 100, 100, 2});
  EventQueue q;
  Collector c;
  FlowNetwork net(t, q, c, NetworkOptions{false});
  net.add_flow(0, 0, 2, 1000);
  net.add_flow(0, 0, 3, 1000);
  net.add_flow(0, 1, 3, 6000);
  Probe probe{&net, {}};
  q.schedule(1, &probe_rates, &probe, 0);
  q.run();
  EXPECT_DOUBLE_EQ(probe.rates[0], 0.5);
  EXPECT_DOUBLE_EQ(probe.rates[1], 0.5);
  EXPECT_DOUBLE_EQ(probe.rates[2], 1.5);
  EXPECT_EQ(c.at(0, 0, 2).end_ns, 2000);
  EXPECT_EQ(c.at(0, 0, 3).end_ns, 2000);
  // 3000 bytes by 2000 ns at 1.5, then the downlink alone at 2 for the other 3000.
  EXPECT_EQ(c.at(0, 1, 3).end_ns, 3500);
}

TEST(FlowNetwork, ArrivalPaysTheLatencyOfEveryLinkOnThePath) {
  const Topology t = star(2, {1, 1}, {1, 1}, 1.0);
  EventQueue q;
  Collector c;
  FlowNetwork net(t, q, c);
  net.add_flow(7, 0, 1, 1000);
  q.run();
  EXPECT_EQ(c.at(7, 0, 1).sent_ns, 1000);
  EXPECT_EQ(c.at(7, 0, 1).end_ns, 1000 + 2 * 1000);
}

struct Launch {
  FlowNetwork* net;
  std::vector<std::tuple<std::int64_t, std::int64_t, std::int64_t>> flows;  // src, dst, bytes
};

void launch(void* ctx, std::int64_t i) {
  auto* l = static_cast<Launch*>(ctx);
  const auto& [s, d, b] = l->flows[static_cast<std::size_t>(i)];
  l->net->add_flow(i, s, d, b);
}

std::map<std::tuple<std::int64_t, std::int32_t, std::int32_t>, Arrived> run_random(const Topology& t,
                                                                                   NetworkOptions options) {
  EventQueue q;
  Collector c;
  FlowNetwork net(t, q, c, options);
  Launch l{&net, {}};
  core::Rng rng(2026);
  for (int i = 0; i < 120; ++i) {
    const auto s = static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(t.num_gpus())));
    auto d = static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(t.num_gpus() - 1)));
    if (d >= s) ++d;
    l.flows.emplace_back(s, d, 1000 + static_cast<std::int64_t>(rng.below(200000)));
    q.schedule(static_cast<TimeNs>(rng.below(20000)), &launch, &l, i);
  }
  q.run();
  EXPECT_EQ(c.by_flow.size(), 120u);
  if (options.incremental) {
    EXPECT_GT(net.stats().local_repairs, 0);
  }
  return c.by_flow;
}

// Keeping the allocation after ends and filling starts into spare capacity must give what a
// full recomputation at every change gives.
TEST(FlowNetwork, IncrementalRatesMatchRecomputingEverything) {
  core::ClusterSpec cl;
  cl.name = "random";
  cl.num_nodes = 4;
  cl.gpus_per_node = 4;
  cl.gpu = {"H200", 141};
  cl.intra_node = {100, 0.5};
  cl.inter_node = {12.5, 1};
  cl.nodes_per_leaf = 2;
  cl.oversubscription = 2;
  auto t = Topology::from_cluster(cl);
  ASSERT_TRUE(t.has_value());
  NetworkOptions full{false};
  full.incremental = false;
  NetworkOptions checked{false};
  checked.check_incremental = true;  // also asserts, after every update, that a recomputation agrees
  const auto a = run_random(*t, checked);
  const auto b = run_random(*t, full);
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [key, arrived] : a) {
    EXPECT_NEAR(static_cast<double>(arrived.end_ns), static_cast<double>(b.at(key).end_ns), 1.0);
  }
}

}  // namespace
}  // namespace hpsim::sim
