#include "hpsim/gui/models/report_models.h"

#include <QLocale>

#include "hpsim/gui/engine.h"
#include "hpsim/gui/models/format.h"

namespace hpsim::gui {
namespace {

using Value = std::optional<double>;
using Metrics = const StrategyMetrics*;

}  // namespace

// ---- ReportSummaryModel -------------------------------------------------------------------------

ReportSummaryModel::ReportSummaryModel(QObject* parent) : QAbstractTableModel(parent) {}

const std::vector<ReportSummaryModel::Metric>& ReportSummaryModel::metrics() {
  // Straight from the StrategyReport, or from model::summarize (StrategyMetrics) as the CLI prints.
  static const std::vector<Metric> list = {
      {tr("MoE layer, forward"), Unit::kMicros, true,
       [](const core::StrategyReport& s, Metrics) -> Value { return s.layer_forward_us; }},
      {tr("MoE layer, backward"), Unit::kMicros, true,
       [](const core::StrategyReport& s, Metrics) -> Value { return s.layer_backward_us; }},
      {tr("MoE layer, forward + backward"), Unit::kMicros, true,
       [](const core::StrategyReport& s, Metrics) -> Value { return s.layer_total_us; }},
      {tr("  of which compute (sum of stages)"), Unit::kMicros, true,
       [](const core::StrategyReport&, Metrics m) -> Value { return m ? Value(m->compute_us) : Value(); }},
      {tr("  of which communication (sum of stages)"), Unit::kMicros, true,
       [](const core::StrategyReport&, Metrics m) -> Value { return m ? Value(m->comm_us) : Value(); }},
      {tr("Training step (whole model)"), Unit::kMicros, true,
       [](const core::StrategyReport& s, Metrics) -> Value { return s.step_us; }},
      {tr("Tokens per second"), Unit::kCount, true,
       [](const core::StrategyReport& s, Metrics) -> Value { return s.tokens_per_second; }},
      {tr("Hours for the token budget"), Unit::kHours, true,
       [](const core::StrategyReport& s, Metrics) -> Value { return s.hours_for_budget; }},
      {tr("Dispatch bytes, busiest sender"), Unit::kBytes, false,
       [](const core::StrategyReport&, Metrics m) -> Value { return m ? Value(m->dispatch_sent_max) : Value(); }},
      {tr("All-to-all bytes per layer, bottleneck rank"), Unit::kBytes, false,
       [](const core::StrategyReport&, Metrics m) -> Value { return m ? Value(m->layer_a2a_bytes_max) : Value(); }},
      {tr("Metadata bytes per rank"), Unit::kBytes, false,
       [](const core::StrategyReport& s, Metrics) -> Value { return s.metadata_bytes_per_rank; }},
      {tr("Peak memory, largest rank"), Unit::kBytes, false,
       [](const core::StrategyReport& s, Metrics) -> Value { return s.memory.max_peak(); }},
      {tr("Ranks over GPU capacity"), Unit::kRanks, false,
       [](const core::StrategyReport& s, Metrics) -> Value {
         return static_cast<double>(s.memory.num_over_capacity());
       }},
  };
  return list;
}

void ReportSummaryModel::setResult(const ResultPtr& result) {
  beginResetModel();
  m_result = result;
  m_ep = result ? result->strategy("ep") : nullptr;
  m_hp = result ? result->strategy("hp") : nullptr;
  m_hasTiming = result && result->has_timing;
  m_hasResult = result != nullptr;
  endResetModel();
}

void ReportSummaryModel::clear() {
  beginResetModel();
  m_result.reset();
  m_ep = m_hp = nullptr;
  m_hasTiming = false;
  m_hasResult = false;
  endResetModel();
}

std::optional<double> ReportSummaryModel::hpSpeedup() const {
  if (!m_hasTiming || !m_ep || !m_hp || m_hp->layer_total_us <= 0) return std::nullopt;
  return m_ep->layer_total_us / m_hp->layer_total_us;
}

int ReportSummaryModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(metrics().size());
}
int ReportSummaryModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : kNumColumns; }

QVariant ReportSummaryModel::value(int row, const char* strategy) const {
  const Metric& m = metrics()[static_cast<std::size_t>(row)];
  const core::StrategyReport* s = m_result ? m_result->strategy(strategy) : nullptr;
  if (!s || (m.needsTiming && !m_hasTiming)) return {};
  const Value v = m.get(*s, m_result->metrics_of(strategy));
  return v ? QVariant(*v) : QVariant();
}

