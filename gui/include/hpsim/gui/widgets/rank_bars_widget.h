#pragma once
// RankBarsWidget: per rank, the bytes EP and HP send and receive off the rank in the selected
// phase (RankTrafficModel), as grouped bars; above 64 ranks as two overlaid profiles.

#include <QWidget>

namespace hpsim::gui {

class RankTrafficModel;

class RankBarsWidget : public QWidget {
  Q_OBJECT

 public:
  explicit RankBarsWidget(RankTrafficModel* model, QWidget* parent = nullptr);
  QSize sizeHint() const override { return {760, 220}; }

 protected:
  void paintEvent(QPaintEvent* event) override;
  void mouseMoveEvent(QMouseEvent* event) override;

 private:
  void paintPanel(QPainter& p, const QRect& area, bool sent);
  int rankAt(const QPoint& pos) const;
  QRect panelRect(bool sent) const;

  RankTrafficModel* m_model;
};

}  // namespace hpsim::gui
