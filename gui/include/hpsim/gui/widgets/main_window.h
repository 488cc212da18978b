#pragma once
// MainWindow: the workbench's window. Scenario editor on the left, the views in tabs (Overview,
// Traffic, Timeline, Memory, Sweep), menus with shortcuts, a status bar with the engine's state,
// recent files and window layout remembered in QSettings, exports of views and tables.

#include <QImage>
#include <QMainWindow>
#include <QMap>
#include <QStringList>

class QAction;
class QLabel;
class QMenu;
class QTabWidget;

namespace hpsim::gui {

class Workbench;
class ScenarioEditor;
class WorkbenchView;
class OverviewView;
class TrafficView;
class TimelineView;
class MemoryView;
class SweepView;

class MainWindow : public QMainWindow {
  Q_OBJECT

 public:
  explicit MainWindow(Workbench* workbench, QWidget* parent = nullptr);

  // Opens a scenario file; false (and a message box unless quiet) on error.
  bool openFile(const QString& path, bool quiet = false);
  // Loads the profile timing is read from: a file or a shipped name. Empty = the default one.
  bool loadProfile(const QString& fileOrName, bool quiet = false);

  ScenarioEditor* editor() const { return m_editor; }
  QTabWidget* tabs() const { return m_tabs; }
  OverviewView* overview() const { return m_overview; }
  TrafficView* trafficView() const { return m_traffic; }
  TimelineView* timelineView() const { return m_timeline; }
  MemoryView* memoryView() const { return m_memory; }
  SweepView* sweepView() const { return m_sweep; }
  QStringList recentFiles() const;

  // Renders each main view (shown in turn) at the window's size: name -> image.
  QMap<QString, QImage> renderViews();

 protected:
  void closeEvent(QCloseEvent* event) override;

 private:
  void createActions();
  void updateTitle();
  void updateStatus();
  void addRecentFile(const QString& path);
  void rebuildRecentMenu();
  bool maybeSave();
  bool saveTo(const QString& path);
  WorkbenchView* currentView() const;
  void exportPicture(bool svg);
  void exportCsv();
  void exportChromeTrace();
  void loadMeasuredTrace();

  Workbench* m_workbench;
  ScenarioEditor* m_editor;
  QTabWidget* m_tabs;
  OverviewView* m_overview;
  TrafficView* m_traffic;
  TimelineView* m_timeline;
  MemoryView* m_memory;
  SweepView* m_sweep;
  QMenu* m_recentMenu = nullptr;
  QLabel* m_engineLabel;
  QLabel* m_stateLabel;
  QLabel* m_profileLabel;
};

}  // namespace hpsim::gui
