#include "hpsim/gui/widgets/heatmap_widget.h"

#include <algorithm>
#include <cmath>

#include <QMouseEvent>
#include <QPainter>
#include <QToolTip>

#include "hpsim/gui/models/format.h"
#include "hpsim/gui/models/traffic_models.h"
#include "hpsim/gui/widgets/palette.h"

namespace hpsim::gui {

HeatmapWidget::HeatmapWidget(TrafficModel* model, QWidget* parent) : QWidget(parent), m_model(model) {
  setMouseTracking(true);
  setAttribute(Qt::WA_OpaquePaintEvent, false);
  connect(m_model, &QAbstractItemModel::modelReset, this, [this] {
    m_imageDirty = true;
    update();
  });
}

void HeatmapWidget::setScaleMax(double bytes) {
  if (bytes == m_scaleMax) return;
  m_scaleMax = bytes;
  m_imageDirty = true;
  update();
}

void HeatmapWidget::setTitle(const QString& title) {
  m_title = title;
  update();
}

void HeatmapWidget::rebuildImage() {
  m_imageDirty = false;
  const auto* m = m_model->matrix();
  if (!m || m->num_ranks <= 0) {
    m_image = QImage();
    return;
  }
  const int w = static_cast<int>(m->num_ranks);
  m_image = QImage(w, w, QImage::Format_RGB32);
  // One lookup table instead of a colour computation per cell: 1,024 ranks are a million cells.
  constexpr int kLevels = 256;
  QRgb lut[kLevels];
  for (int i = 0; i < kLevels; ++i) lut[i] = sequentialColor(i / double(kLevels - 1)).rgb();
  const QRgb local = localCellColor().rgb();
  const double scale = m_scaleMax > 0 ? (kLevels - 1) / m_scaleMax : 0.0;
  for (int src = 0; src < w; ++src) {
    auto* line = reinterpret_cast<QRgb*>(m_image.scanLine(src));
    const double* row = m->bytes.data() + static_cast<std::size_t>(src) * static_cast<std::size_t>(w);
    for (int dst = 0; dst < w; ++dst) {
      if (src == dst) {
        line[dst] = local;
        continue;
      }
      const int level = std::clamp(static_cast<int>(std::lround(row[dst] * scale)), 0, kLevels - 1);
      line[dst] = lut[level];
    }
  }
}

QRect HeatmapWidget::plotRect() const {
  const int top = 26, left = 46, bottom = 30, right = 10;
  const int side = std::max(10, std::min(width() - left - right, height() - top - bottom));
  const int x = left + (width() - left - right - side) / 2;
  return {x, top, side, side};
}

QPoint HeatmapWidget::cellAt(const QPoint& pos) const {
  const auto* m = m_model->matrix();
  const QRect r = plotRect();
  if (!m || !r.contains(pos)) return {-1, -1};
  const auto w = static_cast<double>(m->num_ranks);
  const int dst = std::min(static_cast<int>((pos.x() - r.left()) * w / r.width()), static_cast<int>(w) - 1);
  const int src = std::min(static_cast<int>((pos.y() - r.top()) * w / r.height()), static_cast<int>(w) - 1);
  return {dst, src};
}

void HeatmapWidget::paintEvent(QPaintEvent*) {
  QPainter p(this);
  p.fillRect(rect(), palette().window());
  p.setRenderHint(QPainter::Antialiasing, false);
  QFont bold = font();
  bold.setBold(true);
  p.setFont(bold);
  p.setPen(palette().color(QPalette::WindowText));
  p.drawText(QRect(0, 2, width(), 20), Qt::AlignHCenter | Qt::AlignVCenter, m_title);
  p.setFont(font());

  const QRect r = plotRect();
  const auto* m = m_model->matrix();
  if (m_imageDirty) rebuildImage();
  if (!m || m_image.isNull()) {
    p.setPen(palette().color(QPalette::PlaceholderText));
    p.drawRect(r.adjusted(0, 0, -1, -1));
    const QString why = m_model->phases().isEmpty()
                            ? tr("no result")
                            : tr("no %1 phase for %2").arg(m_model->phase(), m_model->strategy().toUpper());
    p.drawText(r, Qt::AlignCenter | Qt::TextWordWrap, why);
    return;
  }
  p.drawImage(r, m_image);  // nearest-neighbour: each cell stays a sharp block
  p.setPen(palette().color(QPalette::Mid));
  p.drawRect(r.adjusted(0, 0, -1, -1));

  // Rank ticks: a handful, at round positions.
  const int w = static_cast<int>(m->num_ranks);
  const int step = std::max(1, static_cast<int>(std::pow(2.0, std::ceil(std::log2(std::max(1.0, w / 8.0))))));
  p.setPen(palette().color(QPalette::WindowText));
  QFont small = font();
  small.setPointSizeF(std::max(6.0, font().pointSizeF() * 0.85));
  p.setFont(small);
  for (int i = 0; i < w; i += step) {
    const int x = r.left() + static_cast<int>((i + 0.5) * r.width() / w);
    const int y = r.top() + static_cast<int>((i + 0.5) * r.height() / w);
    p.drawText(QRect(x - 20, r.bottom() + 2, 40, 14), Qt::AlignHCenter | Qt::AlignTop, QString::number(i));
    p.drawText(QRect(r.left() - 44, y - 7, 40, 14), Qt::AlignRight | Qt::AlignVCenter, QString::number(i));
  }
  p.drawText(QRect(r.left(), r.bottom() + 15, r.width(), 14), Qt::AlignHCenter, tr("destination rank"));
  p.save();
  p.translate(10, r.center().y());
  p.rotate(-90);
  p.drawText(QRect(-r.height() / 2, -8, r.height(), 14), Qt::AlignHCenter, tr("source rank"));
  p.restore();

  if (m_hover.x() >= 0) {
    const int x0 = r.left() + m_hover.x() * r.width() / w, x1 = r.left() + (m_hover.x() + 1) * r.width() / w;
    const int y0 = r.top() + m_hover.y() * r.height() / w, y1 = r.top() + (m_hover.y() + 1) * r.height() / w;
    p.setPen(QPen(Qt::white, 1.5));
    p.setBrush(Qt::NoBrush);
    p.drawRect(QRect(QPoint(x0, y0), QPoint(std::max(x0 + 2, x1), std::max(y0 + 2, y1))));
  }
}

void HeatmapWidget::mouseMoveEvent(QMouseEvent* event) {
  const QPoint cell = cellAt(event->position().toPoint());
  if (cell != m_hover) {
    m_hover = cell;
    update();
  }
  if (cell.x() < 0) {
    QToolTip::hideText();
    return;
  }
  const QModelIndex index = m_model->index(cell.y(), cell.x());
  QToolTip::showText(event->globalPosition().toPoint(), m_model->data(index, Qt::ToolTipRole).toString(), this);
  emit cellHovered(cell.y(), cell.x(), m_model->data(index, TrafficModel::kBytesRole).toDouble());
}

void HeatmapWidget::leaveEvent(QEvent*) {
  m_hover = {-1, -1};
  update();
}

ColorLegendWidget::ColorLegendWidget(QWidget* parent) : QWidget(parent) {
  setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Fixed);
  setFixedHeight(46);
}

