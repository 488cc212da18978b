#include "hpsim/gui/models/memory_model.h"

#include <QBrush>
#include <QColor>

#include "hpsim/gui/engine.h"
#include "hpsim/gui/models/format.h"

namespace hpsim::gui {

MemoryModel::MemoryModel(QString strategy, QObject* parent)
    : QAbstractTableModel(parent), m_strategy(std::move(strategy)) {}

void MemoryModel::setResult(const ResultPtr& result) {
  beginResetModel();
  const auto* s = result ? result->strategy(m_strategy.toStdString()) : nullptr;
  m_report = s ? std::shared_ptr<const core::MemoryReport>(result, &s->memory) : nullptr;
  endResetModel();
}

void MemoryModel::clear() {
  beginResetModel();
  m_report.reset();
  endResetModel();
}

double MemoryModel::part(int rank, int p) const {
  const auto& m = report().ranks[static_cast<std::size_t>(rank)];
  switch (p) {
    case 0:
      return m.weights;
    case 1:
      return m.gradients;
    case 2:
      return m.optimizer;
    case 3:
      return m.activations;
    case 4:
      return m.comm_buffers;
    case 5:
      return m.workspace;
    default:
      return 0;
  }
}

QString MemoryModel::partName(int p) {
  switch (p) {
    case 0:
      return tr("weights");
    case 1:
      return tr("gradients");
    case 2:
      return tr("optimizer state");
    case 3:
      return tr("activations");
    case 4:
      return tr("comm buffers");
    case 5:
      return tr("workspace");
    default:
      return {};
  }
}

int MemoryModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(report().ranks.size());
}
int MemoryModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : kNumColumns; }

QVariant MemoryModel::data(const QModelIndex& index, int role) const {
  if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid)) return {};
  const auto& m = report().ranks[static_cast<std::size_t>(index.row())];
  const bool over = capacityBytes() > 0 && m.peak() > capacityBytes();
  switch (index.column()) {
    case kRankColumn:
      return (role == Qt::DisplayRole || role == Qt::EditRole) ? QVariant(static_cast<qlonglong>(m.rank)) : QVariant();
    case kOverCapacityColumn:
      if (role == Qt::DisplayRole) return over ? tr("over capacity") : QString();
      if (role == Qt::EditRole) return over;
      if (role == Qt::ForegroundRole && over) return QBrush(QColor(0xc6, 0x28, 0x28));
      return {};
    default:
      break;
  }
  const double bytes = index.column() == kPeakColumn ? m.peak() : part(index.row(), index.column() - kFirstPart);
  if (role == Qt::ForegroundRole) {
    if (index.column() == kPeakColumn && over) return QBrush(QColor(0xc6, 0x28, 0x28));
    return {};
  }
  return bytesCellData(bytes, role, kBytesRole);
}

QVariant MemoryModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (role != Qt::DisplayRole) return {};
  if (orientation == Qt::Vertical) return section;
  if (section == kRankColumn) return tr("Rank");
  if (section == kPeakColumn) return tr("Peak");
  if (section == kOverCapacityColumn) return tr("Capacity");
  if (section >= kFirstPart && section < kFirstPart + kNumParts) {
    QString name = partName(section - kFirstPart);
    name[0] = name[0].toUpper();
    return name;
  }
  return {};
}

}  // namespace hpsim::gui
