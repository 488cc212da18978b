#include "hpsim/gui/widgets/rank_bars_widget.h"

#include <algorithm>

#include <QMouseEvent>
#include <QPainter>
#include <QToolTip>

#include "hpsim/gui/models/format.h"
#include "hpsim/gui/models/traffic_models.h"
#include "hpsim/gui/widgets/palette.h"

namespace hpsim::gui {
namespace {

constexpr int kLeft = 70, kRight = 10, kTop = 22, kBottom = 18;

}  // namespace

RankBarsWidget::RankBarsWidget(RankTrafficModel* model, QWidget* parent) : QWidget(parent), m_model(model) {
  setMouseTracking(true);
  setMinimumHeight(160);
  connect(m_model, &QAbstractItemModel::modelReset, this, qOverload<>(&QWidget::update));
}

QRect RankBarsWidget::panelRect(bool sent) const {
  const int half = width() / 2;
  return sent ? QRect(kLeft, kTop, half - kLeft - kRight, height() - kTop - kBottom)
              : QRect(half + kLeft, kTop, half - kLeft - kRight, height() - kTop - kBottom);
}

void RankBarsWidget::paintEvent(QPaintEvent*) {
  QPainter p(this);
  p.fillRect(rect(), palette().window());
  paintPanel(p, panelRect(true), true);
  paintPanel(p, panelRect(false), false);
}

void RankBarsWidget::paintPanel(QPainter& p, const QRect& area, bool sent) {
  const int n = m_model->rowCount();
  p.setPen(palette().color(QPalette::WindowText));
  QFont bold = font();
  bold.setBold(true);
  p.setFont(bold);
  p.drawText(QRect(area.left() - kLeft, 2, area.width() + kLeft, kTop - 4), Qt::AlignHCenter,
             sent ? tr("Bytes sent per rank") : tr("Bytes received per rank"));
  p.setFont(font());
  if (n == 0 || m_model->maxBytes() <= 0) {
    p.setPen(palette().color(QPalette::PlaceholderText));
    p.drawText(area, Qt::AlignCenter, n == 0 ? tr("no result") : tr("nothing leaves any rank"));
    return;
  }
  const double max = m_model->maxBytes() * 1.05;
  // Grid and axis labels.
  for (int i = 0; i <= 4; ++i) {
    const int y = area.bottom() - i * area.height() / 4;
    p.setPen(palette().color(QPalette::Midlight));
    p.drawLine(area.left(), y, area.right(), y);
    p.setPen(palette().color(QPalette::WindowText));
    p.drawText(QRect(area.left() - kLeft, y - 8, kLeft - 4, 16), Qt::AlignRight | Qt::AlignVCenter,
               formatBytes(max * i / 4));
  }
  const int epCol = sent ? RankTrafficModel::kEpSentColumn : RankTrafficModel::kEpReceivedColumn;
  const int hpCol = sent ? RankTrafficModel::kHpSentColumn : RankTrafficModel::kHpReceivedColumn;
  auto value = [&](int r, int c) { return m_model->data(m_model->index(r, c), RankTrafficModel::kBytesRole); };
  const double slot = area.width() / double(n);
  const bool bars = slot >= 4;
  for (int s = 0; s < 2; ++s) {
    const int col = s == 0 ? epCol : hpCol;
    const QColor color = strategyColor(s == 0 ? QStringLiteral("ep") : QStringLiteral("hp"));
    if (bars) {
      for (int r = 0; r < n; ++r) {
        const QVariant v = value(r, col);
        if (!v.isValid()) continue;
        const double h = v.toDouble() / max * area.height();
        const double x = area.left() + r * slot + slot * (0.1 + 0.4 * s);
        p.fillRect(QRectF(x, area.bottom() - h, slot * 0.4, h), color);
      }
    } else {
      QPolygonF line;
      for (int r = 0; r < n; ++r) {
        const QVariant v = value(r, col);
        if (!v.isValid()) continue;
        line << QPointF(area.left() + (r + 0.5) * slot, area.bottom() - v.toDouble() / max * area.height());
      }
      p.setRenderHint(QPainter::Antialiasing, true);
      p.setPen(QPen(color, 1.5));
      p.drawPolyline(line);
      p.setRenderHint(QPainter::Antialiasing, false);
    }
  }
  // Legend on the title row, right of the panel: never over a bar.
  int lx = area.right() - 90;
  for (int s = 0; s < 2; ++s) {
    p.fillRect(QRect(lx, 5, 10, 10), strategyColor(s == 0 ? QStringLiteral("ep") : QStringLiteral("hp")));
    p.setPen(palette().color(QPalette::WindowText));
    p.drawText(QRect(lx + 14, 0, 40, kTop - 2), Qt::AlignLeft | Qt::AlignVCenter, s == 0 ? tr("EP") : tr("HP"));
    lx += 45;
  }
  p.drawText(QRect(area.left(), area.bottom() + 2, area.width(), kBottom), Qt::AlignHCenter,
             tr("rank 0 … %1").arg(n - 1));
}

int RankBarsWidget::rankAt(const QPoint& pos) const {
  const int n = m_model->rowCount();
  for (bool sent : {true, false}) {
    const QRect area = panelRect(sent);
    if (n > 0 && area.contains(pos))
      return std::min(n - 1, static_cast<int>((pos.x() - area.left()) * n / area.width()));
  }
  return -1;
}

void RankBarsWidget::mouseMoveEvent(QMouseEvent* event) {
  const int r = rankAt(event->position().toPoint());
  if (r < 0) {
    QToolTip::hideText();
    return;
  }
  QStringList lines{tr("rank %1").arg(r)};
  for (int c = RankTrafficModel::kEpSentColumn; c < RankTrafficModel::kNumColumns; ++c) {
    const QVariant v = m_model->data(m_model->index(r, c), Qt::ToolTipRole);
    if (v.isValid()) lines << m_model->headerData(c, Qt::Horizontal).toString() + QStringLiteral(": ") + v.toString();
  }
  QToolTip::showText(event->globalPosition().toPoint(), lines.join(QLatin1Char('\n')), this);
}

}  // namespace hpsim::gui
