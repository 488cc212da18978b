#include "hpsim/gui/widgets/views.h"

#include <algorithm>

#include <QCheckBox>
#include <QComboBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPainter>
#include <QPushButton>
#include <QSplitter>
#include <QSvgGenerator>
#include <QTableView>
#include <QVBoxLayout>

#include "hpsim/gui/models/format.h"
#include "hpsim/gui/models/workbench.h"
#include "hpsim/gui/widgets/gantt_widget.h"
#include "hpsim/gui/widgets/heatmap_widget.h"
#include "hpsim/gui/widgets/memory_chart_widget.h"
#include "hpsim/gui/widgets/palette.h"
#include "hpsim/gui/widgets/rank_bars_widget.h"

namespace hpsim::gui {
namespace {

QTableView* makeTable(QAbstractItemModel* model, QWidget* parent) {
  auto* t = new QTableView(parent);
  t->setModel(model);
  t->setAlternatingRowColors(true);
  t->setSelectionBehavior(QAbstractItemView::SelectRows);
  t->verticalHeader()->hide();
  t->verticalHeader()->setDefaultSectionSize(t->fontMetrics().height() + 6);
  t->horizontalHeader()->setStretchLastSection(false);
  t->setWordWrap(false);
  // Column widths from the first rows only: a 1,024-rank table must not be measured cell by cell.
  t->horizontalHeader()->setResizeContentsPrecision(32);
  QObject::connect(model, &QAbstractItemModel::modelReset, t, [t] { t->resizeColumnsToContents(); });
  return t;
}

QString headingStyle() { return QStringLiteral("font-weight: 600; font-size: 115%;"); }

// The stages' colours, in the order they first appear in the given timelines.
class StageLegend : public QWidget {
 public:
  explicit StageLegend(QWidget* parent) : QWidget(parent) { setFixedHeight(22); }
  void setStages(const QStringList& stages) {
    m_stages = stages;
    update();
  }

 protected:
  void paintEvent(QPaintEvent*) override {
    QPainter p(this);
    int x = 6;
    for (const QString& s : m_stages) {
      const int w = p.fontMetrics().horizontalAdvance(s);
      if (x + w + 30 > width()) break;
      p.fillRect(QRect(x, 5, 12, 12), stageColor(s));
      p.setPen(palette().color(QPalette::WindowText));
      p.drawText(QRect(x + 16, 0, w + 4, 22), Qt::AlignLeft | Qt::AlignVCenter, s);
      x += w + 30;
    }
  }

