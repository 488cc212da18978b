// Speed of the views (docs/gui.md records the numbers):
//  1. open: a 1,024-rank scenario evaluated by the engine, its result in the models, and the
//     Traffic and Timeline views rendered once (wall time, engine included);
//  2. frame: zoom and pan over a 100,000-span timeline, each step rendering the Gantt widget into
//     an image; median and worst frame.
// Run: QT_QPA_PLATFORM=offscreen build/<dir>/tests/gui/hpsim_gui_bench [profile.json]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <QApplication>
#include <QElapsedTimer>
#include <QImage>
#include <QPainter>
#include <QSignalSpy>
#include <QTabWidget>

#include "hpsim/core/presets.h"
#include "hpsim/gui/models/workbench.h"
#include "hpsim/gui/widgets/gantt_widget.h"
#include "hpsim/gui/widgets/main_window.h"
#include "hpsim/gui/widgets/views.h"

namespace {

using hpsim::gui::AnalysisController;

double ms(const QElapsedTimer& t) { return static_cast<double>(t.nsecsElapsed()) / 1e6; }

void render(QWidget* w) {
  QImage image(w->size(), QImage::Format_ARGB32_Premultiplied);
  QPainter p(&image);
  w->render(&p);
}

// 1,024 ranks x 2 lanes, 100,352 spans of 1-3 us, back to back (an exact count is not the point).
hpsim::core::Timeline syntheticTimeline() {
  hpsim::core::Timeline t;
  t.source = "synthetic";
  t.strategy = "hp";
  const char* stages[] = {"w_in", "router", "group", "expert_mlp", "weighted_sum", "w_out", "dispatch"};
  for (int r = 0; r < 1024; ++r) {
    hpsim::core::RankTimeline rt;
    rt.rank = r;
    std::int64_t now[2] = {0, 0};
    for (int i = 0; i < 98; ++i) {
      const auto lane = i % 2 == 0 ? hpsim::core::Lane::kCompute : hpsim::core::Lane::kComm;
      const std::int64_t d = 1000 + ((r * 7 + i * 13) % 2000);
      auto& at = now[static_cast<int>(lane)];
      rt.spans.push_back({stages[i % 7], hpsim::core::Phase::kForward, lane, at, at + d, 1e6, 1e9, 0, 0});
      at += d + 50;
    }
    t.ranks.push_back(std::move(rt));
  }
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  QApplication app(argc, argv);
  hpsim::gui::Workbench workbench;
  hpsim::gui::MainWindow window(&workbench);
  window.resize(1480, 920);
  window.show();
  const QString profile = argc > 1 ? QString::fromLocal8Bit(argv[1]) : QString();
  if (!window.loadProfile(profile, true)) std::printf("note: no profile, timing off\n");
  workbench.analysis()->setDebounceMs(0);

  // 1. Open a 1,024-rank scenario and show its heatmap and timeline: first in a fresh process
  //    (cold: the engine's routing tables are computed), then again (warm).
  for (const char* pass : {"cold", "warm"}) {
    auto scenario = hpsim::core::scenario_preset("ep-zipf1-h200-128x8").value();
    if (std::string(pass) == "warm") scenario.name += " (again)";
    QSignalSpy ready(workbench.analysis(), &AnalysisController::resultReady);
    QElapsedTimer t;
    t.start();
    workbench.document()->replaceScenario(scenario, QStringLiteral("bench"));
    workbench.analysis()->updateNow();
    if (!ready.wait(120000)) {
      std::printf("open: no result (%s)\n", qPrintable(workbench.analysis()->message()));
      return 1;
    }
    const double engine = ms(t);
    window.tabs()->setCurrentWidget(window.trafficView());
    render(window.trafficView());
    const double traffic = ms(t);
    window.tabs()->setCurrentWidget(window.timelineView());
    render(window.timelineView());
    const double total = ms(t);
    std::printf(
        "open 1024-rank scenario (%s): %.1f ms = engine and models %.1f + traffic view %.1f + timeline view "
        "%.1f; EP timeline %zu spans\n",
        pass, total, engine, traffic - engine, total - traffic,
        workbench.timeline(QStringLiteral("ep"))->ganttIndex().numSpans());
  }

  // 2. Zoom and pan over 100,000 spans.
  {
    hpsim::gui::TimelineModel model(QStringLiteral("hp"));
    model.setTimeline(syntheticTimeline());
    hpsim::gui::GanttWidget gantt(&model);
    gantt.resize(1400, 800);
    gantt.show();
    QApplication::processEvents();
    std::vector<double> frames;
    auto frame = [&] {
      QElapsedTimer t;
      t.start();
      render(&gantt);
      frames.push_back(ms(t));
    };
    gantt.zoomToFit();
    frame();  // everything visible
    const double mid = (gantt.viewStart() + gantt.viewEnd()) / 2;
    for (int i = 0; i < 30; ++i) {  // zoom in step by step
      gantt.zoom(1.25, mid);
      frame();
    }
    for (int i = 0; i < 30; ++i) {  // pan at the deepest zoom
      gantt.pan((gantt.viewEnd() - gantt.viewStart()) * 0.2);
      frame();
    }
    for (int i = 0; i < 30; ++i) {  // zoom back out
      gantt.zoom(1 / 1.25, mid);
      frame();
    }
    std::vector<double> sorted = frames;
    std::sort(sorted.begin(), sorted.end());
    const auto worst = static_cast<std::size_t>(std::max_element(frames.begin(), frames.end()) - frames.begin());
    std::printf(
        "gantt over %zu spans, %zu frames at 1400x800: median %.2f ms, 95th percentile %.2f ms, max %.2f ms "
        "(frame %zu; frame 0 shows every span); frame 0 %.2f ms\n",
        model.ganttIndex().numSpans(), frames.size(), sorted[sorted.size() / 2], sorted[sorted.size() * 95 / 100],
        sorted.back(), worst, frames.front());
  }
  return 0;
}
