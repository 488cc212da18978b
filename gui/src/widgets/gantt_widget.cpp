#include "hpsim/gui/widgets/gantt_widget.h"

#include <algorithm>
#include <cmath>

#include <QKeyEvent>
#include <QMouseEvent>
#include <QPainter>
#include <QScrollBar>
#include <QToolTip>
#include <QWheelEvent>

#include "hpsim/gui/models/format.h"
#include "hpsim/gui/models/timeline_model.h"
#include "hpsim/gui/widgets/palette.h"

namespace hpsim::gui {
namespace {

constexpr int kGutter = 86;  // row labels
constexpr int kAxis = 38;    // title + time axis
constexpr int kMinRow = 3;
constexpr int kMaxRow = 20;

// A "nice" tick step (1, 2 or 5 times a power of ten) for about `target` ticks over `span`.
double niceStep(double span, int target) {
  const double raw = span / std::max(1, target);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * mag >= raw) return m * mag;
  }
  return 10 * mag;
}

}  // namespace

GanttWidget::GanttWidget(TimelineModel* model, QWidget* parent)
    : QWidget(parent), m_model(model), m_scroll(new QScrollBar(Qt::Vertical, this)) {
  setMouseTracking(true);
  setFocusPolicy(Qt::StrongFocus);
  m_scroll->hide();
  connect(m_scroll, &QScrollBar::valueChanged, this, qOverload<>(&QWidget::update));
  connect(m_model, &TimelineModel::timelineChanged, this, [this] {
    zoomToFit();
    updateScrollBar();
  });
  if (m_model->timeline()) zoomToFit();  // a model filled before the widget was made
}

void GanttWidget::setOverlay(TimelineModel* overlay) {
  if (m_overlay) disconnect(m_overlay, nullptr, this, nullptr);
  m_overlay = overlay;
  if (m_overlay) connect(m_overlay, &TimelineModel::timelineChanged, this, qOverload<>(&QWidget::update));
  update();
}

void GanttWidget::setTitle(const QString& title) {
  m_title = title;
  update();
}

QRect GanttWidget::plotRect() const {
  const int scrollW = m_scroll->isVisible() ? m_scroll->width() : 0;
  return {kGutter, kAxis, std::max(10, width() - kGutter - scrollW - 4), std::max(10, height() - kAxis - 4)};
}

int GanttWidget::rowHeight() const {
  const auto rows = static_cast<int>(m_model->ganttIndex().rows().size());
  if (rows == 0) return kMaxRow;
  return std::clamp(plotRect().height() / rows, kMinRow, kMaxRow);
}

int GanttWidget::firstVisibleRow() const { return m_scroll->isVisible() ? m_scroll->value() : 0; }

double GanttWidget::nsPerPixel() const { return (m_t1 - m_t0) / std::max(1, plotRect().width()); }

void GanttWidget::updateScrollBar() {
  const auto rows = static_cast<int>(m_model->ganttIndex().rows().size());
  const int visible = std::max(1, (height() - kAxis - 4) / kMinRow);
  const bool needed = rows > visible;
  m_scroll->setVisible(needed);
  if (needed) {
    m_scroll->setGeometry(width() - 14, kAxis, 14, height() - kAxis);
    m_scroll->setRange(0, rows - visible);
    m_scroll->setPageStep(visible);
  }
}

void GanttWidget::setTimeRange(double t0, double t1) {
  if (!(t1 > t0)) t1 = t0 + 1;
  if (t0 == m_t0 && t1 == m_t1) return;
  m_t0 = t0;
  m_t1 = t1;
  update();
  emit timeRangeChanged(m_t0, m_t1);
}

void GanttWidget::zoomToFit() {
  const auto& idx = m_model->ganttIndex();
  double start = static_cast<double>(idx.startNs()), end = static_cast<double>(idx.endNs());
  if (m_overlay && m_overlay->timeline()) end = std::max(end, static_cast<double>(m_overlay->ganttIndex().endNs()));
  const double margin = (end - start) * 0.01;
  setTimeRange(start - margin, end + margin);
}

void GanttWidget::zoom(double factor, double anchor) {
  const double t0 = anchor - (anchor - m_t0) / factor;
  const double t1 = anchor + (m_t1 - anchor) / factor;
  if (t1 - t0 < 10) return;  // 10 ns across the widget is as far as it goes
  setTimeRange(t0, t1);
}

void GanttWidget::pan(double delta) { setTimeRange(m_t0 + delta, m_t1 + delta); }

