#pragma once
// Models of the Overview: the headline numbers of both strategies side by side, and the stage
// costs of one strategy. Values are the StrategyReport's fields as the engine filled them; where
// the engine gave no timing, the cells say so instead of showing a number.

#include <QAbstractTableModel>
#include <QString>
#include <optional>
#include <vector>

#include "hpsim/core/report.h"
#include "hpsim/gui/engine.h"

namespace hpsim::gui {

class ReportSummaryModel : public QAbstractTableModel {
  Q_OBJECT

 public:
  enum Column { kMetricColumn, kEpColumn, kHpColumn, kRatioColumn, kNumColumns };
  enum Role { kValueRole = Qt::UserRole + 1 };  // raw double, or null when not available

  explicit ReportSummaryModel(QObject* parent = nullptr);
  void setResult(const ResultPtr& result);
  void clear();
  bool hasTiming() const { return m_hasTiming; }
  // EP layer time / HP layer time (forward + backward), when both are timed.
  std::optional<double> hpSpeedup() const;

  int rowCount(const QModelIndex& parent = {}) const override;
  int columnCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

 private:
  enum class Unit { kMicros, kCount, kHours, kBytes, kRanks };
  struct Metric {
    QString name;
    Unit unit;
    bool needsTiming;
    // Null when the engine did not provide it.
    std::optional<double> (*get)(const core::StrategyReport&, const StrategyMetrics*);
  };
  static const std::vector<Metric>& metrics();
  QVariant value(int row, const char* strategy) const;

  ResultPtr m_result;
  const core::StrategyReport* m_ep = nullptr;  // into m_result
  const core::StrategyReport* m_hp = nullptr;
  bool m_hasTiming = false;
  bool m_hasResult = false;
};

class StageCostModel : public QAbstractTableModel {
  Q_OBJECT

 public:
  enum Column {
    kStageColumn,
    kPhaseColumn,
    kLaneColumn,
    kMaxColumn,
    kMeanColumn,
    kBytesColumn,
    kFlopsColumn,
    kNumColumns
  };
  enum Role { kValueRole = Qt::UserRole + 1 };

  explicit StageCostModel(QString strategy, QObject* parent = nullptr);
  void setResult(const ResultPtr& result);
  void clear();
  const std::vector<core::StageCost>& stages() const { return m_stages ? *m_stages : m_empty; }

  int rowCount(const QModelIndex& parent = {}) const override;
  int columnCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

 private:
  QString m_strategy;
  std::shared_ptr<const std::vector<core::StageCost>> m_stages;  // into the shared result
  std::vector<core::StageCost> m_empty;
};

}  // namespace hpsim::gui
