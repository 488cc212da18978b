// The headless models, each under QAbstractItemModelTester, fed with core types built by hand.
#include <gtest/gtest.h>

#include <QAbstractItemModelTester>
#include <QSignalSpy>

#include "hpsim/core/presets.h"
#include "hpsim/core/validate.h"
#include "hpsim/gui/models/csv.h"
#include "hpsim/gui/models/memory_model.h"
#include "hpsim/gui/models/report_models.h"
#include "hpsim/gui/models/scenario_document.h"
#include "hpsim/gui/models/scenario_fields.h"
#include "hpsim/gui/models/scenario_model.h"
#include "hpsim/gui/models/sweep.h"
#include "hpsim/gui/models/timeline_model.h"
#include "hpsim/gui/models/traffic_models.h"

namespace hpsim::gui {
namespace {

using Tester = QAbstractItemModelTester;
constexpr auto kFatal = QAbstractItemModelTester::FailureReportingMode::Fatal;

// W = 3 traffic with distinct entries, so that a wrong (src, dst) shows.
core::TrafficMatrix matrix(const std::string& phase, double scale) {
  core::TrafficMatrix m(phase, 3);
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) m.at(i, j) = scale * (10 * i + j + 1);
  }
  return m;
}

core::StrategyReport strategyReport(const std::string& name, double scale) {
  core::StrategyReport s;
  s.strategy = name;
  if (name == "ep") s.traffic.push_back(matrix("metadata", 0.01));
  s.traffic.push_back(matrix("dispatch", scale));
  s.traffic.push_back(matrix("combine", scale));
  s.layer_forward_us = 100 * scale;
  s.layer_backward_us = 200 * scale;
  s.layer_total_us = 300 * scale;
  s.stages = {{"router", core::Phase::kForward, core::Lane::kCompute, 10 * scale, 8, 0, 1e9},
              {"dispatch", core::Phase::kForward, core::Lane::kComm, 20 * scale, 20, 1e6, 0}};
  s.memory.capacity_bytes = 100;
  for (int r = 0; r < 3; ++r) s.memory.ranks.push_back({r, 10, 10, 10, 10.0 * (r + 1) * scale, 5, 5});
  return s;
}

ResultPtr handResult(bool timing = true) {
  auto r = std::make_shared<EngineResult>();
  r->report.strategies = {strategyReport("ep", 2.0), strategyReport("hp", 1.0)};
  r->has_timing = timing;
  r->metrics["ep"] = {12, 34, 0, 0, 0, 0, 0};
  r->metrics["hp"] = {56, 78, 0, 0, 0, 0, 0};
  return r;
}

TEST(ScenarioModel, PassesModelTesterAndListsEverySection) {
  ScenarioDocument doc;
  ScenarioModel model(&doc);
  Tester tester(&model, kFatal);
  EXPECT_EQ(model.rowCount(), scenario_sections().size());
  int fields = 0;
  for (int s = 0; s < model.rowCount(); ++s) fields += model.rowCount(model.index(s, 0));
  EXPECT_EQ(fields, static_cast<int>(scenario_fields().size()));
  EXPECT_TRUE(model.allMessages().isEmpty());
}

TEST(ScenarioModel, EveryValidationPathHasAField) {
  // Break every rule core checks, then check that each message lands on a field of the editor.
  ScenarioDocument doc;
  core::Scenario s = doc.scenario();
  s.name.clear();
  s.model = {};
  s.cluster = {};
  s.workload = {};
  s.workload.zipf_skew = -1;
  s.training = {};
  s.parallel.num_ranks = 3;
  doc.replaceScenario(s, QStringLiteral("broken"));
  for (const auto& e : core::check_scenario(doc.scenario())) {
    EXPECT_GE(find_field(QString::fromStdString(e.path)), 0) << e.path;
  }
}

TEST(ScenarioModel, SetDataEditsThroughUndoStack) {
  ScenarioDocument doc;
  ScenarioModel model(&doc);
  Tester tester(&model, kFatal);
  const QModelIndex k = model.indexOfPath(QStringLiteral("model.top_k"));
  ASSERT_TRUE(k.isValid());
  const auto before = doc.scenario().model.top_k;
  EXPECT_TRUE(model.setData(k, QStringLiteral("7")));
  EXPECT_EQ(doc.scenario().model.top_k, 7);
  EXPECT_EQ(model.data(k).toString(), QStringLiteral("7"));
  doc.undoStack()->undo();
  EXPECT_EQ(doc.scenario().model.top_k, before);
  EXPECT_EQ(model.data(k).toString(), QString::number(before));
}

