// Screenshots of each main view for the default scenario, rendered offscreen and checked not
// blank: the expected size and many distinct colours (a blank or failed view has a handful).
// With HPSIM_GUI_SCREENSHOT_DIR set, the images are also saved there (docs/images/ for the docs).
#include <gtest/gtest.h>

#include <set>

#include <QDir>
#include <QSignalSpy>

#include "hpsim/gui/models/workbench.h"
#include "hpsim/gui/widgets/main_window.h"
#include "hpsim/gui/widgets/sweep_view.h"
#include "qt_env.h"

namespace hpsim::gui {
namespace {

std::size_t distinctColours(const QImage& image) {
  std::set<QRgb> colours;
  const QImage rgb = image.convertToFormat(QImage::Format_RGB32);
  for (int y = 0; y < rgb.height(); y += 2) {
    const auto* line = reinterpret_cast<const QRgb*>(rgb.constScanLine(y));
    for (int x = 0; x < rgb.width(); x += 2) colours.insert(line[x]);
  }
  return colours.size();
}

TEST(Screenshots, EveryMainViewRendersNotBlank) {
  Workbench workbench;
  MainWindow window(&workbench);
  const bool timed = window.loadProfile(QString::fromStdString(testing::shippedProfilePath()), /*quiet=*/true);
  const QSize size(1480, 920);
  window.resize(size);
  window.show();
  if (Engine::capabilities().has_traffic) {
    QSignalSpy ready(workbench.analysis(), &AnalysisController::resultReady);
    workbench.analysis()->updateNow();
    ASSERT_TRUE(ready.wait(30000));
    QSignalSpy swept(workbench.sweepRunner(), &SweepRunner::finished);
    window.sweepView()->setSpec({SweepParameter::kTopK, 1, 16, 1, false});
    window.sweepView()->run();
    ASSERT_TRUE(swept.wait(60000));
  }
  const auto images = window.renderViews();
  ASSERT_EQ(images.size(), 5);
  const QString dir = qEnvironmentVariable("HPSIM_GUI_SCREENSHOT_DIR");
  for (auto it = images.begin(); it != images.end(); ++it) {
    SCOPED_TRACE(it.key().toStdString());
    const QImage& image = it.value();
    EXPECT_EQ(image.size(), size * window.devicePixelRatio());
    // A window of text on grey has tens of colours (anti-aliasing); the heatmaps, bars, Gantt
    // spans and charts add hundreds more.
    EXPECT_GT(distinctColours(image), 64u);
    if (!dir.isEmpty()) {
      QDir().mkpath(dir);
      EXPECT_TRUE(image.save(dir + QStringLiteral("/gui-") + it.key() + QStringLiteral(".png")));
    }
  }
  if (Engine::capabilities().has_estimate) {
    EXPECT_TRUE(timed);
    EXPECT_FALSE(workbench.timeline(QStringLiteral("hp"))->ganttIndex().rows().empty());
  }
  // A rule broken in the editor: the message sits under its field, the views say why they are empty.
  {
    ASSERT_FALSE(workbench.scenarioModel()->setData(
        workbench.scenarioModel()->indexOfPath(QStringLiteral("workload.tokens_per_rank")), QStringLiteral("lots")));
    ASSERT_TRUE(workbench.scenarioModel()->setData(
        workbench.scenarioModel()->indexOfPath(QStringLiteral("model.top_k")), QStringLiteral("1000")));
    workbench.analysis()->updateNow();
    ASSERT_EQ(workbench.analysis()->state(), AnalysisController::State::kBlocked);
    QCoreApplication::processEvents();
    const QImage image = window.grab().toImage();
    EXPECT_GT(distinctColours(image), 64u);
    if (!dir.isEmpty()) {
      EXPECT_TRUE(image.save(dir + QStringLiteral("/gui-validation.png")));
    }
  }
}

}  // namespace
}  // namespace hpsim::gui
