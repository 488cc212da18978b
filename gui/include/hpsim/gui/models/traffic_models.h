#pragma once
// Models of the Traffic view, fed from an EngineResult:
//  - TrafficModel: the W x W matrix of one strategy for the selected phase (cell = bytes src -> dst);
//  - RankTrafficModel: per rank, bytes sent and received off the rank, EP and HP, for one phase;
//  - TrafficSummaryModel: per phase, totals, per-rank maxima, imbalance and the HP/EP ratio.
// All numbers are core::TrafficMatrix's (sent, received, total_sent, ...); none are derived here
// beyond the ratio of two of them.

#include <QAbstractTableModel>
#include <QStringList>
#include <memory>
#include <vector>

#include "hpsim/core/traffic.h"
#include "hpsim/gui/engine.h"

namespace hpsim::gui {

// Phase names of a result in the order they run, EP's first (EP has the metadata exchange).
QStringList trafficPhases(const EngineResult& result);

class TrafficModel : public QAbstractTableModel {
  Q_OBJECT

 public:
  enum Role { kBytesRole = Qt::UserRole + 1 };

  explicit TrafficModel(QString strategy, QObject* parent = nullptr);

  QString strategy() const { return m_strategy; }
  void setResult(const ResultPtr& result);
  void clear();
  void setPhase(const QString& phase);
  QString phase() const { return m_phase; }
  QStringList phases() const;

  // The matrix of the selected phase, or nullptr (no result, or no such phase for this strategy).
  const core::TrafficMatrix* matrix() const;
  // Largest off-diagonal entry over all phases: the views share one colour scale.
  double maxOffDiagonal() const;

  int rowCount(const QModelIndex& parent = {}) const override;
  int columnCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

 private:
  void selectPhase();

  QString m_strategy;
  std::shared_ptr<const std::vector<core::TrafficMatrix>> m_matrices;  // into the shared result
  QString m_phase;
  int m_current = -1;
  double m_maxOffDiagonal = 0;  // over all phases, computed once per result
};

class RankTrafficModel : public QAbstractTableModel {
  Q_OBJECT

 public:
  enum Column { kRankColumn, kEpSentColumn, kEpReceivedColumn, kHpSentColumn, kHpReceivedColumn, kNumColumns };
  enum Role { kBytesRole = Qt::UserRole + 1 };

  explicit RankTrafficModel(QObject* parent = nullptr);
  // Either may be null (that strategy has no such phase or is not in the result).
  void setMatrices(const core::TrafficMatrix* ep, const core::TrafficMatrix* hp);
  double maxBytes() const { return m_max; }
  bool hasEp() const { return !m_epSent.empty(); }
  bool hasHp() const { return !m_hpSent.empty(); }

  int rowCount(const QModelIndex& parent = {}) const override;
  int columnCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

 private:
  std::vector<double> m_epSent, m_epReceived, m_hpSent, m_hpReceived;
  int m_rows = 0;
  double m_max = 0;
};

class TrafficSummaryModel : public QAbstractTableModel {
  Q_OBJECT

 public:
  enum Column {
    kPhaseColumn,
    kEpTotalColumn,  // bytes leaving all ranks
    kHpTotalColumn,
    kRatioColumn,  // HP / EP of the totals
    kEpMaxColumn,  // most any rank sends
    kHpMaxColumn,
    kEpImbalanceColumn,  // send imbalance, max / mean
    kHpImbalanceColumn,
    kNumColumns
  };
  enum Role { kValueRole = Qt::UserRole + 1 };  // the raw number (bytes, ratio) or null

  explicit TrafficSummaryModel(QObject* parent = nullptr);
  void setResult(const ResultPtr& result);
  void clear();

  int rowCount(const QModelIndex& parent = {}) const override;
  int columnCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

 private:
  struct Row {
    QString phase;
    const core::TrafficMatrix* ep = nullptr;  // into m_result, or null
    const core::TrafficMatrix* hp = nullptr;
    bool isTotal = false;
    QVariant values[kNumColumns];  // computed once: each is a pass over a W x W matrix
  };
  QVariant value(const Row& row, int column) const;

  ResultPtr m_result;
  const core::StrategyReport* m_ep = nullptr;
  const core::StrategyReport* m_hp = nullptr;
  std::vector<Row> m_rows;
};

}  // namespace hpsim::gui
