// Interaction tests: the real window, driven as a user would (typing, clicking), offscreen.
#include <gtest/gtest.h>

#include <QComboBox>
#include <QDir>
#include <QFileInfo>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSignalSpy>
#include <QTabWidget>
#include <QTest>

#include "hpsim/core/json.h"
#include "hpsim/core/validate.h"
#include "hpsim/gui/models/workbench.h"
#include "hpsim/gui/widgets/main_window.h"
#include "hpsim/gui/widgets/scenario_editor.h"
#include "hpsim/gui/widgets/sweep_view.h"
#include "qt_env.h"

namespace hpsim::gui {
namespace {

class Interaction : public ::testing::Test {
 protected:
  void SetUp() override {
    workbench = std::make_unique<Workbench>();
    workbench->analysis()->setDebounceMs(0);
    window = std::make_unique<MainWindow>(workbench.get());
    window->resize(1400, 900);
    window->show();
  }

  // Types into a field's editor and leaves it, as a user does.
  void type(const QString& path, const QString& text) {
    auto* line = qobject_cast<QLineEdit*>(window->editor()->editorFor(path));
    ASSERT_NE(line, nullptr) << path.toStdString();
    line->setFocus();
    line->selectAll();
    QTest::keyClicks(line, text);
    QTest::keyClick(line, Qt::Key_Return);
  }

  // Waits for the evaluation of the current scenario.
  bool waitForResult() {
    auto* a = workbench->analysis();
    QSignalSpy ready(a, &AnalysisController::resultReady);
    a->updateNow();
    return ready.wait(20000) || a->state() == AnalysisController::State::kReady;
  }

