#include "hpsim/gui/models/traffic_models.h"

#include <algorithm>

#include <QFont>

#include "hpsim/gui/engine.h"
#include "hpsim/gui/models/format.h"

namespace hpsim::gui {
namespace {

const core::TrafficMatrix* findPhase(const std::vector<core::TrafficMatrix>& matrices, const QString& phase) {
  for (const auto& m : matrices) {
    if (QString::fromStdString(m.phase) == phase) return &m;
  }
  return nullptr;
}

double offDiagonalMax(const core::TrafficMatrix& m) {
  double best = 0;
  for (std::int64_t i = 0; i < m.num_ranks; ++i) {
    for (std::int64_t j = 0; j < m.num_ranks; ++j) {
      if (i != j) best = std::max(best, m.at(i, j));
    }
  }
  return best;
}

}  // namespace

QStringList trafficPhases(const EngineResult& result) {
  QStringList phases;
  for (const char* name : {"ep", "hp"}) {
    if (const auto* s = result.strategy(name)) {
      for (const auto& m : s->traffic) {
        const QString p = QString::fromStdString(m.phase);
        if (!phases.contains(p)) phases << p;
      }
    }
  }
  return phases;
}

// ---- TrafficModel -------------------------------------------------------------------------------

TrafficModel::TrafficModel(QString strategy, QObject* parent)
    : QAbstractTableModel(parent), m_strategy(std::move(strategy)) {}

void TrafficModel::setResult(const ResultPtr& result) {
  beginResetModel();
  const auto* s = result ? result->strategy(m_strategy.toStdString()) : nullptr;
  m_matrices = s ? std::shared_ptr<const std::vector<core::TrafficMatrix>>(result, &s->traffic) : nullptr;
  m_maxOffDiagonal = 0;
  if (m_matrices) {
    for (const auto& m : *m_matrices) m_maxOffDiagonal = std::max(m_maxOffDiagonal, offDiagonalMax(m));
  }
  selectPhase();
  endResetModel();
}

void TrafficModel::clear() {
  beginResetModel();
  m_matrices.reset();
  m_current = -1;
  m_maxOffDiagonal = 0;
  endResetModel();
}

void TrafficModel::setPhase(const QString& phase) {
  if (phase == m_phase) return;
  beginResetModel();
  m_phase = phase;
  selectPhase();
  endResetModel();
}

void TrafficModel::selectPhase() {
  m_current = -1;
  if (!m_matrices) return;
  for (std::size_t i = 0; i < m_matrices->size(); ++i) {
    if (QString::fromStdString((*m_matrices)[i].phase) == m_phase) m_current = static_cast<int>(i);
  }
}

QStringList TrafficModel::phases() const {
  QStringList out;
  if (m_matrices) {
    for (const auto& m : *m_matrices) out << QString::fromStdString(m.phase);
  }
  return out;
}

const core::TrafficMatrix* TrafficModel::matrix() const {
  return m_current < 0 ? nullptr : &(*m_matrices)[static_cast<std::size_t>(m_current)];
}

double TrafficModel::maxOffDiagonal() const { return m_maxOffDiagonal; }

int TrafficModel::rowCount(const QModelIndex& parent) const {
  if (parent.isValid() || !matrix()) return 0;
  return static_cast<int>(matrix()->num_ranks);
}

int TrafficModel::columnCount(const QModelIndex& parent) const { return rowCount(parent); }

QVariant TrafficModel::data(const QModelIndex& index, int role) const {
  if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid) || !matrix()) return {};
  const double bytes = matrix()->at(index.row(), index.column());
  if (role == Qt::ToolTipRole) {
    return tr("%1 %2: rank %3 → rank %4\n%5%6")
        .arg(m_strategy.toUpper(), m_phase)
        .arg(index.row())
        .arg(index.column())
        .arg(formatExactBytes(bytes))
        .arg(index.row() == index.column() ? tr(" (stays on the rank)") : QString());
  }
  return bytesCellData(bytes, role, kBytesRole);
}

