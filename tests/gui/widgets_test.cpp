// Widgets render and forward input; these check the input side and the "draw only what is
// visible" claim of the Gantt chart.
#include <gtest/gtest.h>

#include <QApplication>
#include <QDir>
#include <QFile>
#include <QImage>
#include <QPainter>
#include <QSignalSpy>
#include <QTest>
#include <QWheelEvent>

#include "hpsim/gui/models/memory_model.h"
#include "hpsim/gui/models/timeline_model.h"
#include "hpsim/gui/models/traffic_models.h"
#include "hpsim/gui/widgets/gantt_widget.h"
#include "hpsim/gui/widgets/heatmap_widget.h"
#include "hpsim/gui/widgets/memory_chart_widget.h"
#include "hpsim/gui/widgets/views.h"
#include "qt_env.h"

namespace hpsim::gui {
namespace {

void paint(QWidget& w) {
  QImage image(w.size(), QImage::Format_ARGB32_Premultiplied);
  QPainter p(&image);
  w.render(&p);
}

core::Timeline longTimeline(int ranks, int spansPerLane) {
  core::Timeline t;
  t.source = "simulated";
  t.strategy = "ep";
  for (int r = 0; r < ranks; ++r) {
    core::RankTimeline rt;
    rt.rank = r;
    for (int i = 0; i < spansPerLane; ++i) {
      for (auto lane : {core::Lane::kCompute, core::Lane::kComm}) {
        static const char* const kStages[] = {"s0", "s1", "s2", "s3", "s4"};
        rt.spans.push_back({kStages[i % 5], core::Phase::kForward, lane, i * 1000LL, i * 1000LL + 900, 0, 0, 0, 0});
      }
    }
    t.ranks.push_back(std::move(rt));
  }
  return t;
}

TEST(HeatmapWidget, HoverReportsTheCellUnderTheMouseWithExactBytes) {
  auto result = std::make_shared<EngineResult>();
  core::StrategyReport s;
  s.strategy = "hp";
  core::TrafficMatrix m("dispatch", 4);
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 4; ++j) m.at(i, j) = 100.0 * i + j;
  }
  s.traffic.push_back(m);
  result->report.strategies.push_back(s);
  TrafficModel model(QStringLiteral("hp"));
  model.setPhase(QStringLiteral("dispatch"));
  model.setResult(result);
  HeatmapWidget widget(&model);
  widget.resize(400, 420);
  widget.setScaleMax(303);
  widget.show();
  paint(widget);
  // Find the centre of cell (src 2, dst 3) by scanning: the widget's own mapping is the oracle
  // for positions, the matrix for bytes.
  QPoint target(-1, -1);
  for (int y = 0; y < widget.height() && target.x() < 0; ++y) {
    for (int x = 0; x < widget.width(); ++x) {
      if (widget.cellAt({x, y}) == QPoint(3, 2)) {
        target = {x + 5, y + 5};
        break;
      }
    }
  }
  ASSERT_GE(target.x(), 0);
  QSignalSpy hovered(&widget, &HeatmapWidget::cellHovered);
  QTest::mouseMove(&widget, target);
  ASSERT_GE(hovered.count(), 1);
  EXPECT_EQ(hovered.last().at(0).toInt(), 2);
  EXPECT_EQ(hovered.last().at(1).toInt(), 3);
  EXPECT_DOUBLE_EQ(hovered.last().at(2).toDouble(), 203.0);
  EXPECT_EQ(widget.cellAt({1, 1}), QPoint(-1, -1));  // the title and margins are no cell
}

TEST(GanttWidget, DrawsOnlyTheSpansInTheWindow) {
  TimelineModel model(QStringLiteral("ep"));
  model.setTimeline(longTimeline(4, 1000));  // 8,000 spans of 0.9 us every 1 us
  GanttWidget gantt(&model);
  gantt.resize(600, 300);  // fewer pixel columns than spans per row, so the bound below binds
  gantt.show();
  gantt.zoomToFit();
  paint(gantt);
  // Zoomed out, a pixel column holds several spans: at most one per column and row is drawn.
  const int rows = 8;
  EXPECT_LE(gantt.lastDrawnSpans(), rows * gantt.width());
  EXPECT_LT(gantt.lastDrawnSpans(), 8000);
  // A 10 us window holds about 11 spans per row (those overlapping its ends included).
  gantt.setTimeRange(500000, 510000);
  paint(gantt);
  EXPECT_GE(gantt.lastDrawnSpans(), rows * 10);
  EXPECT_LE(gantt.lastDrawnSpans(), rows * 12);
}