  std::unique_ptr<Workbench> workbench;
  std::unique_ptr<MainWindow> window;
};

TEST_F(Interaction, BadValueShowsCoreMessageUnderTheField) {
  type(QStringLiteral("model.top_k"), QStringLiteral("1000"));
  core::Scenario expected = workbench->document()->scenario();
  ASSERT_EQ(expected.model.top_k, 1000);
  const auto errors = core::check_scenario(expected);
  ASSERT_EQ(errors.size(), 1u);
  QLabel* message = window->editor()->messageFor(QStringLiteral("model.top_k"));
  ASSERT_NE(message, nullptr);
  EXPECT_TRUE(message->isVisible());
  EXPECT_EQ(message->text(), QString::fromStdString(errors.front().to_string()));
  // Nothing is evaluated while the scenario breaks a rule.
  workbench->analysis()->updateNow();
  EXPECT_EQ(workbench->analysis()->state(), AnalysisController::State::kBlocked);
  EXPECT_EQ(workbench->trafficSummary()->rowCount(), 0);
}

TEST_F(Interaction, TextThatIsNotANumberIsRejectedWithReaderWording) {
  const auto before = workbench->document()->scenario().workload.tokens_per_rank;
  type(QStringLiteral("workload.tokens_per_rank"), QStringLiteral("lots"));
  EXPECT_EQ(workbench->document()->scenario().workload.tokens_per_rank, before);
  EXPECT_EQ(window->editor()->messageFor(QStringLiteral("workload.tokens_per_rank"))->text(),
            QStringLiteral("workload.tokens_per_rank: expected an integer, got \"lots\""));
}

TEST_F(Interaction, UndoRestoresTheFieldAndClearsTheMessage) {
  const auto before = workbench->document()->scenario().model.top_k;
  type(QStringLiteral("model.top_k"), QStringLiteral("1000"));
  ASSERT_TRUE(window->editor()->messageFor(QStringLiteral("model.top_k"))->isVisible());
  window->setFocus();
  workbench->document()->undoStack()->undo();
  EXPECT_EQ(workbench->document()->scenario().model.top_k, before);
  EXPECT_EQ(qobject_cast<QLineEdit*>(window->editor()->editorFor(QStringLiteral("model.top_k")))->text(),
            QString::number(before));
  EXPECT_FALSE(window->editor()->messageFor(QStringLiteral("model.top_k"))->isVisible());
}

TEST_F(Interaction, ChangingTopKChangesEpTrafficButNotHp) {
  if (!Engine::capabilities().has_traffic) GTEST_SKIP() << "no hpsim::model in this build";
  ASSERT_TRUE(waitForResult());
  auto* summary = workbench->trafficSummary();
  auto total = [&](int column) {
    for (int r = 0; r < summary->rowCount(); ++r) {
      if (summary->index(r, 0).data().toString() == QLatin1String("dispatch")) {
        return summary->index(r, column).data(TrafficSummaryModel::kValueRole).toDouble();
      }
    }
    return -1.0;
  };
  const double ep4 = total(TrafficSummaryModel::kEpTotalColumn);
  const double hp4 = total(TrafficSummaryModel::kHpTotalColumn);
  ASSERT_GT(ep4, 0);
  ASSERT_GT(hp4, 0);
  type(QStringLiteral("model.top_k"), QStringLiteral("8"));
  ASSERT_TRUE(waitForResult());
  const double ep8 = total(TrafficSummaryModel::kEpTotalColumn);
  const double hp8 = total(TrafficSummaryModel::kHpTotalColumn);
  EXPECT_GT(ep8, ep4 * 1.5);   // EP sends k copies of each token
  EXPECT_DOUBLE_EQ(hp8, hp4);  // HP sends each sub-token once, whatever k
  // The heatmap shows the same matrix: the view reads the model, no copy of its own.
  EXPECT_DOUBLE_EQ(workbench->traffic(QStringLiteral("ep"))->matrix()->total_sent(), ep8);
}

TEST_F(Interaction, PresetPickerReplacesTheScenarioUndoably) {
  auto* combo = window->editor()->findChild<QComboBox*>(QStringLiteral("clusterPreset"));
  ASSERT_NE(combo, nullptr);
  const int index = combo->findData(QStringLiteral("h100x8"));
  ASSERT_GE(index, 0);
  combo->setCurrentIndex(index);
  emit combo->activated(index);
  EXPECT_EQ(workbench->document()->scenario().cluster.name, "h100x8");
  EXPECT_EQ(qobject_cast<QLineEdit*>(window->editor()->editorFor(QStringLiteral("cluster.gpu.memory_gb")))->text(),
            QStringLiteral("80"));
  workbench->document()->undoStack()->undo();
  EXPECT_EQ(workbench->document()->scenario().cluster.name, "h200x8");
}

TEST_F(Interaction, SweepRunsToCompletion) {
  if (!Engine::capabilities().has_traffic) GTEST_SKIP() << "no hpsim::model in this build";
  auto* view = window->sweepView();
  view->setSpec({SweepParameter::kTopK, 1, 4, 1, false});
  QSignalSpy finished(workbench->sweepRunner(), &SweepRunner::finished);
  QSignalSpy progress(workbench->sweepRunner(), &SweepRunner::progress);
  QTest::mouseClick(view->findChild<QPushButton*>(QStringLiteral("run")), Qt::LeftButton);
  ASSERT_TRUE(finished.wait(60000));
  EXPECT_FALSE(finished.front().front().toBool());  // not cancelled
  EXPECT_EQ(workbench->sweepModel()->rowCount(), 4);
  EXPECT_FALSE(progress.isEmpty());
  const auto& pts = workbench->sweepModel()->points();
  ASSERT_EQ(pts.size(), 4u);
  EXPECT_GT(pts.back().ep.peak_bytes, 0);
  if (Engine::capabilities().has_estimate) {
    // Dispatch bytes of EP's busiest sender grow with k; HP's do not move.
    EXPECT_GT(pts.back().ep.dispatch_max_bytes, pts.front().ep.dispatch_max_bytes * 3);
    EXPECT_DOUBLE_EQ(pts.back().hp.dispatch_max_bytes, pts.front().hp.dispatch_max_bytes);
  }
  EXPECT_TRUE(view->statusText().startsWith(QStringLiteral("done")));
}

TEST_F(Interaction, SweepCanBeCancelled) {
  if (!Engine::capabilities().has_traffic) GTEST_SKIP() << "no hpsim::model in this build";
  auto* view = window->sweepView();
  view->setSpec({SweepParameter::kTokens, 1000, 2000 * 1000, 1000, false});  // 2,000 points
  QSignalSpy finished(workbench->sweepRunner(), &SweepRunner::finished);
  QTest::mouseClick(view->findChild<QPushButton*>(QStringLiteral("run")), Qt::LeftButton);
  ASSERT_TRUE(workbench->sweepRunner()->isRunning());
  QTest::mouseClick(view->findChild<QPushButton*>(QStringLiteral("cancel")), Qt::LeftButton);
  ASSERT_TRUE(finished.wait(60000));
  EXPECT_TRUE(finished.front().front().toBool());  // cancelled
  EXPECT_LT(workbench->sweepModel()->rowCount(), 2000);
  EXPECT_TRUE(view->statusText().startsWith(QStringLiteral("cancelled")));
}

TEST_F(Interaction, MeasuredTimelineIsOverlaidOnItsStrategy) {
  core::Timeline measured;
  measured.source = "executed";
  measured.strategy = "hp";
  measured.ranks.push_back({0, {{"dispatch", core::Phase::kForward, core::Lane::kComm, 0, 5000, 1, 0, 0, 0}}});
  const QString path = QDir::temp().filePath(QStringLiteral("hpsim-gui-measured.json"));
  ASSERT_TRUE(static_cast<bool>(core::write_text_file(path.toStdString(), core::to_json(measured))));
  QSignalSpy changed(workbench.get(), &Workbench::measuredTimelineChanged);
  EXPECT_TRUE(workbench->loadMeasuredTimeline(path).isEmpty());
  EXPECT_EQ(changed.count(), 1);
  ASSERT_NE(workbench->measuredTimeline(QStringLiteral("hp"))->timeline(), nullptr);
  EXPECT_EQ(workbench->measuredTimeline(QStringLiteral("ep"))->timeline(), nullptr);
  measured.strategy = "xp";
  ASSERT_TRUE(static_cast<bool>(core::write_text_file(path.toStdString(), core::to_json(measured))));
  const QString error = workbench->loadMeasuredTimeline(path);
  EXPECT_TRUE(error.contains(QStringLiteral("\"xp\""))) << error.toStdString();
  // A timeline that names no strategy: the caller learns it, and can say which one.
  measured.strategy.clear();
  ASSERT_TRUE(static_cast<bool>(core::write_text_file(path.toStdString(), core::to_json(measured))));
  bool unnamed = false;
  EXPECT_FALSE(workbench->loadMeasuredTimeline(path, QString(), &unnamed).isEmpty());
  EXPECT_TRUE(unnamed);
  EXPECT_TRUE(workbench->loadMeasuredTimeline(path, QStringLiteral("ep")).isEmpty());
  EXPECT_NE(workbench->measuredTimeline(QStringLiteral("ep"))->timeline(), nullptr);
  workbench->clearMeasuredTimelines();
  EXPECT_EQ(workbench->measuredTimeline(QStringLiteral("hp"))->timeline(), nullptr);
}

TEST_F(Interaction, ShortcutsSwitchViewsAndTheTabIsRememberedOnClose) {
  window->activateWindow();
  ASSERT_TRUE(QTest::qWaitForWindowActive(window.get()));
  QTest::keyClick(window.get(), Qt::Key_4, Qt::ControlModifier);
  EXPECT_EQ(window->tabs()->currentWidget(), window->memoryView());
  QTest::keyClick(window.get(), Qt::Key_3, Qt::ControlModifier);
  EXPECT_EQ(window->tabs()->currentWidget(), window->timelineView());
  EXPECT_TRUE(window->close());
  MainWindow again(workbench.get());
  EXPECT_EQ(again.tabs()->currentWidget(), again.timelineView());
  again.tabs()->setCurrentIndex(0);
  EXPECT_TRUE(again.close());  // leave the next tests on the Overview
}

TEST_F(Interaction, OpenRemembersTheFileInRecentFiles) {
  const QString path = QDir::temp().filePath(QStringLiteral("hpsim-gui-open-test.json"));
  ASSERT_TRUE(static_cast<bool>(workbench->document()->save(path)));
  EXPECT_TRUE(window->openFile(path, /*quiet=*/true));
  EXPECT_EQ(window->recentFiles().value(0), QFileInfo(path).absoluteFilePath());
  EXPECT_FALSE(window->openFile(QStringLiteral("/nonexistent/x.json"), /*quiet=*/true));
}

}  // namespace
}  // namespace hpsim::gui
