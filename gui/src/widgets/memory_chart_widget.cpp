#include "hpsim/gui/widgets/memory_chart_widget.h"

#include <algorithm>

#include <QMouseEvent>
#include <QPainter>
#include <QToolTip>

#include "hpsim/gui/models/format.h"
#include "hpsim/gui/models/memory_model.h"
#include "hpsim/gui/widgets/palette.h"

namespace hpsim::gui {
namespace {

constexpr int kLeft = 64, kRight = 12, kTop = 40, kBottom = 24;

}  // namespace

MemoryChartWidget::MemoryChartWidget(MemoryModel* model, QWidget* parent) : QWidget(parent), m_model(model) {
  setMouseTracking(true);
  connect(m_model, &QAbstractItemModel::modelReset, this, qOverload<>(&QWidget::update));
}

void MemoryChartWidget::setTitle(const QString& title) {
  m_title = title;
  update();
}

void MemoryChartWidget::setScaleMax(double bytes) {
  m_max = bytes;
  update();
}

double MemoryChartWidget::naturalMax() const {
  double best = m_model->capacityBytes();
  for (const auto& r : m_model->report().ranks) best = std::max(best, r.peak());
  return best;
}

QRect MemoryChartWidget::plotRect() const {
  return {kLeft, kTop, std::max(10, width() - kLeft - kRight), std::max(10, height() - kTop - kBottom)};
}

void MemoryChartWidget::paintEvent(QPaintEvent*) {
  QPainter p(this);
  p.fillRect(rect(), palette().window());
  const QRect plot = plotRect();
  QFont bold = font();
  bold.setBold(true);
  p.setFont(bold);
  p.setPen(palette().color(QPalette::WindowText));
  p.drawText(QRect(0, 2, width(), 18), Qt::AlignHCenter, m_title);
  p.setFont(font());
  const auto& ranks = m_model->report().ranks;
  if (!m_model->hasReport() || ranks.empty()) {
    p.setPen(palette().color(QPalette::PlaceholderText));
    p.drawText(plot, Qt::AlignCenter, tr("no result"));
    return;
  }
  const double max = (m_max > 0 ? m_max : naturalMax()) * 1.08;
  const auto over = m_model->report().num_over_capacity();
  p.setPen(over > 0 ? overCapacityColor() : palette().color(QPalette::WindowText));
  p.drawText(QRect(0, 20, width(), 16), Qt::AlignHCenter,
             over > 0 ? tr("%1 of %2 ranks over capacity").arg(over).arg(ranks.size())
                      : tr("largest peak %1 of %2 capacity")
                            .arg(formatBytes(m_model->report().max_peak()), formatBytes(m_model->capacityBytes())));
  for (int i = 0; i <= 4; ++i) {
    const int y = plot.bottom() - i * plot.height() / 4;
    p.setPen(palette().color(QPalette::Midlight));
    p.drawLine(plot.left(), y, plot.right(), y);
    p.setPen(palette().color(QPalette::WindowText));
    p.drawText(QRect(0, y - 8, kLeft - 4, 16), Qt::AlignRight | Qt::AlignVCenter, formatBytes(max * i / 4));
  }
  const int n = static_cast<int>(ranks.size());
  const double slot = plot.width() / double(n);
  const double barW = slot >= 3 ? slot * 0.75 : slot;
  for (int r = 0; r < n; ++r) {
    const double x = plot.left() + r * slot + (slot - barW) / 2;
    double base = 0;
    for (int part = 0; part < MemoryModel::kNumParts; ++part) {
      const double v = m_model->part(r, part);
      const double y0 = plot.bottom() - base / max * plot.height();
      const double y1 = plot.bottom() - (base + v) / max * plot.height();
      p.fillRect(QRectF(x, y1, barW, y0 - y1), memoryPartColor(part));
      base += v;
    }
    if (m_model->capacityBytes() > 0 && ranks[static_cast<std::size_t>(r)].peak() > m_model->capacityBytes()) {
      const double top = plot.bottom() - base / max * plot.height();
      p.setRenderHint(QPainter::Antialiasing, true);
      p.setPen(Qt::NoPen);
      p.setBrush(overCapacityColor());
      const double cx = x + barW / 2, s = std::clamp(slot * 0.4, 3.0, 7.0);
      p.drawPolygon(
          QPolygonF{QPointF(cx - s, top - 2 * s - 2), QPointF(cx + s, top - 2 * s - 2), QPointF(cx, top - 2)});
      p.setRenderHint(QPainter::Antialiasing, false);
      p.setBrush(Qt::NoBrush);
    }
  }
  if (m_model->capacityBytes() > max) {
    // Capacity far above every peak: say so rather than squash the bars.
    p.setPen(overCapacityColor());
    p.drawText(QRect(plot.left() + 4, plot.top() - 2, plot.width() - 8, 14), Qt::AlignRight | Qt::AlignVCenter,
               tr("capacity %1 is above the scale ↑").arg(formatBytes(m_model->capacityBytes())));
  } else if (m_model->capacityBytes() > 0) {
    const int y = plot.bottom() - static_cast<int>(m_model->capacityBytes() / max * plot.height());
    p.setPen(QPen(overCapacityColor(), 1.5, Qt::DashLine));
    p.drawLine(plot.left(), y, plot.right(), y);
    p.drawText(QRect(plot.left() + 4, y - 16, plot.width() - 8, 14), Qt::AlignRight | Qt::AlignVCenter,
               tr("capacity %1").arg(formatBytes(m_model->capacityBytes())));
  }
  p.setPen(palette().color(QPalette::WindowText));
  p.drawText(QRect(plot.left(), plot.bottom() + 4, plot.width(), 16), Qt::AlignHCenter,
             n <= 16 ? tr("rank 0 … %1").arg(n - 1) : tr("%1 ranks").arg(n));
}

void MemoryChartWidget::mouseMoveEvent(QMouseEvent* event) {
  const QRect plot = plotRect();
  const int n = m_model->rowCount();
  if (n == 0 || !plot.contains(event->position().toPoint())) {
    QToolTip::hideText();
    return;
  }
  const int r = std::min(n - 1, static_cast<int>((event->position().x() - plot.left()) * n / plot.width()));
  QStringList lines{
      tr("rank %1, peak %2").arg(r).arg(formatExactBytes(m_model->report().ranks[static_cast<std::size_t>(r)].peak()))};
  for (int part = MemoryModel::kNumParts - 1; part >= 0; --part) {
    lines << MemoryModel::partName(part) + QStringLiteral(": ") + formatBytes(m_model->part(r, part));
  }
  QToolTip::showText(event->globalPosition().toPoint(), lines.join(QLatin1Char('\n')), this);
}

MemoryLegendWidget::MemoryLegendWidget(QWidget* parent) : QWidget(parent) { setFixedHeight(24); }

void MemoryLegendWidget::paintEvent(QPaintEvent*) {
  QPainter p(this);
  int x = 8;
  for (int part = 0; part < MemoryModel::kNumParts; ++part) {
    p.fillRect(QRect(x, 6, 12, 12), memoryPartColor(part));
    p.setPen(palette().color(QPalette::WindowText));
    const QString name = MemoryModel::partName(part);
    p.drawText(QRect(x + 16, 0, 140, 24), Qt::AlignLeft | Qt::AlignVCenter, name);
    x += 24 + p.fontMetrics().horizontalAdvance(name);
  }
  p.setPen(QPen(overCapacityColor(), 1.5, Qt::DashLine));
  p.drawLine(x, 12, x + 24, 12);
  p.setPen(palette().color(QPalette::WindowText));
  p.drawText(QRect(x + 30, 0, 200, 24), Qt::AlignLeft | Qt::AlignVCenter, tr("GPU capacity   ▼ over capacity"));
}

}  // namespace hpsim::gui
