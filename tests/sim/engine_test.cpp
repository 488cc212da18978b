#include "hpsim/sim/engine.h"

#include <gtest/gtest.h>

#include "hpsim/model/estimate.h"
#include "hpsim/traces/chrome_trace.h"
#include "plans.h"

namespace hpsim::sim {
namespace {

using namespace hpsim::sim::testing;  // NOLINT(google-build-using-namespace)

Topology topology_of(const core::ClusterSpec& c, TopologyOptions options = {}) {
  auto t = Topology::from_cluster(c, options);
  HPSIM_ASSERT(t.has_value(), "{}", t.error().message);
  return std::move(t).value();
}

SimResult run(const model::LayerPlan& plan, const Topology& t, SimOptions options = {}) {
  auto r = simulate(plan, t, options);
  HPSIM_ASSERT(r.has_value(), "{}", r.error().message);
  return std::move(r).value();
}

const core::Span& span_of(const SimResult& r, std::int64_t rank, const std::string& stage,
                          core::Phase phase = core::Phase::kForward) {
  for (const auto& s : r.timeline.ranks[static_cast<std::size_t>(rank)].spans) {
    if (s.stage == stage && s.phase == phase) return s;
  }
  HPSIM_ASSERT(false, "no span {} on rank {}", stage, rank);
  std::abort();
}

// Two GPUs of one node, NVLink 100 GB/s and 1 us per link: compute 10 us, an all-to-all of 1 MB
// each way after 3 us of software latency, compute 5 us.
TEST(Engine, UncontendedPlanTakesTheHandComputedTime) {
  const Topology t = topology_of(cluster(1, 2, 1, 1.0, 100, 50, 1.0, 1.0));
  const auto plan = plan_of("hp", 2,
                            {compute("a", {10000, 10000}, {}), collective("x", uniform("x", 2, 1e6), 3000, {0}),
                             compute("b", {5000, 5000}, {1})});
  const SimResult r = run(plan, t);
  const double expected = 10000 + 3000 + 1e6 / 100.0 + 2 * 1000 + 5000;
  EXPECT_NEAR(static_cast<double>(r.timeline.end_ns()), expected, 0.01 * expected);
  EXPECT_EQ(r.timeline.source, "simulated");
  EXPECT_EQ(span_of(r, 1, "x").bytes, 1e6);
  EXPECT_EQ(span_of(r, 0, "b").start_ns, span_of(r, 0, "x").end_ns);
}

// Without contention and latency the engine and the model's analytic walk describe the same
// thing: each collective costs alpha + bytes / bandwidth.
TEST(Engine, AgreesWithTheAnalyticWalkWhenNothingContends) {
  const Topology t = topology_of(cluster(1, 2, 1, 1.0, 200, 50));
  auto plan = plan_of("ep", 2,
                      {compute("router", {7000, 9000}, {}), collective("dispatch", uniform("dispatch", 2, 3e6), 4000, {0}),
                       compute("expert_mlp", {50000, 20000}, {1}),
                       collective("combine", uniform("combine", 2, 3e6), 4000, {2})});
  for (auto& s : plan.stages) s.bandwidth_gbps = 200;
  const SimResult r = run(plan, t);
  const model::PlanWalk walk = model::walk_plan(plan);
  const double analytic = walk.end_ns_max();
  EXPECT_NEAR(static_cast<double>(r.timeline.end_ns()), analytic, 0.01 * analytic);
}

// A collective's fitted efficiency stretches its flows: at efficiency 0.5 a lone all-to-all takes
// alpha + bytes / (0.5 link), as the analytic walk prices it; the span still reports the bytes
// exchanged, not the stretched ones. Sharing a link: two collectives' flows split its raw rate.
TEST(Engine, CollectiveEfficiencyStretchesItsFlowsLikeTheAnalyticWalk) {
  const Topology t = topology_of(cluster(1, 2, 1, 1.0, 200, 50));
  auto plan = plan_of("hp", 2, {compute("a", {1000, 1000}, {}), collective("x", uniform("x", 2, 4e6), 3000, {0})});
  plan.stages[1].efficiency = 0.5;
  plan.stages[1].bandwidth_gbps = 0.5 * 200;
  const SimResult r = run(plan, t);
  const double expected = 1000 + 3000 + 4e6 / (0.5 * 200.0);  // 44 us
  EXPECT_NEAR(static_cast<double>(span_of(r, 0, "x").end_ns), expected, 0.01 * expected);
  EXPECT_EQ(span_of(r, 0, "x").bytes, 4e6);
  const model::PlanWalk walk = model::walk_plan(plan);
  EXPECT_NEAR(static_cast<double>(r.timeline.end_ns()), walk.end_ns_max(), 0.01 * walk.end_ns_max());
  // Efficiency 1 (the default, as in plans without a profile) leaves the flows as they are.
  plan.stages[1].efficiency = 1;
  const SimResult full = run(plan, t);
  EXPECT_NEAR(static_cast<double>(span_of(full, 0, "x").end_ns), 1000 + 3000 + 4e6 / 200.0, 0.01 * 24000);
}

// Two nodes of two GPUs under one leaf. Each GPU sends B to its node peer over NVLink and B to
// each of the two GPUs of the other node through its NIC (50 GB/s): its NIC carries 2B out and
// 2B in, so the all-to-all takes 2B / 50 GB/s.
// A collective's local time (a one-rank group's device copy, EP metadata's host round trip) is
// spent before its flows leave, in the simulator as in the analytic walk.
TEST(Engine, CollectiveLocalTimeDelaysItsEnd) {
  const Topology one = topology_of(cluster(1, 1, 1, 1.0, 100, 50, 1.0, 1.0));
  auto copy = collective("dispatch", uniform("dispatch", 1, 1e6), 0, {0});
  copy.local_ns = 500;  // 2 MB read + written at 4000 GB/s
  const auto plan = plan_of("hp", 1, {compute("a", {1000}, {}), copy, compute("b", {2000}, {1})});
  const SimResult r = run(plan, one);
  EXPECT_EQ(span_of(r, 0, "dispatch").start_ns, 1000);
  EXPECT_EQ(span_of(r, 0, "dispatch").end_ns, 1500);
  EXPECT_EQ(r.timeline.end_ns(), 3500);
  EXPECT_DOUBLE_EQ(model::walk_plan(plan).end_ns_max(), 3500);

  // Two ranks: the flows leave alpha + local after the start.
  const Topology two = topology_of(cluster(1, 2, 1, 1.0, 100, 50, 0.0, 0.0));
  auto meta = collective("metadata", uniform("metadata", 2, 1e5), 3000, {});
  meta.local_ns = 7000;
  const SimResult m = run(plan_of("ep", 2, {meta}), two);
  EXPECT_NEAR(static_cast<double>(span_of(m, 1, "metadata").end_ns), 3000 + 7000 + 1e5 / 100.0, 20);
}

TEST(Engine, NicBottleneckGivesTheHandComputedAllToAllTime) {
  const Topology t = topology_of(cluster(2, 2, 2, 1.0, 400, 50));
  const double bytes = 10e6;
  const auto plan = plan_of("hp", 4, {collective("a2a", uniform("a2a", 4, bytes), 0, {})});
  const SimResult r = run(plan, t);
  for (std::int64_t rank = 0; rank < 4; ++rank) {
    const auto& s = span_of(r, rank, "a2a");
    EXPECT_EQ(s.start_ns, 0);
    EXPECT_NEAR(static_cast<double>(s.end_ns), 2 * bytes / 50.0, 1.0) << "rank " << rank;
  }
}

TEST(Engine, HotRankDelaysEveryRanksCombine) {
  const Topology t = topology_of(cluster(1, 4, 1, 1.0, 100));
  const std::vector<double> flat(4, 10000.0);
  const auto plan = plan_of("ep", 4,
                            {compute("router", flat, {}), collective("dispatch", uniform("dispatch", 4, 1e6), 2000, {0}),
                             compute("expert_mlp", {200000, 20000, 20000, 20000}, {1}),
                             collective("combine", uniform("combine", 4, 1e6), 2000, {2})});
  const SimResult r = run(plan, t);
  const auto& hot_expert = span_of(r, 0, "expert_mlp");
  for (std::int64_t rank = 0; rank < 4; ++rank) {
    const auto& combine = span_of(r, rank, "combine");
    // Nobody's combine ends before the hot rank has computed, waited alpha and sent 1 MB (10 us).
    EXPECT_GE(combine.end_ns, hot_expert.end_ns + 2000 + 10000) << "rank " << rank;
    if (rank > 0) {
      // The cold ranks start early and wait: their combine lasts longer than the hot rank's.
      EXPECT_LT(combine.start_ns, hot_expert.end_ns);
      EXPECT_GT(combine.duration_ns(), span_of(r, 0, "combine").duration_ns());
    }
  }
  for (const auto& rec : r.collectives) {
    if (plan.stages[static_cast<std::size_t>(rec.stage)].name == "combine" && rec.rank != 0) {
      EXPECT_EQ(rec.last_sender, 0);
    }
  }
}

TEST(Engine, BalancedPlanGivesTheSameTimelineOnEveryRank) {
  // 4 nodes x 2 GPUs, two leaves, uplinks oversubscribed twice: contention, but symmetric.
  const Topology t = topology_of(cluster(4, 2, 2, 2.0, 400, 50, 1.0, 2.0));
  const SimResult r = run(hp_like(8, 2e6), t);
  const auto& first = r.timeline.ranks[0].spans;
  ASSERT_EQ(first.size(), 10u);
  for (const auto& rank : r.timeline.ranks) {
    ASSERT_EQ(rank.spans.size(), first.size());
    for (std::size_t i = 0; i < first.size(); ++i) {
      EXPECT_EQ(rank.spans[i].stage, first[i].stage);
      EXPECT_EQ(rank.spans[i].start_ns, first[i].start_ns) << "rank " << rank.rank << " span " << i;
      EXPECT_EQ(rank.spans[i].end_ns, first[i].end_ns) << "rank " << rank.rank << " span " << i;
    }
  }
}

traces::TraceExtras extras_of(const SimResult& r, const model::LayerPlan& plan) {
  traces::TraceExtras x;
  for (const Transfer& tr : r.transfers) {
    x.flows.push_back(traces::FlowArrow{plan.stages[static_cast<std::size_t>(tr.stage)].name, tr.src, tr.dst,
                                        tr.start_ns, tr.end_ns, tr.bytes, tr.num_flows});
  }
  for (const TimeValue& v : r.bytes_in_flight) x.counters.push_back({"bytes in flight", -1, v.t_ns, v.value});
  return x;
}

TEST(Engine, TwoRunsGiveIdenticalTraceBytes) {
  const Topology t1 = topology_of(cluster(4, 4, 2, 2.0, 400, 50, 1.0, 2.0), TopologyOptions{2});
  const Topology t2 = topology_of(cluster(4, 4, 2, 2.0, 400, 50, 1.0, 2.0), TopologyOptions{2});
  const auto plan = ep_like(16, 1.0, 8e6, 100000);
  const SimResult a = run(plan, t1);
  const SimResult b = run(plan, t2);
  const std::string ta = traces::to_chrome_trace(a.timeline, extras_of(a, plan));
  const std::string tb = traces::to_chrome_trace(b.timeline, extras_of(b, plan));
  EXPECT_GT(a.transfers.size(), 0u);
  EXPECT_NE(ta.find("\"ph\":\"s\""), std::string::npos);
  EXPECT_EQ(ta, tb);
}

TEST(Engine, OverlapLetsIndependentComputeRunUnderCommunication) {
  const Topology t = topology_of(cluster(1, 2, 1, 1.0, 100));
  // "other" needs only "a": with overlap it runs while "x" communicates.
  const auto plan = plan_of("hp", 2,
                            {compute("a", {1000, 1000}, {}), collective("x", uniform("x", 2, 5e6), 0, {0}),
                             compute("other", {40000, 40000}, {0}), compute("b", {1000, 1000}, {1, 2})});
  SimOptions serial;
  SimOptions overlap;
  overlap.overlap = true;
  const SimResult rs = run(plan, t, serial);
  const SimResult ro = run(plan, t, overlap);
  EXPECT_EQ(rs.timeline.end_ns(), 1000 + 50000 + 40000 + 1000);
  EXPECT_EQ(ro.timeline.end_ns(), 1000 + 50000 + 1000);
  EXPECT_LT(span_of(ro, 0, "other").start_ns, span_of(ro, 0, "x").end_ns);
}

TEST(Engine, AllReduceGivenAsBufferSizesRunsAsARing) {
  const Topology t = topology_of(cluster(1, 4, 1, 1.0, 100));
  core::TrafficMatrix buffers("grads", 4);
  for (std::int64_t r = 0; r < 4; ++r) buffers.at(r, r) = 4e6;
  const auto plan = plan_of("hp", 4, {collective("grad_sync", buffers, 1000, {}, core::Phase::kBackward, "all_reduce")});
  const SimResult r = run(plan, t);
  // Ring bus bytes: 2 (W-1)/W x 4 MB = 6 MB to the successor at 100 GB/s.
  for (std::int64_t rank = 0; rank < 4; ++rank) {
    EXPECT_NEAR(static_cast<double>(span_of(r, rank, "grad_sync", core::Phase::kBackward).end_ns), 1000 + 6e6 / 100, 1.0);
  }
}

TEST(Engine, RejectsPlansWhoseDepsDoNotPointBackwards) {
  const Topology t = topology_of(cluster(1, 2, 1));
  auto forward_dep = plan_of("hp", 2, {compute("a", {1, 1}, {1}), compute("b", {1, 1}, {})});
  auto r = simulate(forward_dep, t);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("plan.stages[0] (a).deps"), std::string::npos) << r.error().message;

