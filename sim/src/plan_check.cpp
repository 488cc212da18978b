// check_plan: the rules a LayerPlan must follow before it is simulated.
#include <cmath>
#include <vector>

#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/topological_sort.hpp>
#include <fmt/format.h>

#include "hpsim/sim/engine.h"

namespace hpsim::sim {
namespace {

bool all_finite_non_negative(const std::vector<double>& v) {
  for (double x : v) {
    if (!(x >= 0) || !std::isfinite(x)) return false;
  }
  return true;
}

// Boost.Graph: is the dependency graph acyclic?
bool is_dag(const model::LayerPlan& plan) {
  using Graph = boost::adjacency_list<boost::vecS, boost::vecS, boost::directedS>;
  Graph graph(plan.stages.size());
  for (const auto& stage : plan.stages) {
    for (std::int64_t dep : stage.deps) {
      boost::add_edge(static_cast<std::size_t>(dep), static_cast<std::size_t>(stage.id), graph);
    }
  }
  std::vector<std::size_t> order;
  try {
    boost::topological_sort(graph, std::back_inserter(order));
  } catch (const boost::not_a_dag&) {
    return false;
  }
  return true;
}

}  // namespace

core::Status check_plan(const model::LayerPlan& plan) {
  const std::int64_t w = plan.num_ranks;
  if (w <= 0) return core::Error::field("plan.num_ranks", fmt::format("must be > 0, got {}", w));
  const auto num_stages = static_cast<std::int64_t>(plan.stages.size());
  for (std::int64_t i = 0; i < num_stages; ++i) {
    const auto& s = plan.stages[static_cast<std::size_t>(i)];
    const std::string path = fmt::format("plan.stages[{}] ({})", i, s.name);
    if (s.id != i) return core::Error::field(path + ".id", fmt::format("must equal its index {}, got {}", i, s.id));
    for (std::int64_t dep : s.deps) {
      if (dep < 0 || dep >= num_stages || dep == i) {
        return core::Error::field(path + ".deps", fmt::format("{} is not another stage of the plan", dep));
      }
    }
    if (s.kind == model::StageKind::kCompute) {
      if (s.lane != core::Lane::kCompute) return core::Error::field(path + ".lane", "a compute stage runs on the compute lane");
      if (static_cast<std::int64_t>(s.duration_ns.size()) != w) {
        return core::Error::field(path + ".duration_ns", fmt::format("needs one value per rank ({}), got {}", w, s.duration_ns.size()));
      }
      if (!all_finite_non_negative(s.duration_ns)) return core::Error::field(path + ".duration_ns", "values must be finite and >= 0");
      if (!s.flops.empty() && static_cast<std::int64_t>(s.flops.size()) != w) {
        return core::Error::field(path + ".flops", fmt::format("needs one value per rank ({}) or none, got {}", w, s.flops.size()));
      }
      if (!s.bytes.empty() && static_cast<std::int64_t>(s.bytes.size()) != w) {
        return core::Error::field(path + ".bytes", fmt::format("needs one value per rank ({}) or none, got {}", w, s.bytes.size()));
      }
    } else {
      if (s.lane != core::Lane::kComm) return core::Error::field(path + ".lane", "a collective runs on the comm lane");
      if (s.traffic.num_ranks != w || static_cast<std::int64_t>(s.traffic.bytes.size()) != w * w) {
        return core::Error::field(path + ".traffic", fmt::format("must be {0} x {0}, got {1} ranks and {2} entries", w,
                                                                 s.traffic.num_ranks, s.traffic.bytes.size()));
      }
      if (!all_finite_non_negative(s.traffic.bytes)) return core::Error::field(path + ".traffic", "bytes must be finite and >= 0");
      if (!(s.alpha_ns >= 0) || !std::isfinite(s.alpha_ns)) {
        return core::Error::field(path + ".alpha_ns", fmt::format("must be finite and >= 0, got {}", s.alpha_ns));
      }
      if (!(s.local_ns >= 0) || !std::isfinite(s.local_ns)) {
        return core::Error::field(path + ".local_ns", fmt::format("must be finite and >= 0, got {}", s.local_ns));
      }
    }
  }
  if (!is_dag(plan)) return core::Error::field("plan.stages", "the dependencies form a cycle");
  for (std::int64_t i = 0; i < num_stages; ++i) {
    const auto& s = plan.stages[static_cast<std::size_t>(i)];
    for (std::int64_t dep : s.deps) {
      if (dep > i) {
        return core::Error::field(fmt::format("plan.stages[{}] ({}).deps", i, s.name),
                                  fmt::format("must point to earlier stages (plan order is execution order), got {}", dep));
      }
    }
  }
  return core::Status::ok();
}

}  // namespace hpsim::sim
