#pragma once
// GanttWidget: a TimelineModel as one row per (rank, lane), time left to right. Wheel zooms
// around the cursor, dragging pans, a vertical scroll bar appears when the rows do not fit.
// Only spans in the visible window are visited (TimelineIndex's binary searches), and spans
// narrower than a pixel collapse into one pixel column, so a frame costs O(visible pixels),
// not O(spans). An optional overlay (a measured timeline) is drawn hatched in the lower part of
// each row, so simulated and executed compare at a glance.

#include <QWidget>

class QScrollBar;

namespace hpsim::gui {

class TimelineModel;

class GanttWidget : public QWidget {
  Q_OBJECT

 public:
  explicit GanttWidget(TimelineModel* model, QWidget* parent = nullptr);

  void setOverlay(TimelineModel* overlay);
  void setTitle(const QString& title);
  // Visible window in nanoseconds.
  double viewStart() const { return m_t0; }
  double viewEnd() const { return m_t1; }
  void setTimeRange(double t0_ns, double t1_ns);
  void zoomToFit();
  void zoom(double factor, double anchor_ns);
  void pan(double delta_ns);
  // Number of spans drawn by the last paint (spans merged into a pixel column count once).
  int lastDrawnSpans() const { return m_lastDrawn; }
  QSize sizeHint() const override { return {900, 300}; }
  QSize minimumSizeHint() const override { return {300, 120}; }

 signals:
  void timeRangeChanged(double t0_ns, double t1_ns);

 protected:
  void paintEvent(QPaintEvent* event) override;
  void resizeEvent(QResizeEvent* event) override;
  void wheelEvent(QWheelEvent* event) override;
  void mousePressEvent(QMouseEvent* event) override;
  void mouseMoveEvent(QMouseEvent* event) override;
  void mouseReleaseEvent(QMouseEvent* event) override;
  void keyPressEvent(QKeyEvent* event) override;

 private:
  QRect plotRect() const;
  int rowHeight() const;
  int firstVisibleRow() const;
  double nsPerPixel() const;
  void updateScrollBar();
  QString toolTipAt(const QPoint& pos) const;

  TimelineModel* m_model;
  TimelineModel* m_overlay = nullptr;
  QScrollBar* m_scroll;
  QString m_title;
  double m_t0 = 0;
  double m_t1 = 1;
  bool m_dragging = false;
  QPoint m_dragStart;
  double m_dragT0 = 0;
  int m_lastDrawn = 0;
};

}  // namespace hpsim::gui