QVariant ReportSummaryModel::data(const QModelIndex& index, int role) const {
  if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid)) return {};
  const Metric& metric = metrics()[static_cast<std::size_t>(index.row())];
  if (index.column() == kMetricColumn) {
    if (role == Qt::DisplayRole || role == Qt::EditRole) return metric.name;
    if (role == Qt::ToolTipRole && metric.needsTiming) return tr("needs the analytic engine and a profile");
    return {};
  }
  QVariant v;
  if (index.column() == kEpColumn) v = value(index.row(), "ep");
  if (index.column() == kHpColumn) v = value(index.row(), "hp");
  if (index.column() == kRatioColumn) {
    const QVariant e = value(index.row(), "ep"), h = value(index.row(), "hp");
    if (e.isValid() && h.isValid() && e.toDouble() > 0) v = h.toDouble() / e.toDouble();
  }
  switch (role) {
    case kValueRole:
    case Qt::EditRole:
      return v;
    case Qt::DisplayRole: {
      if (!v.isValid()) {
        if (!m_hasResult) return QString();
        if (index.column() != kRatioColumn && metric.needsTiming && !m_hasTiming) return tr("no timing");
        if (index.column() == kEpColumn && !m_ep) return tr("cannot run");
        if (index.column() == kHpColumn && !m_hp) return tr("cannot run");
        return QStringLiteral("—");
      }
      if (index.column() == kRatioColumn) return formatRatio(v.toDouble());
      const double x = v.toDouble();
      switch (metric.unit) {
        case Unit::kMicros:
          return formatMicros(x);
        case Unit::kBytes:
          return formatBytes(x);
        case Unit::kHours:
          return QString::number(x, 'f', 1) + tr(" h");
        case Unit::kCount:
          return QLocale(QLocale::English).toString(x, 'f', 0);
        case Unit::kRanks:
          return QString::number(static_cast<qlonglong>(x));
      }
      return {};
    }
    case Qt::ToolTipRole:
      if (v.isValid() && metric.unit == Unit::kBytes && index.column() != kRatioColumn)
        return formatExactBytes(v.toDouble());
      if (v.isValid()) return QString::number(v.toDouble(), 'g', 10);
      return {};
    case Qt::TextAlignmentRole:
      return QVariant(Qt::AlignRight | Qt::AlignVCenter);
    default:
      return {};
  }
}

QVariant ReportSummaryModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (orientation != Qt::Horizontal || role != Qt::DisplayRole) return {};
  switch (section) {
    case kMetricColumn:
      return tr("Metric");
    case kEpColumn:
      return tr("EP");
    case kHpColumn:
      return tr("HP");
    case kRatioColumn:
      return tr("HP / EP");
    default:
      return {};
  }
}

// ---- StageCostModel -----------------------------------------------------------------------------

StageCostModel::StageCostModel(QString strategy, QObject* parent)
    : QAbstractTableModel(parent), m_strategy(std::move(strategy)) {}

void StageCostModel::setResult(const ResultPtr& result) {
  beginResetModel();
  const auto* s = result ? result->strategy(m_strategy.toStdString()) : nullptr;
  m_stages = s ? std::shared_ptr<const std::vector<core::StageCost>>(result, &s->stages) : nullptr;
  endResetModel();
}

void StageCostModel::clear() {
  beginResetModel();
  m_stages.reset();
  endResetModel();
}

int StageCostModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(stages().size());
}
int StageCostModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : kNumColumns; }

QVariant StageCostModel::data(const QModelIndex& index, int role) const {
  if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid)) return {};
  const auto& s = stages()[static_cast<std::size_t>(index.row())];
  if (role == Qt::DisplayRole || role == Qt::EditRole || role == kValueRole) {
    const bool raw = role != Qt::DisplayRole;
    switch (index.column()) {
      case kStageColumn:
        return QString::fromStdString(s.stage);
      case kPhaseColumn:
        return QString::fromLatin1(core::to_string(s.phase));
      case kLaneColumn:
        return QString::fromLatin1(core::to_string(s.lane));
      case kMaxColumn:
        return raw ? QVariant(s.max_us) : QVariant(formatMicros(s.max_us));
      case kMeanColumn:
        return raw ? QVariant(s.mean_us) : QVariant(formatMicros(s.mean_us));
      case kBytesColumn:
        return raw ? QVariant(s.bytes) : QVariant(formatBytes(s.bytes));
      case kFlopsColumn:
        return raw ? QVariant(s.flops) : QVariant(formatFlops(s.flops));
      default:
        return {};
    }
  }
  if (role == Qt::TextAlignmentRole && index.column() >= kMaxColumn) return QVariant(Qt::AlignRight | Qt::AlignVCenter);
  if (role == Qt::ToolTipRole && index.column() == kBytesColumn) return formatExactBytes(s.bytes);
  return {};
}

QVariant StageCostModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (orientation != Qt::Horizontal || role != Qt::DisplayRole) return {};
  switch (section) {
    case kStageColumn:
      return tr("Stage");
    case kPhaseColumn:
      return tr("Phase");
    case kLaneColumn:
      return tr("Lane");
    case kMaxColumn:
      return tr("Slowest rank");
    case kMeanColumn:
      return tr("Mean");
    case kBytesColumn:
      return tr("Bytes");
    case kFlopsColumn:
      return tr("FLOPs");
    default:
      return {};
  }
}

}  // namespace hpsim::gui
