// hpsim-gui: the desktop workbench. Parses arguments, builds the window, opens what was asked.
#include <algorithm>
#include <cstdio>

#include <QApplication>
#include <QCommandLineParser>
#include <QDir>
#include <QSettings>
#include <QTimer>

#include "hpsim/gui/models/workbench.h"
#include "hpsim/gui/widgets/main_window.h"
#include "hpsim/gui/widgets/sweep_view.h"

int main(int argc, char** argv) {
  QApplication app(argc, argv);
  QApplication::setOrganizationName(QStringLiteral("hpsim"));
  QApplication::setApplicationName(QStringLiteral("hpsim-gui"));
  QApplication::setApplicationVersion(QStringLiteral("0.1.0"));

  QCommandLineParser parser;
  parser.setApplicationDescription(
      QStringLiteral("What-if workbench for Expert Parallel (EP) vs Head Parallel (HP) MoE layers: traffic, timelines, "
                     "memory and sweeps from the hpsim library."));
  parser.addHelpOption();
  parser.addVersionOption();
  parser.addPositionalArgument(QStringLiteral("scenario"), QStringLiteral("Scenario JSON file to open (optional)."),
                               QStringLiteral("[scenario.json]"));
  QCommandLineOption profile(QStringList{QStringLiteral("p"), QStringLiteral("profile")},
                             QStringLiteral("Profile for timing: a file, or a shipped name such as h200-datasheet. "
                                            "Default: the last one used, else the default shipped profile."),
                             QStringLiteral("file-or-name"));
  QCommandLineOption preset(QStringLiteral("preset"), QStringLiteral("Start from a scenario preset (hpsim presets)."),
                            QStringLiteral("name"));
  QCommandLineOption screenshots(QStringLiteral("screenshots"),
                                 QStringLiteral("Render every main view to <dir>/gui-<view>.png and exit."),
                                 QStringLiteral("dir"));
  QCommandLineOption tab(QStringLiteral("tab"),
                         QStringLiteral("View to show first: overview, traffic, timeline, memory, sweep."),
                         QStringLiteral("view"));
  parser.addOptions({profile, preset, screenshots, tab});
  parser.process(app);

  hpsim::gui::Workbench workbench;
  hpsim::gui::MainWindow window(&workbench);

  const QString profileArg =
      parser.isSet(profile) ? parser.value(profile) : QSettings().value("engine/profile").toString();
  if (!window.loadProfile(profileArg, /*quiet=*/true) && !profileArg.isEmpty()) {
    window.loadProfile(QString(), /*quiet=*/true);  // a remembered profile that went away: fall back to the default
    if (parser.isSet(profile)) {
      std::fprintf(stderr, "error: could not load profile '%s'\n", qPrintable(profileArg));
      return 2;
    }
  }
  if (parser.isSet(preset)) {
    const auto status = workbench.document()->applyScenarioPreset(parser.value(preset));
    if (!status) {
      std::fprintf(stderr, "error: %s\n", status.error().message.c_str());
      return 2;
    }
    workbench.document()->undoStack()->clear();
  }
  const QStringList args = parser.positionalArguments();
  if (args.size() > 1) {
    std::fprintf(stderr, "error: one scenario file at most\n");
    return 2;
  }
  if (!args.isEmpty() && !window.openFile(args.front(), /*quiet=*/parser.isSet(screenshots))) {
    if (parser.isSet(screenshots)) {
      std::fprintf(stderr, "error: could not open %s\n", qPrintable(args.front()));
      return 1;
    }
  }
  if (parser.isSet(tab)) {
    const QStringList names{QStringLiteral("overview"), QStringLiteral("traffic"), QStringLiteral("timeline"),
                            QStringLiteral("memory"), QStringLiteral("sweep")};
    window.tabs()->setCurrentIndex(std::max(0, static_cast<int>(names.indexOf(parser.value(tab)))));
  }
  workbench.analysis()->updateNow();

  if (parser.isSet(screenshots)) {
    const QString dir = parser.value(screenshots);
    QDir().mkpath(dir);
    window.resize(1480, 920);
    window.show();
    int code = 0;
    bool rendered = false;
    // Render once the first evaluation has arrived (or failed).
    auto render = [&] {
      if (rendered) return;
      rendered = true;
      const auto images = window.renderViews();
      for (auto it = images.begin(); it != images.end(); ++it) {
        const QString path = dir + QStringLiteral("/gui-") + it.key() + QStringLiteral(".png");
        if (!it.value().save(path)) {
          std::fprintf(stderr, "error: could not write %s\n", qPrintable(path));
          code = 1;
        } else {
          std::printf("%s\n", qPrintable(path));
        }
      }
      QApplication::exit(code);
    };
    // The Sweep view is shown with its default sweep (k from 1 to 16) run to completion.
    bool swept = false;
    auto sweepThenRender = [&] {
      if (swept) return;
      swept = true;
      QObject::connect(workbench.sweepRunner(), &hpsim::gui::SweepRunner::finished, &app,
                       [&] { QTimer::singleShot(200, &app, render); });
      window.sweepView()->run();
    };
    QObject::connect(workbench.analysis(), &hpsim::gui::AnalysisController::stateChanged, &app,
                     [&](hpsim::gui::AnalysisController::State s) {
                       if (s != hpsim::gui::AnalysisController::State::kRunning) sweepThenRender();
                     });
    if (workbench.analysis()->state() != hpsim::gui::AnalysisController::State::kRunning) sweepThenRender();
    return QApplication::exec();
  }
  window.show();
  return QApplication::exec();
}
