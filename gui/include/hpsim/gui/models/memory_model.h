#pragma once
// MemoryModel: one strategy's core::MemoryReport, one row per rank, a column per part, the peak,
// and whether the rank is over the GPU's capacity.

#include <memory>

#include <QAbstractTableModel>

#include "hpsim/core/memory_report.h"
#include "hpsim/gui/engine.h"

namespace hpsim::gui {

class MemoryModel : public QAbstractTableModel {
  Q_OBJECT

 public:
  enum Column {
    kRankColumn,
    kWeightsColumn,
    kGradientsColumn,
    kOptimizerColumn,
    kActivationsColumn,
    kCommBuffersColumn,
    kWorkspaceColumn,
    kPeakColumn,
    kOverCapacityColumn,
    kNumColumns
  };
  static constexpr int kFirstPart = kWeightsColumn;
  static constexpr int kNumParts = kWorkspaceColumn - kWeightsColumn + 1;
  enum Role { kBytesRole = Qt::UserRole + 1 };

  explicit MemoryModel(QString strategy, QObject* parent = nullptr);
  QString strategy() const { return m_strategy; }
  void setResult(const ResultPtr& result);
  void clear();

  bool hasReport() const { return m_report != nullptr; }
  const core::MemoryReport& report() const { return m_report ? *m_report : m_empty; }
  double capacityBytes() const { return report().capacity_bytes; }
  // Bytes of part p (0 .. kNumParts-1) on `rank`.
  double part(int rank, int p) const;
  static QString partName(int p);

  int rowCount(const QModelIndex& parent = {}) const override;
  int columnCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

 private:
  QString m_strategy;
  std::shared_ptr<const core::MemoryReport> m_report;  // into the shared result
  core::MemoryReport m_empty;
};

}  // namespace hpsim::gui
