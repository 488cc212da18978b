#pragma once
// Workbench: everything behind the window, without widgets. Owns the scenario document, the
// analysis controller, the result models (fed by signal when a result arrives), the sweep, and the
// measured timelines loaded from files. Tests drive it headless; MainWindow puts views on it.

#include <QObject>
#include <QString>
#include <QStringList>

#include "hpsim/gui/models/analysis_controller.h"
#include "hpsim/gui/models/memory_model.h"
#include "hpsim/gui/models/report_models.h"
#include "hpsim/gui/models/scenario_document.h"
#include "hpsim/gui/models/scenario_model.h"
#include "hpsim/gui/models/sweep.h"
#include "hpsim/gui/models/timeline_model.h"
#include "hpsim/gui/models/traffic_models.h"

namespace hpsim::gui {

class Workbench : public QObject {
  Q_OBJECT

 public:
  explicit Workbench(QObject* parent = nullptr);

  ScenarioDocument* document() { return &m_document; }
  ScenarioModel* scenarioModel() { return &m_scenarioModel; }
  AnalysisController* analysis() { return &m_analysis; }

  ReportSummaryModel* summary() { return &m_summary; }
  StageCostModel* stages(const QString& strategy) {
    return strategy == QLatin1String("ep") ? &m_epStages : &m_hpStages;
  }
  TrafficModel* traffic(const QString& strategy) {
    return strategy == QLatin1String("ep") ? &m_epTraffic : &m_hpTraffic;
  }
  RankTrafficModel* rankTraffic() { return &m_rankTraffic; }
  TrafficSummaryModel* trafficSummary() { return &m_trafficSummary; }
  MemoryModel* memory(const QString& strategy) { return strategy == QLatin1String("ep") ? &m_epMemory : &m_hpMemory; }
  TimelineModel* timeline(const QString& strategy) {
    return strategy == QLatin1String("ep") ? &m_epTimeline : &m_hpTimeline;
  }
  // Measured (or otherwise loaded) timelines, matched to a strategy by their "strategy" field.
  TimelineModel* measuredTimeline(const QString& strategy) {
    return strategy == QLatin1String("ep") ? &m_epMeasured : &m_hpMeasured;
  }
  SweepRunner* sweepRunner() { return &m_sweepRunner; }
  SweepModel* sweepModel() { return &m_sweepModel; }

  QStringList trafficPhases() const { return m_phases; }
  QString trafficPhase() const { return m_phase; }
  void setTrafficPhase(const QString& phase);

  // Reads a timeline file (hpsim timeline JSON, or Chrome trace with hpsim::traces) and shows it
  // over the strategy it names, or over `strategyIfUnnamed` ("ep"/"hp") when the file names none
  // (traces from other tools). Returns the error text, or empty; `unnamed` tells the caller that
  // asking the user for the strategy would help.
  QString loadMeasuredTimeline(const QString& path, const QString& strategyIfUnnamed = {}, bool* unnamed = nullptr);
  void clearMeasuredTimelines();

  // Starts a sweep from the current scenario with the current engine. Returns the error, or empty.
  QString startSweep(const SweepSpec& spec);

 signals:
  void resultChanged();  // every result model has been updated (or cleared)
  void trafficPhaseChanged(const QString& phase);
  void measuredTimelineChanged();

 private:
  void onResult(const ResultPtr& result);
  void onCleared();

  ScenarioDocument m_document;
  ScenarioModel m_scenarioModel{&m_document};
  AnalysisController m_analysis{&m_document};
  ReportSummaryModel m_summary;
  StageCostModel m_epStages{QStringLiteral("ep")}, m_hpStages{QStringLiteral("hp")};
  TrafficModel m_epTraffic{QStringLiteral("ep")}, m_hpTraffic{QStringLiteral("hp")};
  RankTrafficModel m_rankTraffic;
  TrafficSummaryModel m_trafficSummary;
  MemoryModel m_epMemory{QStringLiteral("ep")}, m_hpMemory{QStringLiteral("hp")};
  TimelineModel m_epTimeline{QStringLiteral("ep")}, m_hpTimeline{QStringLiteral("hp")};
  TimelineModel m_epMeasured{QStringLiteral("ep")}, m_hpMeasured{QStringLiteral("hp")};
  SweepRunner m_sweepRunner;
  SweepModel m_sweepModel;
  QStringList m_phases;
  QString m_phase = QStringLiteral("dispatch");
};

}  // namespace hpsim::gui