 private:
  QStringList m_stages;
};

}  // namespace

bool saveWidgetPng(QWidget* widget, const QString& path) { return widget->grab().save(path, "PNG"); }

bool saveWidgetSvg(QWidget* widget, const QString& path, const QString& title) {
  QSvgGenerator generator;
  generator.setFileName(path);
  generator.setSize(widget->size());
  generator.setViewBox(QRect(QPoint(0, 0), widget->size()));
  generator.setTitle(title);
  QPainter painter;
  if (!painter.begin(&generator)) return false;
  widget->render(&painter);
  return painter.end();
}

// ---- OverviewView -------------------------------------------------------------------------------

OverviewView::OverviewView(Workbench* workbench, QWidget* parent) : WorkbenchView(parent), m_workbench(workbench) {
  auto* layout = new QVBoxLayout(this);
  m_headline = new QLabel(this);
  m_headline->setStyleSheet(QStringLiteral("font-size: 135%; font-weight: 600; padding: 6px 2px;"));
  m_headline->setWordWrap(true);
  m_headline->setObjectName(QStringLiteral("headline"));
  m_notes = new QLabel(this);
  m_notes->setWordWrap(true);
  m_notes->setTextInteractionFlags(Qt::TextSelectableByMouse);
  m_notes->setStyleSheet(QStringLiteral("color: palette(mid);"));
  m_summary = makeTable(workbench->summary(), this);
  auto* stages = new QSplitter(Qt::Horizontal, this);
  for (const char* s : {"ep", "hp"}) {
    auto* box = new QWidget(stages);
    auto* v = new QVBoxLayout(box);
    v->setContentsMargins(0, 0, 0, 0);
    auto* title =
        new QLabel(tr("%1 stages (one MoE layer, forward and backward)").arg(QString::fromLatin1(s).toUpper()), box);
    title->setStyleSheet(headingStyle());
    v->addWidget(title);
    v->addWidget(makeTable(workbench->stages(QString::fromLatin1(s)), box));
  }
  auto* split = new QSplitter(Qt::Vertical, this);
  split->addWidget(m_summary);
  split->addWidget(stages);
  split->setStretchFactor(0, 1);
  split->setStretchFactor(1, 1);
  layout->addWidget(m_headline);
  layout->addWidget(split, 1);
  layout->addWidget(m_notes);
  connect(workbench, &Workbench::resultChanged, this, &OverviewView::refresh);
  connect(workbench->analysis(), &AnalysisController::stateChanged, this, &OverviewView::refresh);
  refresh();
}

QAbstractItemModel* OverviewView::exportTable() const { return m_workbench->summary(); }

QString OverviewView::headline() const { return m_headline->text(); }

void OverviewView::refresh() {
  auto* analysis = m_workbench->analysis();
  const auto& scenario = m_workbench->document()->scenario();
  const QString what =
      tr("%1 on W = %2").arg(QString::fromStdString(scenario.model.name)).arg(scenario.parallel.num_ranks);
  QString text;
  switch (analysis->state()) {
    case AnalysisController::State::kReady:
      if (auto s = m_workbench->summary()->hpSpeedup()) {
        text = *s >= 1 ? tr("HP is %1× faster than EP per MoE layer — %2").arg(QString::number(*s, 'f', 2), what)
                       : tr("EP is %1× faster than HP per MoE layer — %2").arg(QString::number(1 / *s, 'f', 2), what);
      } else {
        text = tr("Traffic and memory of %1 (no timing: see the notes below)").arg(what);
      }
      break;
    case AnalysisController::State::kRunning:
      text = tr("Evaluating %1 …").arg(what);
      break;
    case AnalysisController::State::kBlocked:
      text = tr("The scenario breaks %n rule(s); fix the fields marked in the editor.", nullptr,
                static_cast<int>(analysis->message().count(QLatin1Char('\n')) + 1));
      break;
    case AnalysisController::State::kUnavailable:
      text = tr("Engine not available in this build: editing only.");
      break;
    case AnalysisController::State::kFailed:
      text = tr("The engine could not evaluate this scenario.");
      break;
    case AnalysisController::State::kIdle:
      text = tr("No result yet.");
      break;
  }
  m_headline->setText(text);
  QStringList notes;
  if (analysis->result()) {
    for (const auto& n : analysis->result()->notes) notes << QString::fromStdString(n).toHtmlEscaped();
    notes.prepend(tr("engine: %1; profile: %2")
                      .arg(QString::fromStdString(analysis->result()->report.engine),
                           analysis->profileSource().isEmpty() ? tr("none") : analysis->profileSource())
                      .toHtmlEscaped());
  } else if (!analysis->message().isEmpty()) {
    notes << analysis->message().toHtmlEscaped();
  }
  m_notes->setText(notes.join(QStringLiteral("<br>")));
}

// ---- TrafficView --------------------------------------------------------------------------------

TrafficView::TrafficView(Workbench* workbench, QWidget* parent) : WorkbenchView(parent), m_workbench(workbench) {
  auto* layout = new QVBoxLayout(this);
  auto* top = new QHBoxLayout;
  top->addWidget(new QLabel(tr("Phase:"), this));
  m_phase = new QComboBox(this);
  m_phase->setObjectName(QStringLiteral("phase"));
  m_phase->setMinimumWidth(140);
  top->addWidget(m_phase);
  m_hover = new QLabel(this);
  m_hover->setObjectName(QStringLiteral("hover"));
  top->addSpacing(16);
  top->addWidget(m_hover, 1);
  layout->addLayout(top);

  auto* maps = new QHBoxLayout;
  m_ep = new HeatmapWidget(workbench->traffic(QStringLiteral("ep")), this);
  m_hp = new HeatmapWidget(workbench->traffic(QStringLiteral("hp")), this);
  maps->addWidget(m_ep, 1);
  maps->addWidget(m_hp, 1);
  auto* upper = new QWidget(this);
  auto* upperLayout = new QVBoxLayout(upper);
  upperLayout->setContentsMargins(0, 0, 0, 0);
  upperLayout->addLayout(maps, 1);
  m_legend = new ColorLegendWidget(upper);
  upperLayout->addWidget(m_legend);
  m_bars = new RankBarsWidget(workbench->rankTraffic(), this);
  m_summary = makeTable(workbench->trafficSummary(), this);
  auto* split = new QSplitter(Qt::Vertical, this);
  split->addWidget(upper);
  split->addWidget(m_bars);
  split->addWidget(m_summary);
  split->setStretchFactor(0, 5);
  split->setStretchFactor(1, 2);
  split->setStretchFactor(2, 2);
  layout->addWidget(split, 1);

  connect(m_phase, &QComboBox::currentTextChanged, this, [this](const QString& phase) {
    if (!phase.isEmpty()) m_workbench->setTrafficPhase(phase);
  });
  connect(workbench, &Workbench::resultChanged, this, &TrafficView::refresh);
  connect(workbench, &Workbench::trafficPhaseChanged, this, &TrafficView::refresh);
  for (auto* map : {m_ep, m_hp}) {
    connect(map, &HeatmapWidget::cellHovered, this, [this, map](int src, int dst, double bytes) {
      m_hover->setText(tr("%1: rank %2 → rank %3: %4")
                           .arg(map == m_ep ? tr("EP") : tr("HP"))
                           .arg(src)
                           .arg(dst)
                           .arg(formatExactBytes(bytes)));
    });
  }
  refresh();
}

QAbstractItemModel* TrafficView::exportTable() const { return m_workbench->trafficSummary(); }

HeatmapWidget* TrafficView::heatmap(const QString& strategy) const {
  return strategy == QLatin1String("ep") ? m_ep : m_hp;
}

void TrafficView::refresh() {
  const QSignalBlocker block(m_phase);
  m_phase->clear();
  m_phase->addItems(m_workbench->trafficPhases());
  m_phase->setCurrentText(m_workbench->trafficPhase());
  // One colour scale for both strategies and every phase: colours compare across all maps.
  const double max = std::max(m_workbench->traffic(QStringLiteral("ep"))->maxOffDiagonal(),
                              m_workbench->traffic(QStringLiteral("hp"))->maxOffDiagonal());
  m_ep->setScaleMax(max);
  m_hp->setScaleMax(max);
  m_legend->setScaleMax(max);
  const QString phase = m_workbench->trafficPhase();
  m_ep->setTitle(tr("EP — %1").arg(phase));
  m_hp->setTitle(tr("HP — %1").arg(phase));
}

// ---- TimelineView -------------------------------------------------------------------------------

TimelineView::TimelineView(Workbench* workbench, QWidget* parent) : WorkbenchView(parent), m_workbench(workbench) {
  auto* layout = new QVBoxLayout(this);
  auto* top = new QHBoxLayout;
  auto* fit = new QPushButton(tr("Zoom to fit"), this);
  m_sync = new QCheckBox(tr("Same time axis for EP and HP"), this);
  m_sync->setChecked(true);
  auto* load = new QPushButton(tr("Overlay measured trace…"), this);
  auto* clear = new QPushButton(tr("Clear overlay"), this);
  m_info = new QLabel(this);
  m_info->setObjectName(QStringLiteral("info"));
  top->addWidget(fit);
  top->addWidget(m_sync);
  top->addSpacing(12);
  top->addWidget(load);
  top->addWidget(clear);
  top->addSpacing(12);
  top->addWidget(m_info, 1);
  layout->addLayout(top);
  m_ep = new GanttWidget(workbench->timeline(QStringLiteral("ep")), this);
  m_hp = new GanttWidget(workbench->timeline(QStringLiteral("hp")), this);
  m_ep->setOverlay(workbench->measuredTimeline(QStringLiteral("ep")));
  m_hp->setOverlay(workbench->measuredTimeline(QStringLiteral("hp")));
  auto* split = new QSplitter(Qt::Vertical, this);
  split->addWidget(m_ep);
  split->addWidget(m_hp);
  layout->addWidget(split, 1);
  auto* legend = new StageLegend(this);
  m_legend = legend;
  layout->addWidget(legend);
  auto* help = new QLabel(tr("Wheel: zoom at the cursor · drag or Shift+wheel: pan · +/−/←/→/0 keys · hover a span for "
                             "its stage, phase, duration, bytes and FLOPs"),
                          this);
  help->setStyleSheet(QStringLiteral("color: palette(mid);"));
  layout->addWidget(help);

  auto syncFrom = [this](GanttWidget* from, GanttWidget* to) {
    connect(from, &GanttWidget::timeRangeChanged, to, [this, to](double t0, double t1) {
      if (m_sync->isChecked()) to->setTimeRange(t0, t1);
    });
  };
  syncFrom(m_ep, m_hp);
  syncFrom(m_hp, m_ep);
  connect(fit, &QPushButton::clicked, this, [this] {
    m_ep->zoomToFit();
    if (!m_sync->isChecked()) m_hp->zoomToFit();
    if (m_sync->isChecked()) {
      const auto t1 = static_cast<double>(std::max(m_workbench->timeline(QStringLiteral("ep"))->ganttIndex().endNs(),
                                                   m_workbench->timeline(QStringLiteral("hp"))->ganttIndex().endNs()));
      m_ep->setTimeRange(-t1 * 0.01, t1 * 1.01);
    }
  });
  connect(load, &QPushButton::clicked, this, &TimelineView::loadMeasuredRequested);
  connect(clear, &QPushButton::clicked, workbench, &Workbench::clearMeasuredTimelines);
  connect(workbench, &Workbench::resultChanged, this, &TimelineView::refresh);
  connect(workbench, &Workbench::measuredTimelineChanged, this, &TimelineView::refresh);
  refresh();
}

QAbstractItemModel* TimelineView::exportTable() const { return m_workbench->timeline(QStringLiteral("hp")); }

GanttWidget* TimelineView::gantt(const QString& strategy) const {
  return strategy == QLatin1String("ep") ? m_ep : m_hp;
}

void TimelineView::refresh() {
  QStringList stages;
  QString info;
  std::int64_t end = 0;
  for (const char* s : {"ep", "hp"}) {
    const auto* model = m_workbench->timeline(QString::fromLatin1(s));
    const auto* tl = model->timeline();
    const QString name = QString::fromLatin1(s).toUpper();
    if (!tl) continue;
    end = std::max(end, model->ganttIndex().endNs());
    for (const auto& rank : tl->ranks) {
      for (const auto& span : rank.spans) {
        const QString st = QString::fromStdString(span.stage);
        if (!stages.contains(st)) stages << st;
      }
    }
    QString line = tr("%1: %2 (%3, %4 spans)")
                       .arg(name, formatNanos(static_cast<double>(model->ganttIndex().endNs())),
                            QString::fromStdString(tl->source))
                       .arg(model->ganttIndex().numSpans());
    if (const auto* measured = m_workbench->measuredTimeline(QString::fromLatin1(s))->timeline()) {
      line += tr(", overlay: %1 %2")
                  .arg(QString::fromStdString(measured->source), formatNanos(static_cast<double>(measured->end_ns())));
    }
    info += (info.isEmpty() ? QString() : QStringLiteral("   ·   ")) + line;
  }
  if (info.isEmpty()) info = tr("No timeline: timing needs the analytic engine and a profile (see Overview).");
  m_info->setText(info);
  static_cast<StageLegend*>(m_legend)->setStages(stages);
  m_ep->setTitle(tr("EP"));
  m_hp->setTitle(tr("HP"));
  if (m_sync->isChecked() && end > 0)
    m_ep->setTimeRange(-static_cast<double>(end) * 0.01, static_cast<double>(end) * 1.01);
}

// ---- MemoryView ---------------------------------------------------------------------------------

MemoryView::MemoryView(Workbench* workbench, QWidget* parent) : WorkbenchView(parent), m_workbench(workbench) {
  auto* layout = new QVBoxLayout(this);
  auto* charts = new QHBoxLayout;
  m_ep = new MemoryChartWidget(workbench->memory(QStringLiteral("ep")), this);
  m_hp = new MemoryChartWidget(workbench->memory(QStringLiteral("hp")), this);
  m_ep->setTitle(tr("EP — peak memory per rank"));
  m_hp->setTitle(tr("HP — peak memory per rank"));
  charts->addWidget(m_ep, 1);
  charts->addWidget(m_hp, 1);
  auto* upper = new QWidget(this);
  auto* upperLayout = new QVBoxLayout(upper);
  upperLayout->setContentsMargins(0, 0, 0, 0);
  upperLayout->addLayout(charts, 1);
  upperLayout->addWidget(new MemoryLegendWidget(upper));
  auto* lower = new QWidget(this);
  auto* lowerLayout = new QVBoxLayout(lower);
  lowerLayout->setContentsMargins(0, 0, 0, 0);
  auto* pick = new QHBoxLayout;
  pick->addWidget(new QLabel(tr("Table:"), lower));
  m_tableChoice = new QComboBox(lower);
  m_tableChoice->addItems({tr("EP"), tr("HP")});
  pick->addWidget(m_tableChoice);
  m_info = new QLabel(lower);
  pick->addWidget(m_info, 1);
  lowerLayout->addLayout(pick);
  m_table = makeTable(workbench->memory(QStringLiteral("ep")), lower);
  lowerLayout->addWidget(m_table, 1);
  auto* split = new QSplitter(Qt::Vertical, this);
  split->addWidget(upper);
  split->addWidget(lower);
  split->setStretchFactor(0, 3);
  split->setStretchFactor(1, 1);
  layout->addWidget(split, 1);
  connect(m_tableChoice, &QComboBox::currentIndexChanged, this, [this](int i) {
    m_table->setModel(m_workbench->memory(i == 0 ? QStringLiteral("ep") : QStringLiteral("hp")));
    m_table->resizeColumnsToContents();
  });
  connect(workbench, &Workbench::resultChanged, this, &MemoryView::refresh);
  refresh();
}

QAbstractItemModel* MemoryView::exportTable() const { return m_table->model(); }

void MemoryView::refresh() {
  // One scale for both charts, so bar heights compare across strategies. When the capacity is
  // more than four times the largest peak, the scale fits the peaks and the charts say where the
  // capacity is.
  double peak = 0, capacity = 0;
  for (const char* s : {"ep", "hp"}) {
    const auto* model = m_workbench->memory(QString::fromLatin1(s));
    peak = std::max(peak, model->report().max_peak());
    capacity = std::max(capacity, model->capacityBytes());
  }
  const double max = capacity > 4 * peak ? peak : std::max(peak, capacity);
  m_ep->setScaleMax(max);
  m_hp->setScaleMax(max);
  m_info->setText(tr("one MoE layer's parts at the start of its backward (docs/model.md, \"Memory\")"));
}

}  // namespace hpsim::gui
