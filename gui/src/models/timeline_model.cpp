#include "hpsim/gui/models/timeline_model.h"

#include <algorithm>
#include <limits>
#include <numeric>

#include "hpsim/gui/engine.h"
#include "hpsim/gui/models/format.h"

namespace hpsim::gui {
namespace {

constexpr quintptr kRankId = ~quintptr(0);

}  // namespace

// ---- TimelineIndex ------------------------------------------------------------------------------

void TimelineIndex::clear() {
  m_rows.clear();
  m_start = m_end = 0;
  m_numSpans = 0;
}

void TimelineIndex::build(const core::Timeline& timeline) {
  clear();
  std::vector<std::size_t> byRank(timeline.ranks.size());
  std::iota(byRank.begin(), byRank.end(), std::size_t{0});
  std::stable_sort(byRank.begin(), byRank.end(),
                   [&](std::size_t a, std::size_t b) { return timeline.ranks[a].rank < timeline.ranks[b].rank; });
  m_start = std::numeric_limits<std::int64_t>::max();
  m_end = std::numeric_limits<std::int64_t>::min();
  for (std::size_t ri : byRank) {
    const auto& rt = timeline.ranks[ri];
    for (core::Lane lane : {core::Lane::kCompute, core::Lane::kComm}) {
      GanttRow row;
      row.rank = rt.rank;
      row.lane = lane;
      row.rank_index = ri;
      for (std::size_t i = 0; i < rt.spans.size(); ++i) {
        if (rt.spans[i].lane == lane) row.order.push_back(static_cast<std::int32_t>(i));
      }
      std::stable_sort(row.order.begin(), row.order.end(), [&](std::int32_t a, std::int32_t b) {
        return rt.spans[static_cast<std::size_t>(a)].start_ns < rt.spans[static_cast<std::size_t>(b)].start_ns;
      });
      row.prefix_max_end.reserve(row.order.size());
      std::int64_t running = std::numeric_limits<std::int64_t>::min();
      for (std::int32_t i : row.order) {
        const auto& s = rt.spans[static_cast<std::size_t>(i)];
        running = std::max(running, s.end_ns);
        row.prefix_max_end.push_back(running);
        m_start = std::min(m_start, s.start_ns);
        m_end = std::max(m_end, s.end_ns);
      }
      m_numSpans += row.order.size();
      m_rows.push_back(std::move(row));
    }
  }
  if (m_numSpans == 0) m_start = m_end = 0;
}

int TimelineIndex::findRow(std::int64_t rank, core::Lane lane) const {
  // Rows are sorted by rank, compute before comm.
  auto it = std::lower_bound(m_rows.begin(), m_rows.end(), std::make_pair(rank, lane),
                             [](const GanttRow& r, const std::pair<std::int64_t, core::Lane>& key) {
                               return r.rank != key.first ? r.rank < key.first
                                                          : static_cast<int>(r.lane) < static_cast<int>(key.second);
                             });
  if (it == m_rows.end() || it->rank != rank || it->lane != lane) return -1;
  return static_cast<int>(it - m_rows.begin());
}

std::pair<std::size_t, std::size_t> TimelineIndex::visible(const core::Timeline& timeline, const GanttRow& row,
                                                           std::int64_t t0_ns, std::int64_t t1_ns) {
  const auto& spans = timeline.ranks[row.rank_index].spans;
  // First span whose running end reaches t0: every earlier span ended before the window.
  const auto first = static_cast<std::size_t>(
      std::lower_bound(row.prefix_max_end.begin(), row.prefix_max_end.end(), t0_ns) - row.prefix_max_end.begin());
  // One past the last span starting at or before t1.
  const auto last = static_cast<std::size_t>(std::upper_bound(row.order.begin(), row.order.end(), t1_ns,
                                                              [&](std::int64_t t, std::int32_t i) {
                                                                return t < spans[static_cast<std::size_t>(i)].start_ns;
                                                              }) -
                                             row.order.begin());
  return {first, std::max(first, last)};
}

// ---- TimelineModel ------------------------------------------------------------------------------

TimelineModel::TimelineModel(QString strategy, QObject* parent)
    : QAbstractItemModel(parent), m_strategy(std::move(strategy)) {}

void TimelineModel::setResult(const ResultPtr& result) {
  const auto* s = result ? result->strategy(m_strategy.toStdString()) : nullptr;
  setTimeline(s && s->timeline ? std::shared_ptr<const core::Timeline>(result, &*s->timeline) : nullptr);
}

void TimelineModel::setTimeline(std::shared_ptr<const core::Timeline> timeline) {
  beginResetModel();
  m_timeline = std::move(timeline);
  if (m_timeline) {
    m_index.build(*m_timeline);
  } else {
    m_index.clear();
  }
  endResetModel();
  emit timelineChanged();
}

QString TimelineModel::describeSpan(const core::Span& s, std::int64_t rank) {
  QString text =
      tr("%1 (%2, %3) on rank %4\nstart %5, duration %6")
          .arg(QString::fromStdString(s.stage), QLatin1String(core::to_string(s.phase)),
               QLatin1String(core::to_string(s.lane)))
          .arg(rank)
          .arg(formatNanos(static_cast<double>(s.start_ns)), formatNanos(static_cast<double>(s.duration_ns())));
  if (s.bytes > 0) text += tr("\nbytes %1").arg(formatExactBytes(s.bytes));
  if (s.flops > 0) text += tr("\nFLOPs %1").arg(formatFlops(s.flops));
  if (s.layer > 0 || s.micro_batch > 0) text += tr("\nlayer %1, micro-batch %2").arg(s.layer).arg(s.micro_batch);
  return text;
}

QModelIndex TimelineModel::index(int row, int column, const QModelIndex& parent) const {
  if (!hasIndex(row, column, parent)) return {};
  if (!parent.isValid()) return createIndex(row, column, kRankId);
  return createIndex(row, column, static_cast<quintptr>(parent.row()));
}

QModelIndex TimelineModel::parent(const QModelIndex& child) const {
  if (!child.isValid() || child.internalId() == kRankId) return {};
  return createIndex(static_cast<int>(child.internalId()), 0, kRankId);
}

int TimelineModel::rowCount(const QModelIndex& parent) const {
  if (!m_timeline) return 0;
  if (!parent.isValid()) return static_cast<int>(m_timeline->ranks.size());
  if (parent.internalId() == kRankId && parent.column() == 0) {
    return static_cast<int>(m_timeline->ranks[static_cast<std::size_t>(parent.row())].spans.size());
  }
  return 0;
}

int TimelineModel::columnCount(const QModelIndex&) const { return kNumColumns; }

QVariant TimelineModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || !m_timeline) return {};
  if (index.internalId() == kRankId) {
    const auto& rt = m_timeline->ranks[static_cast<std::size_t>(index.row())];
    if (index.column() != kNameColumn) return {};
    if (role == Qt::DisplayRole) return tr("rank %1").arg(rt.rank);
    if (role == Qt::EditRole || role == kValueRole) return static_cast<qlonglong>(rt.rank);
    return {};
  }
  const auto& rt = m_timeline->ranks[static_cast<std::size_t>(index.internalId())];
  const auto& s = rt.spans[static_cast<std::size_t>(index.row())];
  if (role == Qt::ToolTipRole) return describeSpan(s, rt.rank);
  if (role == Qt::TextAlignmentRole && index.column() >= kStartColumn)
    return QVariant(Qt::AlignRight | Qt::AlignVCenter);
  if (role != Qt::DisplayRole && role != Qt::EditRole && role != kValueRole) return {};
  const bool raw = role != Qt::DisplayRole;
  switch (index.column()) {
    case kNameColumn:
      return QString::fromStdString(s.stage);
    case kPhaseColumn:
      return QString::fromLatin1(core::to_string(s.phase));
    case kLaneColumn:
      return QString::fromLatin1(core::to_string(s.lane));
    case kStartColumn:
      return raw ? QVariant(static_cast<qlonglong>(s.start_ns))
                 : QVariant(formatNanos(static_cast<double>(s.start_ns)));
    case kEndColumn:
      return raw ? QVariant(static_cast<qlonglong>(s.end_ns)) : QVariant(formatNanos(static_cast<double>(s.end_ns)));
    case kDurationColumn:
      return raw ? QVariant(static_cast<qlonglong>(s.duration_ns()))
                 : QVariant(formatNanos(static_cast<double>(s.duration_ns())));
    case kBytesColumn:
      return raw ? QVariant(s.bytes) : QVariant(formatBytes(s.bytes));
    case kFlopsColumn:
      return raw ? QVariant(s.flops) : QVariant(formatFlops(s.flops));
    default:
      return {};
  }
}

QVariant TimelineModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (orientation != Qt::Horizontal || role != Qt::DisplayRole) return {};
  switch (section) {
    case kNameColumn:
      return tr("Rank / stage");
    case kPhaseColumn:
      return tr("Phase");
    case kLaneColumn:
      return tr("Lane");
    case kStartColumn:
      return tr("Start");
    case kEndColumn:
      return tr("End");
    case kDurationColumn:
      return tr("Duration");
    case kBytesColumn:
      return tr("Bytes");
    case kFlopsColumn:
      return tr("FLOPs");
    default:
      return {};
  }
}

}  // namespace hpsim::gui