QVariant TrafficModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (role != Qt::DisplayRole) return {};
  return orientation == Qt::Vertical ? tr("from %1").arg(section) : tr("to %1").arg(section);
}

// ---- RankTrafficModel ---------------------------------------------------------------------------

RankTrafficModel::RankTrafficModel(QObject* parent) : QAbstractTableModel(parent) {}

void RankTrafficModel::setMatrices(const core::TrafficMatrix* ep, const core::TrafficMatrix* hp) {
  beginResetModel();
  auto fill = [](const core::TrafficMatrix* m, std::vector<double>& sent, std::vector<double>& received) {
    sent.clear();
    received.clear();
    if (!m) return;
    for (std::int64_t r = 0; r < m->num_ranks; ++r) {
      sent.push_back(m->sent(r));
      received.push_back(m->received(r));
    }
  };
  fill(ep, m_epSent, m_epReceived);
  fill(hp, m_hpSent, m_hpReceived);
  m_rows = static_cast<int>(std::max(m_epSent.size(), m_hpSent.size()));
  m_max = 0;
  for (const auto* v : {&m_epSent, &m_epReceived, &m_hpSent, &m_hpReceived}) {
    for (double x : *v) m_max = std::max(m_max, x);
  }
  endResetModel();
}

int RankTrafficModel::rowCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : m_rows; }
int RankTrafficModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : kNumColumns; }

QVariant RankTrafficModel::data(const QModelIndex& index, int role) const {
  if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid)) return {};
  const auto r = static_cast<std::size_t>(index.row());
  if (index.column() == kRankColumn) {
    return (role == Qt::DisplayRole || role == Qt::EditRole) ? QVariant(index.row()) : QVariant();
  }
  const std::vector<double>* column = nullptr;
  switch (index.column()) {
    case kEpSentColumn:
      column = &m_epSent;
      break;
    case kEpReceivedColumn:
      column = &m_epReceived;
      break;
    case kHpSentColumn:
      column = &m_hpSent;
      break;
    case kHpReceivedColumn:
      column = &m_hpReceived;
      break;
    default:
      return {};
  }
  if (r >= column->size()) return {};
  return bytesCellData((*column)[r], role, kBytesRole);
}

QVariant RankTrafficModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (role != Qt::DisplayRole) return {};
  if (orientation == Qt::Vertical) return section;
  switch (section) {
    case kRankColumn:
      return tr("Rank");
    case kEpSentColumn:
      return tr("EP sent");
    case kEpReceivedColumn:
      return tr("EP received");
    case kHpSentColumn:
      return tr("HP sent");
    case kHpReceivedColumn:
      return tr("HP received");
    default:
      return {};
  }
}

// ---- TrafficSummaryModel ------------------------------------------------------------------------

TrafficSummaryModel::TrafficSummaryModel(QObject* parent) : QAbstractTableModel(parent) {}

void TrafficSummaryModel::setResult(const ResultPtr& result) {
  beginResetModel();
  m_result = result;
  m_ep = result ? result->strategy("ep") : nullptr;
  m_hp = result ? result->strategy("hp") : nullptr;
  m_rows.clear();
  if (result) {
    for (const QString& phase : trafficPhases(*result)) {
      m_rows.push_back({phase,
                        m_ep ? findPhase(m_ep->traffic, phase) : nullptr,
                        m_hp ? findPhase(m_hp->traffic, phase) : nullptr,
                        false,
                        {}});
    }
  }
  if (!m_rows.empty()) m_rows.push_back({tr("all phases"), nullptr, nullptr, true, {}});
  for (auto& row : m_rows) {
    for (int c = kEpTotalColumn; c < kNumColumns; ++c) row.values[c] = value(row, c);
  }
  endResetModel();
}

void TrafficSummaryModel::clear() {
  beginResetModel();
  m_rows.clear();
  m_result.reset();
  m_ep = m_hp = nullptr;
  endResetModel();
}

int TrafficSummaryModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(m_rows.size());
}
int TrafficSummaryModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : kNumColumns; }