void GanttWidget::paintEvent(QPaintEvent*) {
  QPainter p(this);
  p.fillRect(rect(), palette().base());
  const QRect plot = plotRect();
  QFont bold = font();
  bold.setBold(true);
  p.setFont(bold);
  p.setPen(palette().color(QPalette::WindowText));
  p.drawText(QRect(4, 0, width() - 8, 18), Qt::AlignLeft | Qt::AlignVCenter, m_title);
  p.setFont(font());
  m_lastDrawn = 0;

  const core::Timeline* timeline = m_model->timeline();
  if (!timeline) {
    p.setPen(palette().color(QPalette::PlaceholderText));
    p.drawText(plot, Qt::AlignCenter | Qt::TextWordWrap, tr("no timeline for this strategy"));
    return;
  }
  // Time axis.
  const double scale = plot.width() / (m_t1 - m_t0);
  const double step = niceStep(m_t1 - m_t0, std::max(2, plot.width() / 110));
  p.setPen(palette().color(QPalette::WindowText));
  for (double t = std::ceil(m_t0 / step) * step; t <= m_t1; t += step) {
    const int x = plot.left() + static_cast<int>((t - m_t0) * scale);
    p.setPen(palette().color(QPalette::Midlight));
    p.drawLine(x, kAxis - 4, x, plot.bottom());
    p.setPen(palette().color(QPalette::WindowText));
    p.drawText(QRect(x - 50, 18, 100, 16), Qt::AlignHCenter | Qt::AlignVCenter, formatNanos(t));
  }

  const auto& rows = m_model->ganttIndex().rows();
  const int rh = rowHeight();
  const int first = firstVisibleRow();
  const int numVisible = std::min(static_cast<int>(rows.size()) - first, plot.height() / rh + 1);
  const auto t0 = static_cast<std::int64_t>(std::floor(m_t0));
  const auto t1 = static_cast<std::int64_t>(std::ceil(m_t1));
  const bool overlay = m_overlay && m_overlay->timeline();
  const int labelEvery = std::max(1, 14 / rh);
  p.setClipRect(QRect(0, plot.top(), width(), plot.height()));

  auto drawRow = [&](const core::Timeline& tl, const GanttRow& row, int top, int h, bool hatched) {
    const auto [a, b] = TimelineIndex::visible(tl, row, t0, t1);
    const auto& spans = tl.ranks[row.rank_index].spans;
    int lastPixel = std::numeric_limits<int>::min();
    for (std::size_t i = a; i < b; ++i) {
      const auto& s = spans[static_cast<std::size_t>(row.order[i])];
      const double x0 = plot.left() + (static_cast<double>(s.start_ns) - m_t0) * scale;
      const double x1 = plot.left() + (static_cast<double>(s.end_ns) - m_t0) * scale;
      const QColor c = stageColor(QString::fromStdString(s.stage));
      if (x1 - x0 < 1.0) {
        const int px = static_cast<int>(x0);
        if (px == lastPixel) continue;  // this pixel column is drawn already
        lastPixel = px;
        p.fillRect(QRect(px, top, 1, h), c);
        ++m_lastDrawn;
        continue;
      }
      const QRectF box(std::max(x0, double(plot.left()) - 1), top,
                       std::min(x1, double(plot.right()) + 1) - std::max(x0, double(plot.left()) - 1), h);
      if (hatched) {
        p.fillRect(box, c.lighter(150));
        p.fillRect(box, QBrush(c.darker(160), Qt::BDiagPattern));
      } else {
        p.fillRect(box, c);
      }
      lastPixel = static_cast<int>(x1);
      ++m_lastDrawn;
      if (box.width() > 48 && h >= 12) {
        p.setPen(hatched ? QColor(Qt::black) : QColor(Qt::white));
        p.drawText(box.adjusted(3, 0, -2, 0), Qt::AlignLeft | Qt::AlignVCenter,
                   p.fontMetrics().elidedText(QString::fromStdString(s.stage), Qt::ElideRight, int(box.width()) - 5));
      }
    }
  };

  for (int k = 0; k < numVisible; ++k) {
    const int r = first + k;
    const GanttRow& row = rows[static_cast<std::size_t>(r)];
    const int top = plot.top() + k * rh;
    if (row.lane == core::Lane::kCompute && row.rank % 2 == 1) {  // bands of alternate ranks
      p.fillRect(QRect(plot.left(), top, plot.width(), 2 * rh), palette().alternateBase());
    }
    const int barH = std::max(1, rh - (rh >= 8 ? 2 : 0));
    const int mainH = overlay ? std::max(1, barH * 3 / 5) : barH;
    drawRow(*timeline, row, top + (rh >= 8 ? 1 : 0), mainH, false);
    if (overlay) {
      const int orow = m_overlay->ganttIndex().findRow(row.rank, row.lane);
      if (orow >= 0) {
        drawRow(*m_overlay->timeline(), m_overlay->ganttIndex().rows()[static_cast<std::size_t>(orow)],
                top + (rh >= 8 ? 1 : 0) + mainH, std::max(1, barH - mainH), true);
      }
    }
    // Labels in the gutter.
    if (rh >= 10 || (row.lane == core::Lane::kCompute && (row.rank % labelEvery) == 0)) {
      p.setPen(palette().color(QPalette::WindowText));
      const QString label = rh >= 10 ? tr("r%1 %2").arg(row.rank).arg(QLatin1String(core::to_string(row.lane)))
                                     : tr("rank %1").arg(row.rank);
      p.drawText(QRect(2, top, kGutter - 6, std::max(rh, 12)), Qt::AlignRight | Qt::AlignVCenter, label);
    }
  }
  p.setClipping(false);
  p.setPen(palette().color(QPalette::Mid));
  p.drawRect(plot.adjusted(0, 0, -1, -1));
}