TEST(ScenarioModel, BadTextGivesJsonReaderWordingAndKeepsValue) {
  ScenarioDocument doc;
  ScenarioModel model(&doc);
  const QModelIndex k = model.indexOfPath(QStringLiteral("model.top_k"));
  const auto before = doc.scenario().model.top_k;
  EXPECT_FALSE(model.setData(k, QStringLiteral("four")));
  EXPECT_EQ(doc.scenario().model.top_k, before);
  EXPECT_EQ(model.messages(QStringLiteral("model.top_k")),
            QStringList{QStringLiteral("model.top_k: expected an integer, got \"four\"")});
  EXPECT_TRUE(model.setData(k, QString::number(before)));
  EXPECT_TRUE(model.messages(QStringLiteral("model.top_k")).isEmpty());
}

TEST(ScenarioModel, StrategyRuleIsAWarningNotABlock) {
  // W = 6 on 16 nodes: EP runs (768 % 6 == 0), HP does not (8 % 6 != 0).
  ScenarioDocument doc;
  ScenarioModel model(&doc);
  core::Scenario s = doc.scenario();
  s.cluster = core::cluster_preset("h100-16x8").value();
  s.parallel.num_ranks = 6;
  doc.replaceScenario(s, QStringLiteral("W=6"));
  const auto expected = core::check_strategy(s, core::Strategy::kHp);
  ASSERT_EQ(expected.size(), 1u);
  EXPECT_EQ(model.messages(QStringLiteral("parallel.num_ranks")),
            QStringList{QString::fromStdString(expected.front().to_string())});
  EXPECT_EQ(model.numBlocking(), 0);
  EXPECT_FALSE(model.indexOfPath(QStringLiteral("parallel.num_ranks")).data(ScenarioModel::kBlockingRole).toBool());
}

TEST(TrafficModel, ShowsTheSelectedPhaseCellByCell) {
  TrafficModel model(QStringLiteral("ep"));
  Tester tester(&model, kFatal);
  model.setPhase(QStringLiteral("combine"));
  auto result = handResult();
  model.setResult(result);
  ASSERT_EQ(model.rowCount(), 3);
  EXPECT_EQ(model.phases(), (QStringList{"metadata", "dispatch", "combine"}));
  EXPECT_DOUBLE_EQ(model.data(model.index(2, 1), TrafficModel::kBytesRole).toDouble(), 2.0 * 22);
  EXPECT_TRUE(model.data(model.index(2, 1), Qt::ToolTipRole).toString().contains(QStringLiteral("44 bytes")));
  // Largest off-diagonal over every phase: (2, 1) of dispatch/combine = 2 * 22.
  EXPECT_DOUBLE_EQ(model.maxOffDiagonal(), 44.0);
  model.setPhase(QStringLiteral("nope"));
  EXPECT_EQ(model.matrix(), nullptr);
  EXPECT_EQ(model.rowCount(), 0);
  model.clear();
  EXPECT_TRUE(model.phases().isEmpty());
}

TEST(RankTrafficModel, SentAndReceivedLeaveTheDiagonalOut) {
  auto result = handResult();
  RankTrafficModel model;
  Tester tester(&model, kFatal);
  const auto& ep = result->strategy("ep")->traffic[1];
  const auto& hp = result->strategy("hp")->traffic[1];
  model.setMatrices(&ep, &hp);
  ASSERT_EQ(model.rowCount(), 3);
  // Rank 1 sends 11 + 13 (times 2 for EP) and receives 2 + 22.
  EXPECT_DOUBLE_EQ(model.data(model.index(1, RankTrafficModel::kEpSentColumn), RankTrafficModel::kBytesRole).toDouble(),
                   48);
  EXPECT_DOUBLE_EQ(
      model.data(model.index(1, RankTrafficModel::kHpReceivedColumn), RankTrafficModel::kBytesRole).toDouble(), 24);
  model.setMatrices(nullptr, &hp);
  EXPECT_FALSE(model.hasEp());
  EXPECT_FALSE(model.data(model.index(0, RankTrafficModel::kEpSentColumn), RankTrafficModel::kBytesRole).isValid());
}

TEST(TrafficSummaryModel, RatioIsHpOverEpAndPhasesFollowEpOrder) {
  TrafficSummaryModel model;
  Tester tester(&model, kFatal);
  model.setResult(handResult());
  ASSERT_EQ(model.rowCount(), 4);  // metadata, dispatch, combine, all phases
  EXPECT_EQ(model.index(0, 0).data().toString(), QStringLiteral("metadata"));
  const double ratio =
      model.index(1, TrafficSummaryModel::kRatioColumn).data(TrafficSummaryModel::kValueRole).toDouble();
  EXPECT_DOUBLE_EQ(ratio, 0.5);  // HP's matrices are EP's halved
  // HP has no metadata exchange: it moves nothing there, and the ratio is 0.
  EXPECT_DOUBLE_EQ(model.index(0, TrafficSummaryModel::kHpTotalColumn).data(TrafficSummaryModel::kValueRole).toDouble(),
                   0);
  EXPECT_FALSE(model.index(0, TrafficSummaryModel::kHpMaxColumn).data(TrafficSummaryModel::kValueRole).isValid());
  model.clear();
  EXPECT_EQ(model.rowCount(), 0);
}