TEST(GanttWidget, WheelZoomsAtTheCursorAndDragPans) {
  TimelineModel model(QStringLiteral("ep"));
  model.setTimeline(longTimeline(2, 100));
  GanttWidget gantt(&model);
  gantt.resize(800, 200);
  gantt.show();
  gantt.zoomToFit();
  const double width = gantt.viewEnd() - gantt.viewStart();
  QSignalSpy changed(&gantt, &GanttWidget::timeRangeChanged);
  // Wheel up over the middle of the plot: narrower window, the time under the cursor stays put.
  const QPointF at(500, 100);
  auto timeAt = [&](double x) {
    const double plotLeft = 86;  // the row labels' gutter
    const double plotWidth = gantt.width() - plotLeft - 4;
    return gantt.viewStart() + (x - plotLeft) / plotWidth * (gantt.viewEnd() - gantt.viewStart());
  };
  const double before = timeAt(at.x());
  QWheelEvent wheel(at, gantt.mapToGlobal(at), QPoint(), QPoint(0, 120), Qt::NoButton, Qt::NoModifier,
                    Qt::NoScrollPhase, false);
  QApplication::sendEvent(&gantt, &wheel);
  EXPECT_LT(gantt.viewEnd() - gantt.viewStart(), width * 0.9);
  EXPECT_NEAR(timeAt(at.x()), before, width * 1e-6);
  gantt.zoom(2.0, gantt.viewStart());  // anchored at the left edge
  const double zoomed = gantt.viewEnd() - gantt.viewStart();
  EXPECT_LT(zoomed, width / 2);
  const double start = gantt.viewStart();
  QTest::mousePress(&gantt, Qt::LeftButton, {}, QPoint(400, 100));
  QTest::mouseMove(&gantt, QPoint(300, 100));
  QTest::mouseRelease(&gantt, Qt::LeftButton, {}, QPoint(300, 100));
  EXPECT_GT(gantt.viewStart(), start);  // dragging left moves the window later in time
  EXPECT_GE(changed.count(), 2);
  QTest::keyClick(&gantt, Qt::Key_0);
  EXPECT_NEAR(gantt.viewEnd() - gantt.viewStart(), width, width * 1e-9);
}

TEST(MemoryChartWidget, NaturalScaleReachesTheCapacityOrTheLargestPeak) {
  auto result = std::make_shared<EngineResult>();
  core::StrategyReport s;
  s.strategy = "ep";
  s.memory.capacity_bytes = 50;
  s.memory.ranks = {{0, 10, 10, 10, 10, 10, 10}, {1, 1, 1, 1, 1, 1, 1}};
  result->report.strategies.push_back(s);
  MemoryModel model(QStringLiteral("ep"));
  model.setResult(result);
  MemoryChartWidget chart(&model);
  EXPECT_DOUBLE_EQ(chart.naturalMax(), 60);  // rank 0's peak, over the capacity
  EXPECT_EQ(model.report().num_over_capacity(), 1);
}

TEST(Export, ViewsWriteSvgAndPng) {
  TimelineModel model(QStringLiteral("ep"));
  model.setTimeline(longTimeline(2, 20));
  GanttWidget gantt(&model);
  gantt.resize(600, 200);
  gantt.show();
  const QString svg = QDir::temp().filePath(QStringLiteral("hpsim-gui-export.svg"));
  const QString png = QDir::temp().filePath(QStringLiteral("hpsim-gui-export.png"));
  ASSERT_TRUE(saveWidgetSvg(&gantt, svg, QStringLiteral("timeline")));
  ASSERT_TRUE(saveWidgetPng(&gantt, png));
  QFile file(svg);
  ASSERT_TRUE(file.open(QIODevice::ReadOnly));
  const QByteArray text = file.readAll();
  EXPECT_TRUE(text.contains("<svg"));
  EXPECT_TRUE(text.contains("<title>timeline</title>"));
  EXPECT_GT(text.count("<path") + text.count("<rect") + text.count("<polyline"), 20);  // the spans
  EXPECT_EQ(QImage(png).size(), gantt.size() * gantt.devicePixelRatio());
}

}  // namespace
}  // namespace hpsim::gui