  auto cycle = plan_of("hp", 2, {compute("a", {1, 1}, {1}), compute("b", {1, 1}, {0})});
  r = simulate(cycle, t);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("cycle"), std::string::npos) << r.error().message;

  auto short_durations = plan_of("hp", 2, {compute("a", {1}, {})});
  r = simulate(short_durations, t);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("plan.stages[0] (a).duration_ns"), std::string::npos);

  auto too_many_ranks = plan_of("hp", 3, {compute("a", {1, 1, 1}, {})});
  r = simulate(too_many_ranks, t);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("plan.num_ranks"), std::string::npos);
}

TEST(Engine, StageCostsTakeTheSlowestRankAndTheMean) {
  const Topology t = topology_of(cluster(1, 4, 1, 1.0, 100));
  const auto plan = plan_of("ep", 4, {compute("expert_mlp", {200000, 20000, 20000, 40000}, {}),
                                      collective("combine", uniform("combine", 4, 1e6), 0, {0})});
  const SimResult r = run(plan, t);
  const auto rows = stage_costs(plan, r.timeline);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].stage, "expert_mlp");
  EXPECT_DOUBLE_EQ(rows[0].max_us, 200.0);
  EXPECT_DOUBLE_EQ(rows[0].mean_us, (200.0 + 20 + 20 + 40) / 4);
  EXPECT_DOUBLE_EQ(rows[1].bytes, 3e6);
  // The combine waits for the hot rank on every rank: its slowest is the rank that started first.
  EXPECT_GE(rows[1].max_us, 180.0);
  const LayerTimes times = layer_times(r.timeline);
  EXPECT_DOUBLE_EQ(times.total_us, static_cast<double>(r.timeline.end_ns()) / 1e3);
}

TEST(Engine, RunScenarioUsesTheClusterOfTheScenario) {
  core::Scenario s;
  s.cluster = cluster(2, 2, 1, 1.0, 400, 50);
  const auto plan = plan_of("hp", 4, {collective("a2a", uniform("a2a", 4, 10e6), 0, {})});
  auto r = run_scenario(s, plan);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_NEAR(static_cast<double>(r->timeline.end_ns()), 2 * 10e6 / 50.0, 1.0);
  s.cluster.num_nodes = 1;
  auto too_small = run_scenario(s, plan);
  ASSERT_FALSE(too_small.has_value());
  EXPECT_NE(too_small.error().message.find("parallel.num_ranks"), std::string::npos);
}

}  // namespace
}  // namespace hpsim::sim