void GanttWidget::resizeEvent(QResizeEvent*) { updateScrollBar(); }

void GanttWidget::wheelEvent(QWheelEvent* event) {
  const QRect plot = plotRect();
  const double delta = event->angleDelta().y() != 0 ? event->angleDelta().y() : event->angleDelta().x();
  if (event->modifiers() & Qt::ShiftModifier) {
    pan(-delta / 120.0 * 0.1 * (m_t1 - m_t0));
  } else if (m_scroll->isVisible() && !(event->modifiers() & Qt::ControlModifier) && event->angleDelta().x() == 0 &&
             event->position().x() < plot.left()) {
    m_scroll->setValue(m_scroll->value() - static_cast<int>(delta / 40));  // over the labels: scroll rows
  } else {
    const double anchor = m_t0 + (event->position().x() - plot.left()) * nsPerPixel();
    zoom(std::pow(1.0015, delta), anchor);
  }
  event->accept();
}

void GanttWidget::mousePressEvent(QMouseEvent* event) {
  if (event->button() == Qt::LeftButton) {
    m_dragging = true;
    m_dragStart = event->position().toPoint();
    m_dragT0 = m_t0;
    setCursor(Qt::ClosedHandCursor);
  }
}

void GanttWidget::mouseMoveEvent(QMouseEvent* event) {
  if (m_dragging) {
    const double width = m_t1 - m_t0;
    const double t0 = m_dragT0 - (event->position().x() - m_dragStart.x()) * nsPerPixel();
    setTimeRange(t0, t0 + width);
    return;
  }
  const QString tip = toolTipAt(event->position().toPoint());
  if (tip.isEmpty()) {
    QToolTip::hideText();
  } else {
    QToolTip::showText(event->globalPosition().toPoint(), tip, this);
  }
}

void GanttWidget::mouseReleaseEvent(QMouseEvent*) {
  m_dragging = false;
  unsetCursor();
}

void GanttWidget::keyPressEvent(QKeyEvent* event) {
  const double mid = (m_t0 + m_t1) / 2;
  switch (event->key()) {
    case Qt::Key_Plus:
    case Qt::Key_Equal:
      zoom(1.5, mid);
      break;
    case Qt::Key_Minus:
      zoom(1 / 1.5, mid);
      break;
    case Qt::Key_Left:
      pan(-(m_t1 - m_t0) * 0.1);
      break;
    case Qt::Key_Right:
      pan((m_t1 - m_t0) * 0.1);
      break;
    case Qt::Key_0:
    case Qt::Key_Home:
      zoomToFit();
      break;
    default:
      QWidget::keyPressEvent(event);
      return;
  }
}

QString GanttWidget::toolTipAt(const QPoint& pos) const {
  const QRect plot = plotRect();
  const core::Timeline* timeline = m_model->timeline();
  if (!timeline || !plot.contains(pos)) return {};
  const int rh = rowHeight();
  const int r = firstVisibleRow() + (pos.y() - plot.top()) / rh;
  const auto& rows = m_model->ganttIndex().rows();
  if (r < 0 || r >= static_cast<int>(rows.size())) return {};
  const GanttRow& row = rows[static_cast<std::size_t>(r)];
  const bool overlay = m_overlay && m_overlay->timeline();
  const int inRow = (pos.y() - plot.top()) % rh;
  const bool lower = overlay && inRow > rh * 3 / 5;
  const core::Timeline& tl = lower ? *m_overlay->timeline() : *timeline;
  const GanttRow* target = &row;
  if (lower) {
    const int o = m_overlay->ganttIndex().findRow(row.rank, row.lane);
    if (o < 0) return {};
    target = &m_overlay->ganttIndex().rows()[static_cast<std::size_t>(o)];
  }
  // Within two pixels, so that thin spans can be hovered too.
  const double t = m_t0 + (pos.x() - plot.left()) * nsPerPixel();
  const double slack = 2 * nsPerPixel();
  const auto [a, b] =
      TimelineIndex::visible(tl, *target, static_cast<std::int64_t>(t - slack), static_cast<std::int64_t>(t + slack));
  const auto& spans = tl.ranks[target->rank_index].spans;
  for (std::size_t i = a; i < b; ++i) {
    const auto& s = spans[static_cast<std::size_t>(target->order[i])];
    if (static_cast<double>(s.start_ns) <= t + slack && static_cast<double>(s.end_ns) >= t - slack) {
      return (lower ? tr("measured (%1)\n").arg(QString::fromStdString(tl.source)) : QString()) +
             TimelineModel::describeSpan(s, row.rank);
    }
  }
  return {};
}

}  // namespace hpsim::gui
