#include "hpsim/gui/widgets/sweep_view.h"

#include <algorithm>
#include <cmath>

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QProgressBar>
#include <QPushButton>
#include <QSplitter>
#include <QTableView>
#include <QVBoxLayout>
#include <QtCharts/QChart>
#include <QtCharts/QChartView>
#include <QtCharts/QLegend>
#include <QtCharts/QLineSeries>
#include <QtCharts/QScatterSeries>
#include <QtCharts/QValueAxis>

#include "hpsim/gui/models/workbench.h"
#include "hpsim/gui/widgets/palette.h"

namespace hpsim::gui {
namespace {

QChartView* makeChartView(const QString& title, QWidget* parent) {
  auto* chart = new QChart;
  chart->setTitle(title);
  chart->legend()->setAlignment(Qt::AlignBottom);
  chart->setMargins(QMargins(4, 4, 4, 4));
  chart->setBackgroundRoundness(0);
  auto* view = new QChartView(chart, parent);
  view->setRenderHint(QPainter::Antialiasing);
  view->setMinimumSize(260, 220);
  return view;
}

QLineSeries* addLine(QChart* chart, const QString& name, const QColor& color, Qt::PenStyle style = Qt::SolidLine) {
  auto* s = new QLineSeries(chart);
  s->setName(name);
  s->setColor(color);  // the legend's marker
  s->setPen(QPen(color, 2.2, style));
  s->setPointsVisible(true);
  chart->addSeries(s);
  return s;
}

// Axes that fit the series, starting at zero for magnitudes.
void fitAxes(QChart* chart, const QString& xTitle, const QString& yTitle, bool yFromZero) {
  for (auto* axis : chart->axes()) {
    chart->removeAxis(axis);
    delete axis;
  }
  double x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  bool any = false;
  for (auto* series : chart->series()) {
    for (const QPointF& p : static_cast<QXYSeries*>(series)->points()) {
      if (!any) {
        x0 = x1 = p.x();
        y0 = y1 = p.y();
        any = true;
      }
      x0 = std::min(x0, p.x());
      x1 = std::max(x1, p.x());
      y0 = std::min(y0, p.y());
      y1 = std::max(y1, p.y());
    }
  }
  if (yFromZero) y0 = std::min(0.0, y0);
  if (x1 <= x0) x1 = x0 + 1;
  if (y1 <= y0) y1 = y0 + 1;
  auto* ax = new QValueAxis(chart);
  ax->setTitleText(xTitle);
  ax->setRange(x0, x1);
  ax->setLabelFormat(QStringLiteral("%.4g"));
  auto* ay = new QValueAxis(chart);
  ay->setTitleText(yTitle);
  ay->setRange(y0, y1 + (y1 - y0) * 0.08);
  ay->setLabelFormat(y1 >= 100 ? QStringLiteral("%.0f") : QStringLiteral("%.3g"));
  ay->applyNiceNumbers();
  chart->addAxis(ax, Qt::AlignBottom);
  chart->addAxis(ay, Qt::AlignLeft);
  for (auto* series : chart->series()) {
    series->attachAxis(ax);
    series->attachAxis(ay);
  }
}

}  // namespace

SweepView::SweepView(Workbench* workbench, QWidget* parent) : WorkbenchView(parent), m_workbench(workbench) {
  auto* layout = new QVBoxLayout(this);
  auto* controls = new QHBoxLayout;
  m_parameter = new QComboBox(this);
  m_parameter->setObjectName(QStringLiteral("parameter"));
  for (auto p : allSweepParameters()) m_parameter->addItem(sweepParameterName(p), static_cast<int>(p));
  auto spin = [this](double min, double max, int decimals) {
    auto* s = new QDoubleSpinBox(this);
    s->setRange(min, max);
    s->setDecimals(decimals);
    s->setKeyboardTracking(false);
    return s;
  };
  m_from = spin(0, 1e9, 2);
  m_to = spin(0, 1e9, 2);
  m_step = spin(0.01, 1e9, 2);
  m_from->setObjectName(QStringLiteral("from"));
  m_to->setObjectName(QStringLiteral("to"));
  m_step->setObjectName(QStringLiteral("step"));
  m_geometric = new QCheckBox(tr("multiply"), this);
  m_geometric->setToolTip(tr("each value is the previous one times the step (e.g. W = 8, 16, 32, …)"));
  m_run = new QPushButton(tr("Run sweep"), this);
  m_run->setObjectName(QStringLiteral("run"));
  m_cancel = new QPushButton(tr("Cancel"), this);
  m_cancel->setObjectName(QStringLiteral("cancel"));
  m_cancel->setEnabled(false);
  m_progress = new QProgressBar(this);
  m_progress->setFixedWidth(220);
  m_status = new QLabel(this);
  controls->addWidget(new QLabel(tr("Parameter"), this));
  controls->addWidget(m_parameter);
  controls->addWidget(new QLabel(tr("from"), this));
  controls->addWidget(m_from);
  controls->addWidget(new QLabel(tr("to"), this));
  controls->addWidget(m_to);
  controls->addWidget(new QLabel(tr("step"), this));
  controls->addWidget(m_step);
  controls->addWidget(m_geometric);
  controls->addWidget(m_run);
  controls->addWidget(m_cancel);
  controls->addStretch(1);
  layout->addLayout(controls);
  auto* progressRow = new QHBoxLayout;
  progressRow->addWidget(m_progress);
  progressRow->addWidget(m_status, 1);
  layout->addLayout(progressRow);

  m_speedup = makeChartView(tr("HP speed-up over EP (one MoE layer, forward + backward)"), this);
  m_breakdown = makeChartView(tr("Time breakdown: sum of stage times, slowest rank"), this);
  m_memory = makeChartView(tr("Peak memory, largest rank"), this);
  auto* charts = new QSplitter(Qt::Horizontal, this);
  charts->addWidget(m_speedup);
  charts->addWidget(m_breakdown);
  charts->addWidget(m_memory);
  m_table = new QTableView(this);
  m_table->setModel(workbench->sweepModel());
  m_table->verticalHeader()->hide();
  m_table->setAlternatingRowColors(true);
  m_table->horizontalHeader()->setStretchLastSection(true);
  auto* split = new QSplitter(Qt::Vertical, this);
  split->addWidget(charts);
  split->addWidget(m_table);
  split->setStretchFactor(0, 3);
  split->setStretchFactor(1, 1);
  layout->addWidget(split, 1);

  connect(m_parameter, &QComboBox::currentIndexChanged, this, &SweepView::setRangeDefaults);
  connect(m_run, &QPushButton::clicked, this, &SweepView::run);
  connect(m_cancel, &QPushButton::clicked, this, &SweepView::cancel);
  auto* runner = workbench->sweepRunner();
  connect(runner, &SweepRunner::progress, this, [this](int done, int total) {
    m_progress->setRange(0, total);
    m_progress->setValue(done);
  });
  connect(runner, &SweepRunner::finished, this, &SweepView::onFinished);
  connect(workbench->sweepModel(), &QAbstractItemModel::rowsInserted, this, &SweepView::rebuildCharts);
  connect(workbench->sweepModel(), &QAbstractItemModel::modelReset, this, &SweepView::rebuildCharts);
  setRangeDefaults(0);
  rebuildCharts();
}

QAbstractItemModel* SweepView::exportTable() const { return m_workbench->sweepModel(); }

SweepSpec SweepView::spec() const {
  SweepSpec s;
  s.parameter = static_cast<SweepParameter>(m_parameter->currentData().toInt());
  s.from = m_from->value();
  s.to = m_to->value();
  s.step = m_step->value();
  s.geometric = m_geometric->isChecked();
  return s;
}

void SweepView::setSpec(const SweepSpec& spec) {
  const QSignalBlocker block(m_parameter);
  m_parameter->setCurrentIndex(m_parameter->findData(static_cast<int>(spec.parameter)));
  m_from->setValue(spec.from);
  m_to->setValue(spec.to);
  m_step->setValue(spec.step);
  m_geometric->setChecked(spec.geometric);
}

QString SweepView::statusText() const { return m_status->text(); }

void SweepView::setRangeDefaults(int index) {
  const auto p = static_cast<SweepParameter>(m_parameter->itemData(index).toInt());
  const auto& s = m_workbench->document()->scenario();
  SweepSpec spec;
  spec.parameter = p;
  switch (p) {
    case SweepParameter::kTopK:
      spec = {p, 1, 16, 1, false};
      break;
    case SweepParameter::kGranularity:
      spec = {p, 1, 8, 2, true};
      break;
    case SweepParameter::kSkew:
      spec = {p, 0, 2, 0.25, false};
      break;
    case SweepParameter::kRanks:
      spec = {p, 2, std::max<double>(8, static_cast<double>(s.parallel.num_ranks)), 2, true};
      break;
    case SweepParameter::kTokens:
      spec = {p, 1024, 65536, 2, true};
      break;
  }
  setSpec(spec);
}

void SweepView::run() {
  const QString error = m_workbench->startSweep(spec());
  if (!error.isEmpty()) {
    m_status->setText(error);
    return;
  }
  m_run->setEnabled(false);
  m_cancel->setEnabled(true);
  m_progress->setRange(0, m_workbench->sweepRunner()->numPoints());
  m_progress->setValue(0);
  m_status->setText(tr("running %1 points in the background…").arg(m_workbench->sweepRunner()->numPoints()));
}

void SweepView::cancel() { m_workbench->sweepRunner()->cancel(); }

void SweepView::onFinished(bool cancelled) {
  m_run->setEnabled(true);
  m_cancel->setEnabled(false);
  const int n = m_workbench->sweepModel()->rowCount();
  const auto& points = m_workbench->sweepModel()->points();
  const bool timed = std::any_of(points.begin(), points.end(), [](const SweepPoint& p) { return p.has_timing; });
  QString text = cancelled ? tr("cancelled after %1 of %2 points").arg(n).arg(m_workbench->sweepRunner()->numPoints())
                           : tr("done: %1 points").arg(n);
  if (!timed && n > 0) text += tr(" — no timing (no profile or no analytic engine): speed-up and time are not plotted");
  m_status->setText(text);
}

void SweepView::rebuildCharts() {
  const auto* model = m_workbench->sweepModel();
  const QString x = sweepParameterName(model->parameter());
  QChart* speed = m_speedup->chart();
  QChart* time = m_breakdown->chart();
  QChart* mem = m_memory->chart();
  for (QChart* c : {speed, time, mem}) c->removeAllSeries();
  auto* speedup = addLine(speed, tr("EP time / HP time"), strategyColor(QStringLiteral("hp")));
  auto* epCompute = addLine(time, tr("EP compute"), strategyColor(QStringLiteral("ep")));
  auto* epComm = addLine(time, tr("EP comm"), strategyColor(QStringLiteral("ep")), Qt::DashLine);
  auto* hpCompute = addLine(time, tr("HP compute"), strategyColor(QStringLiteral("hp")));
  auto* hpComm = addLine(time, tr("HP comm"), strategyColor(QStringLiteral("hp")), Qt::DashLine);
  auto* epPeak = addLine(mem, tr("EP"), strategyColor(QStringLiteral("ep")));
  auto* hpPeak = addLine(mem, tr("HP"), strategyColor(QStringLiteral("hp")));
  double xmin = 0, xmax = 0;
  bool first = true;
  for (const auto& p : model->points()) {
    if (first) xmin = xmax = p.value;
    first = false;
    xmin = std::min(xmin, p.value);
    xmax = std::max(xmax, p.value);
    if (auto s = p.hpSpeedup()) speedup->append(p.value, *s);
    if (p.has_timing && p.ep.ok) {
      epCompute->append(p.value, p.ep.compute_us);
      epComm->append(p.value, p.ep.comm_us);
    }
    if (p.has_timing && p.hp.ok) {
      hpCompute->append(p.value, p.hp.compute_us);
      hpComm->append(p.value, p.hp.comm_us);
    }
    if (p.ep.ok) epPeak->append(p.value, p.ep.peak_bytes / 1e9);
    if (p.hp.ok) hpPeak->append(p.value, p.hp.peak_bytes / 1e9);
  }
  // The parity line only under a speed-up curve: an empty series would still sit in the legend.
  if (!first && speedup->count() > 0) {
    auto* parity = addLine(speed, tr("parity"), QColor(0x88, 0x88, 0x88), Qt::DashLine);
    parity->setPointsVisible(false);
    parity->append(xmin, 1);
    parity->append(xmax, 1);
  }
  // The capacity line only when it is within reach of the peaks (else it flattens them).
  const double cap = m_workbench->document()->scenario().cluster.gpu.memory_gb;
  double peak = 0;
  for (const auto& p : model->points()) peak = std::max({peak, p.ep.peak_bytes / 1e9, p.hp.peak_bytes / 1e9});
  if (!first && cap > 0 && cap <= 4 * peak) {
    auto* capacity = addLine(mem, tr("GPU capacity"), overCapacityColor(), Qt::DashLine);
    capacity->setPointsVisible(false);
    capacity->append(xmin, cap);
    capacity->append(xmax, cap);
  }
  fitAxes(speed, x, tr("speed-up (×)"), true);
  fitAxes(time, x, tr("µs"), true);
  fitAxes(mem, x, cap > 4 * peak ? tr("GB (capacity %1 GB is off the scale)").arg(cap) : tr("GB"), true);
  m_table->resizeColumnsToContents();
}

}  // namespace hpsim::gui
