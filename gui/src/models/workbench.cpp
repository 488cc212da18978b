#include "hpsim/gui/models/workbench.h"

namespace hpsim::gui {

Workbench::Workbench(QObject* parent) : QObject(parent) {
  connect(&m_analysis, &AnalysisController::resultReady, this, &Workbench::onResult);
  connect(&m_analysis, &AnalysisController::resultCleared, this, &Workbench::onCleared);
  connect(&m_sweepRunner, &SweepRunner::pointReady, &m_sweepModel, &SweepModel::addPoint);
  m_epTraffic.setPhase(m_phase);
  m_hpTraffic.setPhase(m_phase);
}

void Workbench::onResult(const ResultPtr& result) {
  m_phases = gui::trafficPhases(*result);
  if (!m_phases.contains(m_phase) && !m_phases.isEmpty()) {
    m_phase = m_phases.contains(QStringLiteral("dispatch")) ? QStringLiteral("dispatch") : m_phases.front();
    m_epTraffic.setPhase(m_phase);
    m_hpTraffic.setPhase(m_phase);
    emit trafficPhaseChanged(m_phase);
  }
  m_summary.setResult(result);
  m_epStages.setResult(result);
  m_hpStages.setResult(result);
  m_epTraffic.setResult(result);
  m_hpTraffic.setResult(result);
  m_rankTraffic.setMatrices(m_epTraffic.matrix(), m_hpTraffic.matrix());
  m_trafficSummary.setResult(result);
  m_epMemory.setResult(result);
  m_hpMemory.setResult(result);
  m_epTimeline.setResult(result);
  m_hpTimeline.setResult(result);
  emit resultChanged();
}

void Workbench::onCleared() {
  m_summary.clear();
  m_epStages.clear();
  m_hpStages.clear();
  m_epTraffic.clear();
  m_hpTraffic.clear();
  m_rankTraffic.setMatrices(nullptr, nullptr);
  m_trafficSummary.clear();
  m_epMemory.clear();
  m_hpMemory.clear();
  m_epTimeline.clear();
  m_hpTimeline.clear();
  emit resultChanged();
}

void Workbench::setTrafficPhase(const QString& phase) {
  if (phase == m_phase) return;
  m_phase = phase;
  m_epTraffic.setPhase(phase);
  m_hpTraffic.setPhase(phase);
  m_rankTraffic.setMatrices(m_epTraffic.matrix(), m_hpTraffic.matrix());
  emit trafficPhaseChanged(phase);
}

QString Workbench::loadMeasuredTimeline(const QString& path, const QString& strategyIfUnnamed, bool* unnamed) {
  if (unnamed) *unnamed = false;
  auto timeline = Engine::load_timeline(path.toStdString());
  if (!timeline) return QString::fromStdString(timeline.error().message);
  if (timeline->strategy.empty() && !strategyIfUnnamed.isEmpty()) timeline->strategy = strategyIfUnnamed.toStdString();
  if (timeline->strategy.empty() && unnamed) *unnamed = true;
  const QString strategy = QString::fromStdString(timeline->strategy);
  if (strategy != QLatin1String("ep") && strategy != QLatin1String("hp")) {
    return tr("%1: the timeline's \"strategy\" is \"%2\"; expected \"ep\" or \"hp\"").arg(path, strategy);
  }
  measuredTimeline(strategy)->setTimeline(std::move(*timeline));
  emit measuredTimelineChanged();
  return {};
}

void Workbench::clearMeasuredTimelines() {
  m_epMeasured.clear();
  m_hpMeasured.clear();
  emit measuredTimelineChanged();
}

QString Workbench::startSweep(const SweepSpec& spec) {
  QString error;
  m_sweepModel.reset(spec.parameter);
  if (!m_sweepRunner.start(m_analysis.engine(), m_document.scenario(), spec, &error)) return error;
  return {};
}

}  // namespace hpsim::gui