void ColorLegendWidget::setScaleMax(double bytes) {
  m_max = bytes;
  update();
}

void ColorLegendWidget::paintEvent(QPaintEvent*) {
  QPainter p(this);
  const int swatch = 150;
  const QRect bar(60, 4, std::max(40, width() - 60 - swatch - 20), 14);
  for (int x = 0; x < bar.width(); ++x) {
    p.setPen(sequentialColor(x / double(std::max(1, bar.width() - 1))));
    p.drawLine(bar.left() + x, bar.top(), bar.left() + x, bar.bottom());
  }
  p.setPen(palette().color(QPalette::Mid));
  p.drawRect(bar.adjusted(0, 0, -1, -1));
  p.setPen(palette().color(QPalette::WindowText));
  p.drawText(QRect(0, bar.top(), 56, bar.height()), Qt::AlignRight | Qt::AlignVCenter, tr("bytes"));
  for (int i = 0; i <= 4; ++i) {
    const int x = bar.left() + i * (bar.width() - 1) / 4;
    p.drawLine(x, bar.bottom(), x, bar.bottom() + 3);
    const Qt::Alignment a = i == 0 ? Qt::AlignLeft : (i == 4 ? Qt::AlignRight : Qt::AlignHCenter);
    const QRect label =
        i == 0 ? QRect(x, bar.bottom() + 4, 80, 16)
               : (i == 4 ? QRect(x - 80, bar.bottom() + 4, 80, 16) : QRect(x - 40, bar.bottom() + 4, 80, 16));
    p.drawText(label, a | Qt::AlignTop, formatBytes(m_max * i / 4.0));
  }
  const QRect local(bar.right() + 20, bar.top(), 14, 14);
  p.fillRect(local, localCellColor());
  p.drawText(QRect(local.right() + 6, local.top() - 2, swatch, 18), Qt::AlignLeft | Qt::AlignVCenter,
             tr("stays on the rank"));
}

}  // namespace hpsim::gui
