#pragma once
// MemoryChartWidget: one strategy's per-rank peak as stacked bars of its parts (MemoryModel),
// the GPU's capacity as a dashed line, and ranks over capacity flagged in red. The y scale can
// be shared with the other strategy's chart.

#include <QWidget>

namespace hpsim::gui {

class MemoryModel;

class MemoryChartWidget : public QWidget {
  Q_OBJECT

 public:
  explicit MemoryChartWidget(MemoryModel* model, QWidget* parent = nullptr);
  void setTitle(const QString& title);
  void setScaleMax(double bytes);
  // Largest of the peaks and the capacity: what the scale must reach.
  double naturalMax() const;
  QSize sizeHint() const override { return {420, 320}; }

 protected:
  void paintEvent(QPaintEvent* event) override;
  void mouseMoveEvent(QMouseEvent* event) override;

 private:
  QRect plotRect() const;
  MemoryModel* m_model;
  QString m_title;
  double m_max = 0;
};

// The colour key of the memory parts.
class MemoryLegendWidget : public QWidget {
  Q_OBJECT

 public:
  explicit MemoryLegendWidget(QWidget* parent = nullptr);
  QSize sizeHint() const override { return {760, 24}; }

 protected:
  void paintEvent(QPaintEvent* event) override;
};

}  // namespace hpsim::gui
