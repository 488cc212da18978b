#pragma once
// The workbench's main views. Each renders models of the Workbench and forwards input; none
// computes a result. Every view names the table its "Export table as CSV" writes.

#include <QWidget>

class QAbstractItemModel;
class QComboBox;
class QLabel;
class QTableView;
class QTreeView;
class QPushButton;
class QCheckBox;

namespace hpsim::gui {

class Workbench;
class HeatmapWidget;
class ColorLegendWidget;
class RankBarsWidget;
class GanttWidget;
class MemoryChartWidget;

// A widget as it is on screen, to a PNG (pixels) or an SVG (vectors where Qt paints them).
bool saveWidgetPng(QWidget* widget, const QString& path);
bool saveWidgetSvg(QWidget* widget, const QString& path, const QString& title);

class WorkbenchView : public QWidget {
  Q_OBJECT

 public:
  using QWidget::QWidget;
  virtual QAbstractItemModel* exportTable() const = 0;
  virtual QString exportName() const = 0;  // file name stem: "traffic", "memory", ...
};

// Headline, both strategies' numbers side by side, stage costs, engine notes.
class OverviewView : public WorkbenchView {
  Q_OBJECT

 public:
  explicit OverviewView(Workbench* workbench, QWidget* parent = nullptr);
  QAbstractItemModel* exportTable() const override;
  QString exportName() const override { return QStringLiteral("overview"); }
  QString headline() const;

 private:
  void refresh();
  Workbench* m_workbench;
  QLabel* m_headline;
  QLabel* m_notes;
  QTableView* m_summary;
};

class TrafficView : public WorkbenchView {
  Q_OBJECT

 public:
  explicit TrafficView(Workbench* workbench, QWidget* parent = nullptr);
  QAbstractItemModel* exportTable() const override;
  QString exportName() const override { return QStringLiteral("traffic"); }
  HeatmapWidget* heatmap(const QString& strategy) const;

 private:
  void refresh();
  Workbench* m_workbench;
  QComboBox* m_phase;
  HeatmapWidget* m_ep;
  HeatmapWidget* m_hp;
  ColorLegendWidget* m_legend;
  RankBarsWidget* m_bars;
  QTableView* m_summary;
  QLabel* m_hover;
};

class TimelineView : public WorkbenchView {
  Q_OBJECT

 public:
  explicit TimelineView(Workbench* workbench, QWidget* parent = nullptr);
  QAbstractItemModel* exportTable() const override;
  QString exportName() const override { return QStringLiteral("timeline"); }
  GanttWidget* gantt(const QString& strategy) const;

 signals:
  void loadMeasuredRequested();

 private:
  void refresh();
  Workbench* m_workbench;
  GanttWidget* m_ep;
  GanttWidget* m_hp;
  QLabel* m_info;
  QWidget* m_legend;
  QCheckBox* m_sync;
};

class MemoryView : public WorkbenchView {
  Q_OBJECT

 public:
  explicit MemoryView(Workbench* workbench, QWidget* parent = nullptr);
  QAbstractItemModel* exportTable() const override;
  QString exportName() const override { return QStringLiteral("memory"); }

 private:
  void refresh();
  Workbench* m_workbench;
  MemoryChartWidget* m_ep;
  MemoryChartWidget* m_hp;
  QLabel* m_info;
  QComboBox* m_tableChoice;
  QTableView* m_table;
};

}  // namespace hpsim::gui
