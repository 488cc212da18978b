#pragma once
// Timelines for the Gantt view.
//  - TimelineIndex (plain C++): one row per (rank, lane), each row's spans sorted by start with a
//    running maximum of their ends, so that the spans overlapping a time window are found by two
//    binary searches. This is what lets the view draw only what is visible.
//  - TimelineModel: a core::Timeline as a tree (rank -> spans) for tables, tests and CSV, plus the
//    index for the Gantt widget.

#include <cstdint>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include <QAbstractItemModel>
#include <QString>

#include "hpsim/core/timeline.h"
#include "hpsim/gui/engine.h"

namespace hpsim::gui {

struct GanttRow {
  std::int64_t rank = 0;
  core::Lane lane = core::Lane::kCompute;
  std::size_t rank_index = 0;                // into Timeline::ranks
  std::vector<std::int32_t> order;           // span indices of this lane, by start time
  std::vector<std::int64_t> prefix_max_end;  // max end_ns of order[0..i]
};

class TimelineIndex {
 public:
  void build(const core::Timeline& timeline);
  void clear();

  const std::vector<GanttRow>& rows() const { return m_rows; }
  // Row of (rank, lane), or -1.
  int findRow(std::int64_t rank, core::Lane lane) const;
  // [first, last) positions in row.order of the spans that overlap [t0_ns, t1_ns].
  static std::pair<std::size_t, std::size_t> visible(const core::Timeline& timeline, const GanttRow& row,
                                                     std::int64_t t0_ns, std::int64_t t1_ns);
  std::int64_t startNs() const { return m_start; }
  std::int64_t endNs() const { return m_end; }
  std::size_t numSpans() const { return m_numSpans; }

 private:
  std::vector<GanttRow> m_rows;
  std::int64_t m_start = 0;
  std::int64_t m_end = 0;
  std::size_t m_numSpans = 0;
};

class TimelineModel : public QAbstractItemModel {
  Q_OBJECT

 public:
  enum Column {
    kNameColumn,  // "rank r" for ranks, the stage for spans
    kPhaseColumn,
    kLaneColumn,
    kStartColumn,
    kEndColumn,
    kDurationColumn,
    kBytesColumn,
    kFlopsColumn,
    kNumColumns
  };
  enum Role { kValueRole = Qt::UserRole + 1 };  // raw numbers (ns, bytes, FLOPs)

  // `strategy` picks the timeline out of an EngineResult ("ep", "hp"); empty for a loaded one.
  explicit TimelineModel(QString strategy, QObject* parent = nullptr);

  QString strategy() const { return m_strategy; }
  void setResult(const ResultPtr& result);
  void setTimeline(std::shared_ptr<const core::Timeline> timeline);
  void setTimeline(core::Timeline timeline) {
    setTimeline(std::make_shared<const core::Timeline>(std::move(timeline)));
  }
  void clear() { setTimeline(std::shared_ptr<const core::Timeline>()); }

  const core::Timeline* timeline() const { return m_timeline.get(); }
  const TimelineIndex& ganttIndex() const { return m_index; }
  // Stage, phase, lane, start, duration, bytes and FLOPs of one span, for tooltips.
  static QString describeSpan(const core::Span& span, std::int64_t rank);

  QModelIndex index(int row, int column, const QModelIndex& parent = {}) const override;
  QModelIndex parent(const QModelIndex& child) const override;
  int rowCount(const QModelIndex& parent = {}) const override;
  int columnCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

 signals:
  void timelineChanged();

 private:
  QString m_strategy;
  std::shared_ptr<const core::Timeline> m_timeline;
  TimelineIndex m_index;
};

}  // namespace hpsim::gui
