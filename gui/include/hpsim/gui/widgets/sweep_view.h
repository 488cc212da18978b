#pragma once
// SweepView: pick a parameter and a range, run the sweep in the background (progress, cancel),
// and plot HP/EP speed-up, the time breakdown and the peak memory against the parameter
// (Qt Charts), with the points in a table beneath.

#include "hpsim/gui/widgets/views.h"

class QDoubleSpinBox;
class QProgressBar;
class QChartView;
class QChart;

namespace hpsim::gui {

struct SweepPoint;
struct SweepSpec;

class SweepView : public WorkbenchView {
  Q_OBJECT

 public:
  explicit SweepView(Workbench* workbench, QWidget* parent = nullptr);
  QAbstractItemModel* exportTable() const override;
  QString exportName() const override { return QStringLiteral("sweep"); }

  SweepSpec spec() const;
  void setSpec(const SweepSpec& spec);
  QString statusText() const;

 public slots:
  void run();
  void cancel();

 private:
  void setRangeDefaults(int parameterIndex);
  void rebuildCharts();
  void onFinished(bool cancelled);

  Workbench* m_workbench;
  QComboBox* m_parameter;
  QDoubleSpinBox* m_from;
  QDoubleSpinBox* m_to;
  QDoubleSpinBox* m_step;
  QCheckBox* m_geometric;
  QPushButton* m_run;
  QPushButton* m_cancel;
  QProgressBar* m_progress;
  QLabel* m_status;
  QChartView* m_speedup;
  QChartView* m_breakdown;
  QChartView* m_memory;
  QTableView* m_table;
};

}  // namespace hpsim::gui
