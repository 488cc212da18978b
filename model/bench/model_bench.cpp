// Speed of the analytic model: one scenario (both strategies) in expectation mode for W up to 64,
// the Zipf inclusion probabilities cold, and a sweep of 10,000 scenarios.
// Run: hpsim-model-bench --benchmark_min_time=0.5   (numbers and machine in docs/model.md)
#include <benchmark/benchmark.h>

#include <string>

#include "hpsim/core/presets.h"
#include "hpsim/model/data_files.h"
#include "hpsim/model/estimate.h"
#include "hpsim/model/workload.h"

namespace {

using namespace hpsim;

const core::Profile& profile() {
  static const core::Profile p = model::load_default_profile().value();
  return p;
}

// The paper's 4.2B layer with H = 64 heads of h = 16 (H h = d), so that every W up to 64 divides
// H and E: both strategies run at every W. 16 nodes of 8 H200.
core::Scenario scenario(std::int64_t W, bool zipf) {
  core::Scenario s = core::default_scenarios().front();
  s.cluster = core::cluster_preset("h200-16x8").value();
  s.model.num_heads = 64;
  s.model.head_dim = 16;
  s.parallel.num_ranks = W;
  if (zipf) {
    s.workload.routing = core::Routing::kZipf;
    s.workload.zipf_skew = 1.0;
  }
  return s;
}

void BM_EstimateBothStrategies(benchmark::State& state) {
  const auto s = scenario(state.range(0), state.range(1) != 0);
  model::EstimateOptions options;
  options.with_timeline = false;
  const std::vector<core::Strategy> both = {core::Strategy::kEp, core::Strategy::kHp};
  (void)model::estimate(s, profile(), both, options);  // warm the Zipf cache, as a sweep does
  for (auto _ : state) {
    auto e = model::estimate(s, profile(), both, options);
    benchmark::DoNotOptimize(e);
  }
  state.SetLabel(state.range(1) ? "zipf 1.0" : "uniform");
}
BENCHMARK(BM_EstimateBothStrategies)
    ->ArgsProduct({{2, 4, 8, 16, 32, 64}, {0, 1}})
    ->ArgNames({"W", "zipf"})
    ->Unit(benchmark::kMicrosecond);

// One strategy (one row of `hpsim sweep`).
void BM_EstimateOneStrategy(benchmark::State& state) {
  const auto s = scenario(state.range(0), state.range(2) != 0);
  const auto strategy = state.range(1) == 0 ? core::Strategy::kEp : core::Strategy::kHp;
  model::EstimateOptions options;
  options.with_timeline = false;
  (void)model::estimate_strategy(s, profile(), strategy, options);
  for (auto _ : state) {
    auto r = model::estimate_strategy(s, profile(), strategy, options);
    benchmark::DoNotOptimize(r);
  }
  state.SetLabel(std::string(core::to_string(strategy)) + (state.range(2) ? ", zipf 1.0" : ", uniform"));
}
BENCHMARK(BM_EstimateOneStrategy)
    ->ArgsProduct({{8, 64}, {0, 1}, {0, 1}})
    ->ArgNames({"W", "hp", "zipf"})
    ->Unit(benchmark::kMicrosecond);

void BM_EstimateWithTimeline(benchmark::State& state) {
  const auto s = scenario(state.range(0), false);
  const std::vector<core::Strategy> both = {core::Strategy::kEp, core::Strategy::kHp};
  for (auto _ : state) {
    auto e = model::estimate(s, profile(), both);
    benchmark::DoNotOptimize(e);
  }
}
BENCHMARK(BM_EstimateWithTimeline)->Arg(8)->Arg(64)->ArgName("W")->Unit(benchmark::kMicrosecond);

// Exact inclusion probabilities of Zipf(1.0) top-k, not cached (the cost of a new (E, k, skew)).
void BM_ZipfInclusionCold(benchmark::State& state) {
  const auto weights = model::zipf_weights(state.range(0), 1.0);
  for (auto _ : state) {
    auto pi = model::inclusion_probabilities(weights, state.range(1));
    benchmark::DoNotOptimize(pi);
  }
}
BENCHMARK(BM_ZipfInclusionCold)
    ->Args({384, 4})
    ->Args({768, 4})
    ->Args({1536, 8})
    ->ArgNames({"E", "k"})
    ->Unit(benchmark::kMillisecond);

// 10,000 scenarios: 5,000 grid points (k x E x W x skew x n = 5 x 5 x 5 x 8 x 5) times the two
// strategies, one estimate each, as `hpsim sweep` runs them (no timeline; Zipf cache warm after
// the first of each (E, k, skew)).
void BM_Sweep10000(benchmark::State& state) {
  const std::vector<std::int64_t> ks = {1, 2, 4, 6, 8};
  const std::vector<std::int64_t> es = {64, 128, 256, 512, 1024};
  const std::vector<std::int64_t> ws = {1, 2, 4, 8, 16};
  const std::vector<double> skews = {0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0};
  const std::vector<std::int64_t> ns = {2048, 4096, 8192, 16384, 32768};
  model::EstimateOptions options;
  options.with_timeline = false;
  for (auto _ : state) {
    std::int64_t count = 0;
    for (auto k : ks) {
      for (auto E : es) {
        for (auto W : ws) {
          for (double skew : skews) {
            for (auto n : ns) {
              for (auto strategy : {core::Strategy::kEp, core::Strategy::kHp}) {
                core::Scenario s = scenario(W, skew > 0);
                s.model.top_k = k;
                s.model.num_experts = E;
                s.workload.zipf_skew = skew;
                s.workload.tokens_per_rank = n;
                auto r = model::estimate_strategy(s, profile(), strategy, options);
                benchmark::DoNotOptimize(r);
                ++count;
              }
            }
          }
        }
      }
    }
    state.counters["scenarios"] = static_cast<double>(count);
  }
}
BENCHMARK(BM_Sweep10000)->Unit(benchmark::kMillisecond)->Iterations(1);

}  // namespace

BENCHMARK_MAIN();
