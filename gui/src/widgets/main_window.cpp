#include "hpsim/gui/widgets/main_window.h"

#include <QAction>
#include <QApplication>
#include <QCloseEvent>
#include <QDockWidget>
#include <QFileDialog>
#include <QFileInfo>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QPushButton>
#include <QSettings>
#include <QStatusBar>
#include <QTabWidget>
#include <QUndoStack>

#include "hpsim/core/json.h"
#include "hpsim/gui/models/csv.h"
#include "hpsim/gui/models/workbench.h"
#include "hpsim/gui/widgets/scenario_editor.h"
#include "hpsim/gui/widgets/sweep_view.h"
#include "hpsim/gui/widgets/views.h"

namespace hpsim::gui {
namespace {

constexpr int kMaxRecent = 8;
const char* const kRecentKey = "files/recent";
const char* const kDirKey = "files/lastDir";
const char* const kProfileKey = "engine/profile";

QString lastDir() { return QSettings().value(kDirKey).toString(); }
void rememberDir(const QString& file) { QSettings().setValue(kDirKey, QFileInfo(file).absolutePath()); }

bool writeText(QWidget* parent, const QString& path, const QString& text) {
  const core::Status status = core::write_text_file(path.toStdString(), text.toStdString());
  if (!status) QMessageBox::warning(parent, QObject::tr("Export"), QString::fromStdString(status.error().message));
  return static_cast<bool>(status);
}

}  // namespace

MainWindow::MainWindow(Workbench* workbench, QWidget* parent) : QMainWindow(parent), m_workbench(workbench) {
  setObjectName(QStringLiteral("MainWindow"));
  m_editor = new ScenarioEditor(workbench->scenarioModel(), workbench->document(), this);
  m_editor->setMinimumWidth(360);  // room for a field and its message side by side
  auto* dock = new QDockWidget(tr("Scenario"), this);
  dock->setObjectName(QStringLiteral("ScenarioDock"));
  dock->setWidget(m_editor);
  dock->setFeatures(QDockWidget::DockWidgetMovable | QDockWidget::DockWidgetFloatable);
  addDockWidget(Qt::LeftDockWidgetArea, dock);

  m_tabs = new QTabWidget(this);
  m_tabs->setDocumentMode(true);
  m_overview = new OverviewView(workbench, m_tabs);
  m_traffic = new TrafficView(workbench, m_tabs);
  m_timeline = new TimelineView(workbench, m_tabs);
  m_memory = new MemoryView(workbench, m_tabs);
  m_sweep = new SweepView(workbench, m_tabs);
  m_tabs->addTab(m_overview, tr("&Overview"));
  m_tabs->addTab(m_traffic, tr("&Traffic"));
  m_tabs->addTab(m_timeline, tr("T&imeline"));
  m_tabs->addTab(m_memory, tr("&Memory"));
  m_tabs->addTab(m_sweep, tr("S&weep"));
  setCentralWidget(m_tabs);

  m_engineLabel = new QLabel(this);
  m_stateLabel = new QLabel(this);
  m_profileLabel = new QLabel(this);
  statusBar()->addPermanentWidget(m_stateLabel);
  statusBar()->addPermanentWidget(m_profileLabel);
  statusBar()->addPermanentWidget(m_engineLabel);
  m_engineLabel->setText(QString::fromStdString(Engine::describe_build()));

  createActions();
  connect(m_editor, &ScenarioEditor::statusMessage, this,
          [this](const QString& text) { statusBar()->showMessage(text, 5000); });
  connect(workbench->document(), &ScenarioDocument::filePathChanged, this, &MainWindow::updateTitle);
  connect(workbench->document(), &ScenarioDocument::modifiedChanged, this, &MainWindow::updateTitle);
  connect(workbench->document(), &ScenarioDocument::scenarioChanged, this, &MainWindow::updateTitle);
  connect(workbench->analysis(), &AnalysisController::stateChanged, this, &MainWindow::updateStatus);
  connect(m_timeline, &TimelineView::loadMeasuredRequested, this, &MainWindow::loadMeasuredTrace);

  QSettings settings;
  resize(1480, 920);
  restoreGeometry(settings.value("window/geometry").toByteArray());
  restoreState(settings.value("window/state").toByteArray());
  m_tabs->setCurrentIndex(settings.value("window/tab", 0).toInt());
  updateTitle();
  updateStatus();
}

void MainWindow::createActions() {
  auto* doc = m_workbench->document();
  QMenu* file = menuBar()->addMenu(tr("&File"));
  file->addAction(tr("&New"), QKeySequence::New, this, [this, doc] {
    if (maybeSave()) doc->newScenario();
  });
  file->addAction(tr("&Open…"), QKeySequence::Open, this, [this] {
    if (!maybeSave()) return;
    const QString path = QFileDialog::getOpenFileName(this, tr("Open scenario"), lastDir(), tr("Scenario (*.json)"));
    if (!path.isEmpty()) openFile(path);
  });
  m_recentMenu = file->addMenu(tr("Open &Recent"));
  rebuildRecentMenu();
  file->addAction(tr("&Save"), QKeySequence::Save, this, [this, doc] {
    if (doc->filePath().isEmpty()) {
      const QString path = QFileDialog::getSaveFileName(this, tr("Save scenario"), lastDir(), tr("Scenario (*.json)"));
      if (!path.isEmpty()) saveTo(path);
    } else {
      saveTo(doc->filePath());
    }
  });
  file->addAction(tr("Save &As…"), QKeySequence::SaveAs, this, [this] {
    const QString path = QFileDialog::getSaveFileName(this, tr("Save scenario as"), lastDir(), tr("Scenario (*.json)"));
    if (!path.isEmpty()) saveTo(path);
  });
  file->addSeparator();
  QMenu* profiles = file->addMenu(tr("&Profile"));
  for (const auto& name : Engine::shipped_profiles()) {
    const QString n = QString::fromStdString(name);
    profiles->addAction(n, this, [this, n] { loadProfile(n); });
  }
  profiles->addSeparator();
  profiles->addAction(tr("Load Profile &File…"), QKeySequence(tr("Ctrl+Shift+P")), this, [this] {
    const QString path = QFileDialog::getOpenFileName(this, tr("Load profile"), lastDir(), tr("Profile (*.json)"));
    if (!path.isEmpty()) loadProfile(path);
  });
  file->addAction(tr("Overlay &Measured Timeline…"), QKeySequence(tr("Ctrl+Shift+O")), this,
                  &MainWindow::loadMeasuredTrace);
  file->addSeparator();
  QMenu* exportMenu = file->addMenu(tr("&Export"));
  exportMenu->addAction(tr("View as &PNG…"), QKeySequence(tr("Ctrl+E")), this, [this] { exportPicture(false); });
  exportMenu->addAction(tr("View as &SVG…"), QKeySequence(tr("Ctrl+Shift+E")), this, [this] { exportPicture(true); });
  exportMenu->addAction(tr("Table as &CSV…"), QKeySequence(tr("Ctrl+Alt+C")), this, &MainWindow::exportCsv);
  QAction* chrome = exportMenu->addAction(tr("Timelines as &Chrome Trace JSON…"), this, &MainWindow::exportChromeTrace);
  if (!Engine::capabilities().has_traces) {
    chrome->setEnabled(false);
    chrome->setToolTip(tr("needs hpsim::traces, which is not in this build"));
  }
  file->addSeparator();
  file->addAction(tr("&Quit"), QKeySequence::Quit, this, &QWidget::close);

  QMenu* edit = menuBar()->addMenu(tr("&Edit"));
  QAction* undo = doc->undoStack()->createUndoAction(this, tr("&Undo"));
  undo->setShortcut(QKeySequence::Undo);
  QAction* redo = doc->undoStack()->createRedoAction(this, tr("&Redo"));
  redo->setShortcut(QKeySequence::Redo);
  edit->addAction(undo);
  edit->addAction(redo);

  QMenu* view = menuBar()->addMenu(tr("&View"));
  for (int i = 0; i < m_tabs->count(); ++i) {
    view->addAction(m_tabs->tabText(i).remove(QLatin1Char('&')), QKeySequence(QStringLiteral("Ctrl+%1").arg(i + 1)),
                    this, [this, i] { m_tabs->setCurrentIndex(i); });
  }
  view->addSeparator();
  QAction* simulated = view->addAction(tr("&Simulated Timelines (discrete-event)"));
  simulated->setCheckable(true);
  simulated->setChecked(QSettings().value("engine/simulatedTimelines", false).toBool() &&
                        Engine::capabilities().has_simulator);
  simulated->setEnabled(Engine::capabilities().has_simulator);
  if (!simulated->isEnabled()) simulated->setToolTip(tr("needs hpsim::sim, which is not in this build"));
  auto applySimulated = [this](bool on) {
    EngineOptions options;
    options.simulated_timelines = on;
    m_workbench->analysis()->setEngineOptions(options);
    QSettings().setValue("engine/simulatedTimelines", on);
  };
  connect(simulated, &QAction::toggled, this, applySimulated);
  if (simulated->isChecked()) applySimulated(true);
  view->setToolTipsVisible(true);
  view->addAction(tr("&Re-evaluate"), QKeySequence(Qt::Key_F5), m_workbench->analysis(),
                  &AnalysisController::updateNow);

  QMenu* run = menuBar()->addMenu(tr("&Sweep"));
  run->addAction(tr("&Run Sweep"), QKeySequence(tr("Ctrl+R")), this, [this] {
    m_tabs->setCurrentWidget(m_sweep);
    m_sweep->run();
  });
  run->addAction(tr("&Cancel Sweep"), QKeySequence(tr("Ctrl+.")), m_sweep, &SweepView::cancel);

  QMenu* help = menuBar()->addMenu(tr("&Help"));
  help->addAction(tr("&About hpsim-gui"), this, [this] {
    QMessageBox::about(this, tr("About hpsim-gui"),
                       tr("<b>hpsim-gui</b> %1<br>What-if workbench for Expert Parallel vs Head Parallel "
                          "(Multi-Head LatentMoE) layers.<br>Engines in this build: %2")
                           .arg(QApplication::applicationVersion(), QString::fromStdString(Engine::describe_build())));
  });
}

bool MainWindow::openFile(const QString& path, bool quiet) {
  const core::Status status = m_workbench->document()->open(path);
  if (!status) {
    if (!quiet) QMessageBox::warning(this, tr("Open scenario"), QString::fromStdString(status.error().message));
    statusBar()->showMessage(tr("could not open %1").arg(path), 5000);
    return false;
  }
  rememberDir(path);
  addRecentFile(QFileInfo(path).absoluteFilePath());
  statusBar()->showMessage(tr("opened %1").arg(path), 3000);
  return true;
}

bool MainWindow::loadProfile(const QString& fileOrName, bool quiet) {
  auto profile = fileOrName.isEmpty() ? Engine::default_profile() : Engine::load_profile(fileOrName.toStdString());
  if (!profile) {
    if (!quiet) QMessageBox::warning(this, tr("Load profile"), QString::fromStdString(profile.error().message));
    statusBar()->showMessage(tr("no profile: timing is off"), 5000);
    m_workbench->analysis()->setProfile(std::nullopt, QString());
    updateStatus();
    return false;
  }
  const QString name = QString::fromStdString(profile->name);
  m_workbench->analysis()->setProfile(std::move(*profile), name);
  if (!fileOrName.isEmpty()) QSettings().setValue(kProfileKey, fileOrName);
  updateStatus();
  return true;
}

bool MainWindow::saveTo(const QString& path) {
  const core::Status status = m_workbench->document()->save(path);
  if (!status) {
    QMessageBox::warning(this, tr("Save scenario"), QString::fromStdString(status.error().message));
    return false;
  }
  rememberDir(path);
  addRecentFile(QFileInfo(path).absoluteFilePath());
  statusBar()->showMessage(tr("saved %1").arg(path), 3000);
  return true;
}

QStringList MainWindow::recentFiles() const { return QSettings().value(kRecentKey).toStringList(); }

void MainWindow::addRecentFile(const QString& path) {
  QStringList files = recentFiles();
  files.removeAll(path);
  files.prepend(path);
  while (files.size() > kMaxRecent) files.removeLast();
  QSettings().setValue(kRecentKey, files);
  rebuildRecentMenu();
}

void MainWindow::rebuildRecentMenu() {
  if (!m_recentMenu) return;
  m_recentMenu->clear();
  const QStringList files = recentFiles();
  for (int i = 0; i < files.size(); ++i) {
    const QString path = files[i];
    m_recentMenu
        ->addAction(QStringLiteral("&%1 %2").arg(i + 1).arg(QFileInfo(path).fileName()), this,
                    [this, path] {
                      if (maybeSave()) openFile(path);
                    })
        ->setToolTip(path);
  }
  m_recentMenu->setEnabled(!files.isEmpty());
}

bool MainWindow::maybeSave() {
  if (!m_workbench->document()->isModified()) return true;
  const auto answer =
      QMessageBox::question(this, tr("Unsaved changes"), tr("The scenario has unsaved changes. Save them?"),
                            QMessageBox::Save | QMessageBox::Discard | QMessageBox::Cancel);
  if (answer == QMessageBox::Cancel) return false;
  if (answer == QMessageBox::Discard) return true;
  const QString path = m_workbench->document()->filePath().isEmpty()
                           ? QFileDialog::getSaveFileName(this, tr("Save scenario"), lastDir(), tr("Scenario (*.json)"))
                           : m_workbench->document()->filePath();
  return !path.isEmpty() && saveTo(path);
}

void MainWindow::closeEvent(QCloseEvent* event) {
  if (!maybeSave()) {
    event->ignore();
    return;
  }
  QSettings settings;
  settings.setValue("window/geometry", saveGeometry());
  settings.setValue("window/state", saveState());
  settings.setValue("window/tab", m_tabs->currentIndex());
  event->accept();
}

void MainWindow::updateTitle() {
  setWindowTitle(tr("%1[*] — hpsim-gui").arg(m_workbench->document()->displayName()));
  setWindowModified(m_workbench->document()->isModified());
}

void MainWindow::updateStatus() {
  auto* a = m_workbench->analysis();
  QString state;
  switch (a->state()) {
    case AnalysisController::State::kIdle:
      state = tr("idle");
      break;
    case AnalysisController::State::kRunning:
      state = tr("evaluating…");
      break;
    case AnalysisController::State::kReady:
      state = a->result() && a->result()->has_timing ? tr("up to date") : tr("up to date (no timing)");
      break;
    case AnalysisController::State::kBlocked:
      state = tr("scenario has errors");
      break;
    case AnalysisController::State::kUnavailable:
      state = tr("engine not available in this build");
      break;
    case AnalysisController::State::kFailed:
      state = tr("engine error");
      break;
  }
  m_stateLabel->setText(state);
  m_stateLabel->setToolTip(a->message());
  m_profileLabel->setText(a->profileSource().isEmpty() ? tr("no profile") : tr("profile: %1").arg(a->profileSource()));
}

WorkbenchView* MainWindow::currentView() const { return qobject_cast<WorkbenchView*>(m_tabs->currentWidget()); }

void MainWindow::exportPicture(bool svg) {
  WorkbenchView* view = currentView();
  if (!view) return;
  const QString suffix = svg ? QStringLiteral("svg") : QStringLiteral("png");
  const QString path = QFileDialog::getSaveFileName(
      this, tr("Export view"), lastDir() + QLatin1Char('/') + view->exportName() + QLatin1Char('.') + suffix,
      svg ? tr("SVG (*.svg)") : tr("PNG (*.png)"));
  if (path.isEmpty()) return;
  rememberDir(path);
  const bool ok = svg ? saveWidgetSvg(view, path, view->exportName()) : saveWidgetPng(view, path);
  statusBar()->showMessage(ok ? tr("exported %1").arg(path) : tr("could not write %1").arg(path), 5000);
}

void MainWindow::exportCsv() {
  WorkbenchView* view = currentView();
  if (!view || !view->exportTable()) return;
  const QString path = QFileDialog::getSaveFileName(
      this, tr("Export table"), lastDir() + QLatin1Char('/') + view->exportName() + QStringLiteral(".csv"),
      tr("CSV (*.csv)"));
  if (path.isEmpty()) return;
  rememberDir(path);
  if (writeText(this, path, modelToCsv(*view->exportTable())))
    statusBar()->showMessage(tr("exported %1").arg(path), 5000);
}

void MainWindow::exportChromeTrace() {
  for (const char* s : {"ep", "hp"}) {
    const auto* tl = m_workbench->timeline(QString::fromLatin1(s))->timeline();
    if (!tl) continue;
    const QString path = QFileDialog::getSaveFileName(
        this, tr("Export %1 timeline").arg(QString::fromLatin1(s).toUpper()),
        lastDir() + QStringLiteral("/timeline-%1.json").arg(QString::fromLatin1(s)), tr("Chrome trace (*.json)"));
    if (path.isEmpty()) return;
    rememberDir(path);
    auto json = Engine::chrome_trace_json(*tl);
    if (!json) {
      QMessageBox::warning(this, tr("Export"), QString::fromStdString(json.error().message));
      return;
    }
    writeText(this, path, QString::fromStdString(*json));
  }
}

void MainWindow::loadMeasuredTrace() {
  const QString path =
      QFileDialog::getOpenFileName(this, tr("Overlay measured timeline"), lastDir(), tr("Timeline (*.json)"));
  if (path.isEmpty()) return;
  rememberDir(path);
  bool unnamed = false;
  QString error = m_workbench->loadMeasuredTimeline(path, QString(), &unnamed);
  if (unnamed) {
    // A trace from another tool: it does not say which strategy it measured.
    QMessageBox ask(QMessageBox::Question, tr("Overlay measured timeline"),
                    tr("%1 does not say which strategy it measured. Overlay it on:").arg(QFileInfo(path).fileName()),
                    QMessageBox::Cancel, this);
    QPushButton* ep = ask.addButton(tr("EP"), QMessageBox::AcceptRole);
    ask.addButton(tr("HP"), QMessageBox::AcceptRole);
    ask.exec();
    if (!ask.clickedButton() || ask.clickedButton() == ask.button(QMessageBox::Cancel)) return;
    error = m_workbench->loadMeasuredTimeline(path,
                                              ask.clickedButton() == ep ? QStringLiteral("ep") : QStringLiteral("hp"));
  }
  if (!error.isEmpty()) {
    QMessageBox::warning(this, tr("Overlay measured timeline"), error);
    return;
  }
  m_tabs->setCurrentWidget(m_timeline);
  statusBar()->showMessage(tr("overlaid %1").arg(path), 5000);
}

QMap<QString, QImage> MainWindow::renderViews() {
  QMap<QString, QImage> out;
  const int current = m_tabs->currentIndex();
  for (int i = 0; i < m_tabs->count(); ++i) {
    m_tabs->setCurrentIndex(i);
    auto* view = qobject_cast<WorkbenchView*>(m_tabs->widget(i));
    QCoreApplication::processEvents();
    out.insert(view->exportName(), grab().toImage());
  }
  m_tabs->setCurrentIndex(current);
  return out;
}

}  // namespace hpsim::gui
