#pragma once
// HeatmapWidget: the W x W matrix of a TrafficModel as an image (one pixel per cell, scaled to
// the widget), colour = bytes on a scale shared with the other strategy's map. The diagonal
// (bytes that stay on the rank) is grey. Hovering shows the exact bytes of the cell.

#include <QImage>
#include <QWidget>

namespace hpsim::gui {

class TrafficModel;

class HeatmapWidget : public QWidget {
  Q_OBJECT

 public:
  explicit HeatmapWidget(TrafficModel* model, QWidget* parent = nullptr);

  void setScaleMax(double bytes);
  double scaleMax() const { return m_scaleMax; }
  void setTitle(const QString& title);
  // The cell under a widget position, or (-1, -1).
  QPoint cellAt(const QPoint& pos) const;
  QSize sizeHint() const override { return {380, 400}; }
  QSize minimumSizeHint() const override { return {160, 180}; }

 signals:
  void cellHovered(int src, int dst, double bytes);

 protected:
  void paintEvent(QPaintEvent* event) override;
  void mouseMoveEvent(QMouseEvent* event) override;
  void leaveEvent(QEvent* event) override;

 private:
  void rebuildImage();
  QRect plotRect() const;

  TrafficModel* m_model;
  QString m_title;
  double m_scaleMax = 0;
  QImage m_image;
  bool m_imageDirty = true;  // rebuilt at the next paint, once however many changes came before
  QPoint m_hover{-1, -1};
};

// A horizontal colour bar from 0 to the shared maximum, with byte labels, and the diagonal swatch.
class ColorLegendWidget : public QWidget {
  Q_OBJECT

 public:
  explicit ColorLegendWidget(QWidget* parent = nullptr);
  void setScaleMax(double bytes);
  QSize sizeHint() const override { return {420, 46}; }

 protected:
  void paintEvent(QPaintEvent* event) override;

 private:
  double m_max = 0;
};

}  // namespace hpsim::gui