TEST(MemoryModel, FlagsRanksOverCapacity) {
  MemoryModel model(QStringLiteral("ep"));
  Tester tester(&model, kFatal);
  model.setResult(handResult());
  ASSERT_EQ(model.rowCount(), 3);
  // Peaks are 10 + 10 + 10 + activations + 5 + 5 with activations 20, 40, 60: 60, 80, 100 (not over 100).
  EXPECT_FALSE(model.index(1, MemoryModel::kOverCapacityColumn).data(Qt::EditRole).toBool());
  EXPECT_DOUBLE_EQ(model.index(2, MemoryModel::kPeakColumn).data(MemoryModel::kBytesRole).toDouble(), 100);
  EXPECT_FALSE(model.index(2, MemoryModel::kOverCapacityColumn).data(Qt::EditRole).toBool());
  auto result = std::make_shared<EngineResult>(*handResult());
  const_cast<core::StrategyReport*>(result->strategy("ep"))->memory.ranks[2].workspace = 6;
  model.setResult(result);
  EXPECT_TRUE(model.index(2, MemoryModel::kOverCapacityColumn).data(Qt::EditRole).toBool());
  EXPECT_DOUBLE_EQ(model.part(2, 3), 60);
}

TEST(ReportSummaryModel, SaysNoTimingInsteadOfNumbers) {
  ReportSummaryModel model;
  Tester tester(&model, kFatal);
  model.setResult(handResult(/*timing=*/false));
  EXPECT_FALSE(model.hpSpeedup().has_value());
  EXPECT_EQ(model.index(0, ReportSummaryModel::kEpColumn).data().toString(), QStringLiteral("no timing"));
  model.setResult(handResult(/*timing=*/true));
  ASSERT_TRUE(model.hpSpeedup().has_value());
  EXPECT_DOUBLE_EQ(*model.hpSpeedup(), 600.0 / 300.0);
  // Compute time comes from the engine's metrics, not from the view.
  EXPECT_DOUBLE_EQ(model.index(3, ReportSummaryModel::kHpColumn).data(ReportSummaryModel::kValueRole).toDouble(), 56);
}

TEST(StageCostModel, OneRowPerStage) {
  StageCostModel model(QStringLiteral("hp"));
  Tester tester(&model, kFatal);
  model.setResult(handResult());
  ASSERT_EQ(model.rowCount(), 2);
  EXPECT_EQ(model.index(1, StageCostModel::kLaneColumn).data().toString(), QStringLiteral("comm"));
  EXPECT_DOUBLE_EQ(model.index(1, StageCostModel::kMaxColumn).data(StageCostModel::kValueRole).toDouble(), 20);
}

core::Timeline handTimeline() {
  core::Timeline t;
  t.source = "simulated";
  t.strategy = "hp";
  // Rank 1 listed first and spans out of order: the index sorts both.
  t.ranks.push_back({1,
                     {{"b", core::Phase::kForward, core::Lane::kCompute, 50, 60, 0, 0, 0, 0},
                      {"a", core::Phase::kForward, core::Lane::kCompute, 0, 40, 0, 0, 0, 0},
                      {"x", core::Phase::kForward, core::Lane::kComm, 40, 50, 100, 0, 0, 0}}});
  t.ranks.push_back({0, {{"a", core::Phase::kForward, core::Lane::kCompute, 0, 30, 0, 5, 0, 0}}});
  return t;
}

TEST(TimelineModel, TreeOfRanksAndSpansPassesTester) {
  TimelineModel model(QStringLiteral("hp"));
  Tester tester(&model, kFatal);
  QSignalSpy changed(&model, &TimelineModel::timelineChanged);
  model.setTimeline(handTimeline());
  EXPECT_EQ(changed.count(), 1);
  ASSERT_EQ(model.rowCount(), 2);
  EXPECT_EQ(model.rowCount(model.index(0, 0)), 3);
  const QModelIndex span = model.index(1, TimelineModel::kDurationColumn, model.index(0, 0));
  EXPECT_EQ(span.data(TimelineModel::kValueRole).toLongLong(), 40);
  EXPECT_TRUE(span.data(Qt::ToolTipRole).toString().contains(QStringLiteral("on rank 1")));
  model.clear();
  EXPECT_EQ(model.rowCount(), 0);
}

