// The engine: per-rank streams of stages, collectives expanded into flows (engine.h).
#include "hpsim/sim/engine.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <tuple>

#include <fmt/format.h>

namespace hpsim::sim {
namespace {

using model::LayerPlan;
using model::PlanStage;
using model::StageKind;

std::int64_t to_ns(double ns) { return static_cast<std::int64_t>(std::llround(ns)); }

class Engine final : public FlowListener {
 public:
  Engine(const LayerPlan& plan, const Topology& topology, const SimOptions& options)
      : plan_(plan),
        options_(options),
        network_(topology, queue_, *this, options.network),
        w_(plan.num_ranks),
        num_stages_(static_cast<std::int64_t>(plan.stages.size())) {}

  core::Expected<SimResult> run() {
    const auto ws = static_cast<std::size_t>(w_);
    const auto ns = static_cast<std::size_t>(num_stages_);
    done_.assign(ns * ws, 0);
    start_.assign(ns * ws, -1);
    // Streams: overlap off = one per rank (index 0); on = one per lane (0 compute, 1 comm).
    num_streams_ = options_.overlap ? 2 : 1;
    for (int st = 0; st < num_streams_; ++st) {
      stream_stages_[st].clear();
      position_[st].assign(ws, 0);
      busy_[st].assign(ws, 0);
    }
    collective_of_.assign(ns, -1);
    for (std::int64_t i = 0; i < num_stages_; ++i) {
      const PlanStage& s = plan_.stages[static_cast<std::size_t>(i)];
      stream_stages_[stream_of(s)].push_back(i);
      if (s.kind == StageKind::kCollective) {
        collective_of_[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(collectives_.size());
        Collective c;
        c.stage = i;
        collectives_.push_back(std::move(c));
      }
    }
    result_.timeline.source = "simulated";
    result_.timeline.strategy = plan_.strategy;
    result_.timeline.ranks.resize(ws);
    for (std::int64_t r = 0; r < w_; ++r) result_.timeline.ranks[static_cast<std::size_t>(r)].rank = r;

    for (std::int64_t r = 0; r < w_; ++r) advance(r);
    queue_.run();

    for (std::int64_t i = 0; i < num_stages_; ++i) {
      for (std::int64_t r = 0; r < w_; ++r) {
        if (!done_[index(i, r)]) {
          return core::Error{core::ErrorCode::kInternal,
                             fmt::format("simulation stalled: stage {} ({}) never finished on rank {}", i,
                                         plan_.stages[static_cast<std::size_t>(i)].name, r)};
        }
      }
    }
    for (auto& rank : result_.timeline.ranks) {
      std::stable_sort(rank.spans.begin(), rank.spans.end(), [](const core::Span& a, const core::Span& b) {
        return std::tie(a.start_ns, a.end_ns) < std::tie(b.start_ns, b.end_ns);
      });
    }
    for (const Collective& c : collectives_) {
      for (std::int64_t r = 0; r < w_; ++r) result_.collectives.push_back(c.records[static_cast<std::size_t>(r)]);
    }
    result_.links = network_.link_class_series();
    result_.bytes_in_flight = network_.bytes_in_flight();
    result_.network = network_.stats();
    result_.num_events = static_cast<std::int64_t>(queue_.num_processed());
    return std::move(result_);
  }

  void on_arrival(const FlowArrival& a) override {
    Collective& c = collectives_[static_cast<std::size_t>(collective_of_[static_cast<std::size_t>(a.tag)])];
    for (const RankRun& run : a.senders) {
      for (std::int32_t rank = run.first; rank <= run.last; ++rank) {
        auto& left = c.sends_left[static_cast<std::size_t>(rank)];
        left -= run.count;
        if (left == 0) {
          c.records[static_cast<std::size_t>(rank)].sent_ns = a.end_ns;
          maybe_finish(c, rank);
        }
      }
    }
    for (const RankRun& run : a.receivers) {
      for (std::int32_t rank = run.first; rank <= run.last; ++rank) {
        auto& left = c.recvs_left[static_cast<std::size_t>(rank)];
        left -= run.count;
        if (left == 0) {
          CollectiveRecord& rec = c.records[static_cast<std::size_t>(rank)];
          rec.received_ns = a.end_ns;
          rec.last_sender = a.example_src;
          maybe_finish(c, rank);
        }
      }
    }
    ++result_.num_transfers;
    if (static_cast<std::int64_t>(result_.transfers.size()) < options_.max_transfers) {
      result_.transfers.push_back(Transfer{a.tag, a.example_src, a.example_dst, a.num_flows,
                                           static_cast<double>(a.bytes_per_flow), a.start_ns, a.end_ns});
    }
  }

 private:
  struct Collective {
    std::int64_t stage = 0;
    bool prepared = false;
    const core::TrafficMatrix* traffic = nullptr;  // the bytes the ranks exchange (the spans report these)
    const core::TrafficMatrix* flows = nullptr;    // the bytes on the wire: traffic / efficiency
    core::TrafficMatrix ring;  // an all_reduce given by its buffer sizes, expanded
    core::TrafficMatrix wire;  // traffic / efficiency, when the stage's efficiency is below 1
    std::vector<std::int32_t> sends_left;
    std::vector<std::int32_t> recvs_left;
    std::vector<double> sent_bytes;
    std::vector<char> left_sender;  // its flows have left
    std::vector<CollectiveRecord> records;
  };

  static void on_compute_done(void* self, std::int64_t arg) { static_cast<Engine*>(self)->compute_done(arg); }
  static void on_flows_leave(void* self, std::int64_t arg) { static_cast<Engine*>(self)->flows_leave(arg); }

  std::size_t index(std::int64_t stage, std::int64_t rank) const {
    return static_cast<std::size_t>(stage * w_ + rank);
  }
  int stream_of(const PlanStage& s) const { return options_.overlap && s.lane == core::Lane::kComm ? 1 : 0; }

  // Starts what can start on rank r: the head of each of its streams, once its deps are done.
  void advance(std::int64_t r) {
    const auto rr = static_cast<std::size_t>(r);
    for (int st = 0; st < num_streams_; ++st) {
      if (busy_[st][rr]) continue;
      const auto pos = static_cast<std::size_t>(position_[st][rr]);
      if (pos >= stream_stages_[st].size()) continue;
      const std::int64_t i = stream_stages_[st][pos];
      const PlanStage& s = plan_.stages[static_cast<std::size_t>(i)];
      bool ready = true;
      for (std::int64_t dep : s.deps) {
        if (!done_[index(dep, r)]) {
          ready = false;
          break;
        }
      }
      if (ready) start(i, r, st);
    }
  }

  void start(std::int64_t i, std::int64_t r, int st) {
    const PlanStage& s = plan_.stages[static_cast<std::size_t>(i)];
    const TimeNs now = queue_.now();
    busy_[st][static_cast<std::size_t>(r)] = 1;
    start_[index(i, r)] = now;
    if (s.kind == StageKind::kCompute) {
      queue_.schedule(now + to_ns(s.duration_ns[static_cast<std::size_t>(r)]), &Engine::on_compute_done, this,
                      static_cast<std::int64_t>(index(i, r)));
      return;
    }
    Collective& c = collectives_[static_cast<std::size_t>(collective_of_[static_cast<std::size_t>(i)])];
    prepare(c);
    CollectiveRecord& rec = c.records[static_cast<std::size_t>(r)];
    rec.start_ns = now;
    queue_.schedule(now + to_ns(s.alpha_ns + s.local_ns), &Engine::on_flows_leave, this, static_cast<std::int64_t>(index(i, r)));
  }

  // Flow counts of a collective, on its first start.
  void prepare(Collective& c) {
    if (c.prepared) return;
    c.prepared = true;
    const PlanStage& s = plan_.stages[static_cast<std::size_t>(c.stage)];
    c.traffic = &s.traffic;
    if (s.collective == "all_reduce" && is_diagonal(s.traffic)) {
      c.ring = core::TrafficMatrix(s.traffic.phase, w_);
      const double factor = w_ > 1 ? 2.0 * static_cast<double>(w_ - 1) / static_cast<double>(w_) : 0.0;
      for (std::int64_t r = 0; r < w_ && w_ > 1; ++r) c.ring.at(r, (r + 1) % w_) = factor * s.traffic.at(r, r);
      c.traffic = &c.ring;
    }
    // The profile's efficiency is a fraction of the link that the collective's protocol gets:
    // its flows carry bytes / efficiency, so a lone flow takes alpha + bytes / (efficiency link),
    // as in the analytic walk, and flows that share a link share its raw bandwidth.
    c.flows = c.traffic;
    if (s.efficiency > 0 && s.efficiency < 1) {
      c.wire = *c.traffic;
      for (double& b : c.wire.bytes) b /= s.efficiency;
      c.flows = &c.wire;
    }
    const auto ws = static_cast<std::size_t>(w_);
    c.sends_left.assign(ws, 0);
    c.recvs_left.assign(ws, 0);
    c.sent_bytes.assign(ws, 0.0);
    c.left_sender.assign(ws, 0);
    c.records.assign(ws, CollectiveRecord{});
    for (std::int64_t src = 0; src < w_; ++src) {
      const double* row = c.flows->bytes.data() + src * w_;
      const double* sent_row = c.traffic->bytes.data() + src * w_;
      std::int32_t sends = 0;
      double sent = 0;
      for (std::int64_t dst = 0; dst < w_; ++dst) {
        if (dst == src) continue;
        const std::int64_t b = flow_bytes(row[dst]);
        if (b == 0) continue;
        ++sends;
        sent += static_cast<double>(flow_bytes(sent_row[dst]));
        ++c.recvs_left[static_cast<std::size_t>(dst)];
      }
      c.sends_left[static_cast<std::size_t>(src)] = sends;
      c.sent_bytes[static_cast<std::size_t>(src)] = sent;
    }
    for (std::int64_t r = 0; r < w_; ++r) {
      CollectiveRecord& rec = c.records[static_cast<std::size_t>(r)];
      rec.stage = c.stage;
      rec.rank = r;
    }
  }

  static bool is_diagonal(const core::TrafficMatrix& m) {
    bool any = false;
    for (std::int64_t s = 0; s < m.num_ranks; ++s) {
      for (std::int64_t d = 0; d < m.num_ranks; ++d) {
        if (s != d && m.at(s, d) != 0) return false;
        if (s == d && m.at(s, d) != 0) any = true;
      }
    }
    return any;
  }

  void flows_leave(std::int64_t arg) {
    const std::int64_t i = arg / w_;
    const std::int64_t r = arg % w_;
    Collective& c = collectives_[static_cast<std::size_t>(collective_of_[static_cast<std::size_t>(i)])];
    const auto rr = static_cast<std::size_t>(r);
    c.left_sender[rr] = 1;
    CollectiveRecord& rec = c.records[rr];
    const TimeNs now = queue_.now();
    if (c.sends_left[rr] == 0) rec.sent_ns = now;
    if (c.recvs_left[rr] == 0) rec.received_ns = std::max(rec.received_ns, now);
    if (c.sends_left[rr] > 0) {
      network_.add_row(i, r, std::span<const double>(c.flows->bytes.data() + r * w_, static_cast<std::size_t>(w_)));
    }
    maybe_finish(c, r);
  }

  void maybe_finish(Collective& c, std::int64_t r) {
    const auto rr = static_cast<std::size_t>(r);
    if (!c.left_sender[rr] || c.sends_left[rr] > 0 || c.recvs_left[rr] > 0) return;
    if (done_[index(c.stage, r)]) return;
    CollectiveRecord& rec = c.records[rr];
    // Flows to r may have arrived before r started: r still waits for its own alpha.
    rec.received_ns = std::max(rec.received_ns, rec.start_ns);
    rec.end_ns = queue_.now();
    const PlanStage& s = plan_.stages[static_cast<std::size_t>(c.stage)];
    core::Span span;
    span.stage = s.name;
    span.phase = s.phase;
    span.lane = core::Lane::kComm;
    span.start_ns = rec.start_ns;
    span.end_ns = rec.end_ns;
    span.bytes = c.sent_bytes[rr];
    span.layer = s.layer;
    span.micro_batch = s.micro_batch;
    finish(c.stage, r, std::move(span));
  }

  void compute_done(std::int64_t arg) {
    const std::int64_t i = arg / w_;
    const std::int64_t r = arg % w_;
    const PlanStage& s = plan_.stages[static_cast<std::size_t>(i)];
    const auto rr = static_cast<std::size_t>(r);
    core::Span span;
    span.stage = s.name;
    span.phase = s.phase;
    span.lane = core::Lane::kCompute;
    span.start_ns = start_[index(i, r)];
    span.end_ns = queue_.now();
    span.bytes = s.bytes.empty() ? 0.0 : s.bytes[rr];
    span.flops = s.flops.empty() ? 0.0 : s.flops[rr];
    span.layer = s.layer;
    span.micro_batch = s.micro_batch;
    finish(i, r, std::move(span));
  }

  void finish(std::int64_t i, std::int64_t r, core::Span span) {
    const auto rr = static_cast<std::size_t>(r);
    done_[index(i, r)] = 1;
    result_.timeline.ranks[rr].spans.push_back(std::move(span));
    const int st = stream_of(plan_.stages[static_cast<std::size_t>(i)]);
    busy_[st][rr] = 0;
    ++position_[st][rr];
    advance(r);
  }

  const LayerPlan& plan_;
  SimOptions options_;
  EventQueue queue_;
  FlowNetwork network_;
  std::int64_t w_ = 0;
  std::int64_t num_stages_ = 0;
  int num_streams_ = 1;
  std::vector<std::int64_t> stream_stages_[2];
  std::vector<std::int32_t> position_[2];
  std::vector<char> busy_[2];
  std::vector<char> done_;
  std::vector<TimeNs> start_;
  std::vector<std::int32_t> collective_of_;
  std::vector<Collective> collectives_;
  SimResult result_;
};

}  // namespace

core::Expected<SimResult> simulate(const model::LayerPlan& plan, const Topology& topology, const SimOptions& options) {
  HPSIM_TRY(check_plan(plan));
  if (plan.num_ranks > topology.num_gpus()) {
    return core::Error::field("plan.num_ranks", fmt::format("must be <= the topology's GPUs ({}), got {}",
                                                            topology.num_gpus(), plan.num_ranks));
  }
  if (!(options.network.spread_tolerance >= 0) || !std::isfinite(options.network.spread_tolerance)) {
    return core::Error::field("sim.network.spread_tolerance",
                              fmt::format("must be finite and >= 0, got {}", options.network.spread_tolerance));
  }
  Engine engine(plan, topology, options);
  return engine.run();
}

core::Expected<SimResult> run_scenario(const core::Scenario& scenario, const model::LayerPlan& plan,
                                       const SimOptions& options) {
  auto topology = Topology::from_cluster(scenario.cluster, options.topology);
  if (!topology) return topology.error();
  if (plan.num_ranks > topology->num_gpus()) {
    return core::Error::field("parallel.num_ranks", fmt::format("must be <= the cluster's GPUs ({}), got {}",
                                                                topology->num_gpus(), plan.num_ranks));
  }
  return simulate(plan, *topology, options);
}

std::vector<core::StageCost> stage_costs(const model::LayerPlan& plan, const core::Timeline& timeline) {
  using Key = std::tuple<std::string, core::Phase, core::Lane, std::int64_t, std::int64_t>;
  std::map<Key, std::size_t> row_of;
  std::vector<core::StageCost> rows;
  std::vector<double> sum_us;
  std::vector<std::int64_t> count;
  for (const auto& s : plan.stages) {
    const Key key{s.name, s.phase, s.lane, s.layer, s.micro_batch};
    if (row_of.count(key) != 0) continue;
    row_of.emplace(key, rows.size());
    core::StageCost row;
    row.stage = s.name;
    row.phase = s.phase;
    row.lane = s.lane;
    rows.push_back(row);
    sum_us.push_back(0);
    count.push_back(0);
  }
  for (const auto& rank : timeline.ranks) {
    for (const auto& span : rank.spans) {
      const auto it = row_of.find(Key{span.stage, span.phase, span.lane, span.layer, span.micro_batch});
      if (it == row_of.end()) continue;
      core::StageCost& row = rows[it->second];
      const double us = static_cast<double>(span.duration_ns()) / 1e3;
      row.max_us = std::max(row.max_us, us);
      row.bytes = std::max(row.bytes, span.bytes);
      row.flops = std::max(row.flops, span.flops);
      sum_us[it->second] += us;
      ++count[it->second];
    }
  }
  for (std::size_t i = 0; i < rows.size(); ++i) {
    rows[i].mean_us = count[i] > 0 ? sum_us[i] / static_cast<double>(count[i]) : 0.0;
  }
  return rows;
}

LayerTimes layer_times(const core::Timeline& timeline) {
  constexpr std::int64_t kNone = std::numeric_limits<std::int64_t>::max();
  std::int64_t first[2] = {kNone, kNone};
  std::int64_t last[2] = {-1, -1};
  for (const auto& rank : timeline.ranks) {
    for (const auto& span : rank.spans) {
      const int p = span.phase == core::Phase::kForward ? 0 : 1;
      first[p] = std::min(first[p], span.start_ns);
      last[p] = std::max(last[p], span.end_ns);
    }
  }
  LayerTimes t;
  if (last[0] >= 0) t.forward_us = static_cast<double>(last[0] - first[0]) / 1e3;
  if (last[1] >= 0) t.backward_us = static_cast<double>(last[1] - first[1]) / 1e3;
  const std::int64_t begin = std::min(first[0], first[1]);
  const std::int64_t end = std::max(last[0], last[1]);
  if (end >= 0) t.total_us = static_cast<double>(end - begin) / 1e3;
  return t;
}

}  // namespace hpsim::sim