QVariant TrafficSummaryModel::value(const Row& row, int column) const {
  auto total = [&](const core::StrategyReport* s, const core::TrafficMatrix* one) -> QVariant {
    if (!s) return {};
    if (row.isTotal) {
      double sum = 0;
      for (const auto& m : s->traffic) sum += m.total_sent();
      return sum;
    }
    return one ? QVariant(one->total_sent()) : QVariant(0.0);  // a phase the strategy does not have moves nothing
  };
  switch (column) {
    case kEpTotalColumn:
      return total(m_ep, row.ep);
    case kHpTotalColumn:
      return total(m_hp, row.hp);
    case kRatioColumn: {
      const QVariant e = total(m_ep, row.ep), h = total(m_hp, row.hp);
      if (!e.isValid() || !h.isValid() || e.toDouble() <= 0) return {};
      return h.toDouble() / e.toDouble();
    }
    case kEpMaxColumn:
      return row.ep ? QVariant(row.ep->max_sent()) : QVariant();
    case kHpMaxColumn:
      return row.hp ? QVariant(row.hp->max_sent()) : QVariant();
    case kEpImbalanceColumn:
      return row.ep ? QVariant(row.ep->send_imbalance()) : QVariant();
    case kHpImbalanceColumn:
      return row.hp ? QVariant(row.hp->send_imbalance()) : QVariant();
    default:
      return {};
  }
}

QVariant TrafficSummaryModel::data(const QModelIndex& index, int role) const {
  if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid)) return {};
  const Row& row = m_rows[static_cast<std::size_t>(index.row())];
  if (index.column() == kPhaseColumn) {
    if (role == Qt::DisplayRole || role == Qt::EditRole || role == kValueRole) return row.phase;
    if (role == Qt::FontRole && row.isTotal) {
      QFont f;
      f.setBold(true);
      return f;
    }
    return {};
  }
  const QVariant v = row.values[index.column()];
  const bool isRatio =
      index.column() == kRatioColumn || index.column() == kEpImbalanceColumn || index.column() == kHpImbalanceColumn;
  switch (role) {
    case kValueRole:
    case Qt::EditRole:
      return v;
    case Qt::DisplayRole:
      if (!v.isValid()) return QStringLiteral("—");
      return isRatio ? formatRatio(v.toDouble()) : formatBytes(v.toDouble());
    case Qt::ToolTipRole:
      if (!v.isValid()) return {};
      return isRatio ? QString::number(v.toDouble(), 'g', 8) : formatExactBytes(v.toDouble());
    case Qt::TextAlignmentRole:
      return QVariant(Qt::AlignRight | Qt::AlignVCenter);
    case Qt::FontRole:
      if (row.isTotal) {
        QFont f;
        f.setBold(true);
        return f;
      }
      return {};
    default:
      return {};
  }
}

QVariant TrafficSummaryModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (orientation != Qt::Horizontal) return {};
  if (role == Qt::ToolTipRole) {
    switch (section) {
      case kEpTotalColumn:
      case kHpTotalColumn:
        return tr("bytes leaving all ranks (diagonal excluded)");
      case kRatioColumn:
        return tr("HP total / EP total");
      case kEpMaxColumn:
      case kHpMaxColumn:
        return tr("bytes the busiest sender sends");
      case kEpImbalanceColumn:
      case kHpImbalanceColumn:
        return tr("max over ranks / mean over ranks of bytes sent");
      default:
        return {};
    }
  }
  if (role != Qt::DisplayRole) return {};
  switch (section) {
    case kPhaseColumn:
      return tr("Phase");
    case kEpTotalColumn:
      return tr("EP total");
    case kHpTotalColumn:
      return tr("HP total");
    case kRatioColumn:
      return tr("HP / EP");
    case kEpMaxColumn:
      return tr("EP max rank");
    case kHpMaxColumn:
      return tr("HP max rank");
    case kEpImbalanceColumn:
      return tr("EP imbalance");
    case kHpImbalanceColumn:
      return tr("HP imbalance");
    default:
      return {};
  }
}

}  // namespace hpsim::gui