TEST(TimelineIndex, FindsOnlyTheSpansThatOverlapTheWindow) {
  const core::Timeline t = handTimeline();
  TimelineIndex index;
  index.build(t);
  ASSERT_EQ(index.rows().size(), 4u);  // 2 ranks x 2 lanes, by rank
  EXPECT_EQ(index.rows()[0].rank, 0);
  EXPECT_EQ(index.findRow(1, core::Lane::kComm), 3);
  EXPECT_EQ(index.findRow(2, core::Lane::kComm), -1);
  EXPECT_EQ(index.startNs(), 0);
  EXPECT_EQ(index.endNs(), 60);
  const GanttRow& row = index.rows()[2];  // rank 1 compute: a [0, 40), b [50, 60)
  auto names = [&](std::int64_t t0, std::int64_t t1) {
    const auto [a, b] = TimelineIndex::visible(t, row, t0, t1);
    std::string out;
    for (std::size_t i = a; i < b; ++i)
      out += t.ranks[row.rank_index].spans[static_cast<std::size_t>(row.order[i])].stage;
    return out;
  };
  EXPECT_EQ(names(0, 100), "ab");
  EXPECT_EQ(names(41, 49), "");
  EXPECT_EQ(names(45, 55), "b");
  EXPECT_EQ(names(10, 20), "a");
  EXPECT_EQ(names(61, 90), "");
}

TEST(SweepSpec, LinearAndGeometricRanges) {
  SweepSpec s;
  s.from = 0;
  s.to = 1;
  s.step = 0.25;
  EXPECT_EQ(s.values(), (std::vector<double>{0, 0.25, 0.5, 0.75, 1}));
  s = {SweepParameter::kRanks, 8, 64, 2, true};
  EXPECT_EQ(s.values(), (std::vector<double>{8, 16, 32, 64}));
  QString error;
  s = {SweepParameter::kTopK, 5, 1, 1, false};
  EXPECT_TRUE(s.values(&error).empty());
  EXPECT_TRUE(error.contains(QStringLiteral("'to'")));
}

TEST(SweepScenario, GranularityScalesExpertsTopKAndWidth) {
  const core::Scenario base = core::default_scenarios().front();
  auto s = sweepScenario(base, SweepParameter::kGranularity, 2);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->model.num_experts, base.model.num_experts * 2);
  EXPECT_EQ(s->model.top_k, base.model.top_k * 2);
  EXPECT_EQ(s->model.expert_hidden, base.model.expert_hidden / 2);
  auto bad = sweepScenario(base, SweepParameter::kGranularity, 3);
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message.find("model.expert_hidden"), std::string::npos);
  QString note;
  auto grown = sweepScenario(base, SweepParameter::kRanks, 32, &note);
  ASSERT_TRUE(grown.has_value());
  EXPECT_EQ(grown->cluster.num_gpus(), 32);
  EXPECT_FALSE(note.isEmpty());
}

TEST(SweepModel, KeepsPointsInSweepOrder) {
  SweepModel model;
  Tester tester(&model, kFatal);
  model.reset(SweepParameter::kTopK);
  for (int i : {2, 0, 1}) {
    SweepPoint p;
    p.index = i;
    p.value = 10 + i;
    p.has_timing = true;
    p.ep = {true, 200.0 * (i + 1), 0, 0, 0, 0};
    p.hp = {true, 100.0, 0, 0, 0, 0};
    model.addPoint(p);
  }
  ASSERT_EQ(model.rowCount(), 3);
  EXPECT_DOUBLE_EQ(model.index(0, SweepModel::kValueColumn).data(SweepModel::kValueRole).toDouble(), 10);
  EXPECT_DOUBLE_EQ(model.index(2, SweepModel::kSpeedupColumn).data(SweepModel::kValueRole).toDouble(), 6.0);
  EXPECT_EQ(model.headerData(0, Qt::Horizontal).toString(), QStringLiteral("k"));
}

TEST(Csv, QuotesCellsAndFlattensTrees) {
  TimelineModel model(QStringLiteral("hp"));
  core::Timeline t = handTimeline();
  t.ranks[0].spans[0].stage = "with,comma";
  model.setTimeline(t);
  const QString csv = modelToCsv(model);
  const QStringList lines = csv.split(QLatin1Char('\n'), Qt::SkipEmptyParts);
  ASSERT_EQ(lines.size(), 1 + 4);
  EXPECT_TRUE(lines[0].startsWith(QStringLiteral("group,Rank / stage,")));
  EXPECT_TRUE(lines[1].startsWith(QStringLiteral("1,\"with,comma\",forward,compute,50,60,")));
}

}  // namespace
}  // namespace hpsim::gui
