#pragma once
// What-if sweeps: one scenario parameter over a range, each point evaluated by the Engine on a
// worker thread (QtConcurrent), with progress and cancel. Each point keeps only the numbers the
// Sweep view plots, taken from the point's StrategyReports.

#include <optional>
#include <vector>

#include <QAbstractTableModel>
#include <QFutureWatcher>
#include <QObject>
#include <QString>
#include <QStringList>

#include "hpsim/core/scenario.h"
#include "hpsim/gui/engine.h"

namespace hpsim::gui {

enum class SweepParameter {
  kTopK,         // model.top_k
  kGranularity,  // g: E x g, k x g, f / g from the base scenario (the paper's "G" variants are g = 2)
  kSkew,         // workload.zipf_skew (0 = uniform routing)
  kRanks,        // parallel.num_ranks (the cluster grows to hold W when needed)
  kTokens,       // workload.tokens_per_rank
};
QString sweepParameterName(SweepParameter p);
QString sweepParameterSymbol(SweepParameter p);  // "k", "g", "skew", "W", "n"
std::vector<SweepParameter> allSweepParameters();

struct SweepSpec {
  SweepParameter parameter = SweepParameter::kTopK;
  double from = 1;
  double to = 8;
  double step = 1;  // added (linear) or multiplied (geometric)
  bool geometric = false;
  static constexpr int kMaxPoints = 2000;

  // The values, in order; empty with an error message if the range is unusable.
  std::vector<double> values(QString* error = nullptr) const;
};

// One strategy at one point.
struct SweepSide {
  bool ok = false;                // the strategy could run at this point
  double layer_us = 0;            // forward + backward of one MoE layer (timing only)
  double compute_us = 0;          // sum of stage times (slowest rank) on the compute lane
  double comm_us = 0;             // the same on the communication lane
  double peak_bytes = 0;          // memory: largest rank
  double dispatch_max_bytes = 0;  // dispatch bytes of the busiest sender
};

struct SweepPoint {
  int index = 0;
  double value = 0;
  bool has_timing = false;
  SweepSide ep, hp;
  QString error;  // the point could not be evaluated at all
  QString note;   // what was adjusted or left out

  std::optional<double> hpSpeedup() const;  // EP layer time / HP layer time
};

// The scenario of one point. Errors (e.g. f not divisible by g) name the field and the rule.
core::Expected<core::Scenario> sweepScenario(const core::Scenario& base, SweepParameter parameter, double value,
                                             QString* note = nullptr);
// Evaluates one point (any thread).
SweepPoint evaluateSweepPoint(const Engine& engine, const core::Scenario& base, SweepParameter parameter, int index,
                              double value);

class SweepRunner : public QObject {
  Q_OBJECT

 public:
  explicit SweepRunner(QObject* parent = nullptr);
  ~SweepRunner() override;

  // Starts a sweep (cancelling a running one). Returns false with `error` set when the range is bad.
  bool start(const Engine& engine, const core::Scenario& base, const SweepSpec& spec, QString* error = nullptr);
  void cancel();
  bool isRunning() const { return m_watcher.isRunning(); }
  int numPoints() const { return m_numPoints; }

 signals:
  void started(int numPoints);
  void pointReady(const hpsim::gui::SweepPoint& point);
  void progress(int done, int total);
  void finished(bool cancelled);

 private:
  QFutureWatcher<SweepPoint> m_watcher;
  int m_numPoints = 0;
};

class SweepModel : public QAbstractTableModel {
  Q_OBJECT

 public:
  enum Column {
    kValueColumn,
    kEpLayerColumn,
    kHpLayerColumn,
    kSpeedupColumn,
    kEpComputeColumn,
    kEpCommColumn,
    kHpComputeColumn,
    kHpCommColumn,
    kEpPeakColumn,
    kHpPeakColumn,
    kEpDispatchColumn,
    kHpDispatchColumn,
    kNoteColumn,
    kNumColumns
  };
  enum Role { kValueRole = Qt::UserRole + 1 };

  explicit SweepModel(QObject* parent = nullptr);
  void reset(SweepParameter parameter);
  void addPoint(const SweepPoint& point);  // kept sorted by index
  const std::vector<SweepPoint>& points() const { return m_points; }
  SweepParameter parameter() const { return m_parameter; }

  int rowCount(const QModelIndex& parent = {}) const override;
  int columnCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

 private:
  QVariant value(const SweepPoint& p, int column) const;
  SweepParameter m_parameter = SweepParameter::kTopK;
  std::vector<SweepPoint> m_points;
};

}  // namespace hpsim::gui

Q_DECLARE_METATYPE(hpsim::gui::SweepPoint)
