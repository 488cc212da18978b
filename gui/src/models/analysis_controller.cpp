#include "hpsim/gui/models/analysis_controller.h"

#include <QtConcurrent/QtConcurrentRun>

#include "hpsim/gui/models/scenario_document.h"

namespace hpsim::gui {

AnalysisController::AnalysisController(ScenarioDocument* document, QObject* parent)
    : QObject(parent), m_document(document) {
  qRegisterMetaType<hpsim::gui::ResultPtr>();
  m_debounce.setSingleShot(true);
  m_debounce.setInterval(120);
  connect(&m_debounce, &QTimer::timeout, this, &AnalysisController::updateNow);
  connect(m_document, &ScenarioDocument::scenarioChanged, this, &AnalysisController::requestUpdate);
  connect(&m_watcher, &QFutureWatcher<Outcome>::finished, this, &AnalysisController::onFinished);
}

AnalysisController::~AnalysisController() { m_watcher.waitForFinished(); }

void AnalysisController::setProfile(std::optional<core::Profile> profile, const QString& source) {
  m_engine.set_profile(std::move(profile));
  m_profileSource = source;
  requestUpdate();
}

void AnalysisController::setEngineOptions(const EngineOptions& options) {
  m_engine.set_options(options);
  requestUpdate();
}

void AnalysisController::requestUpdate() { m_debounce.start(); }

void AnalysisController::updateNow() {
  m_debounce.stop();
  ++m_generation;
  if (!Engine::capabilities().has_traffic) {
    m_result.reset();
    setState(State::kUnavailable, QString::fromStdString(Engine::describe_build()));
    emit resultCleared(m_message);
    return;
  }
  const core::Scenario scenario = m_document->scenario();
  if (const auto errors = Engine::blocking_errors(scenario); !errors.empty()) {
    m_result.reset();
    setState(State::kBlocked, QString::fromStdString(core::join_field_errors(errors).message));
    emit resultCleared(m_message);
    return;
  }
  if (m_watcher.isRunning()) {
    m_pending = true;  // started again when the current job ends
    setState(State::kRunning, tr("evaluating…"));
    return;
  }
  const quint64 generation = m_generation;
  const Engine engine = m_engine;
  m_watcher.setFuture(QtConcurrent::run([engine, scenario, generation] {
    Outcome out;
    out.generation = generation;
    auto result = engine.evaluate(scenario);
    if (result) {
      out.result = std::make_shared<const EngineResult>(std::move(*result));
    } else {
      out.error = QString::fromStdString(result.error().message);
    }
    return out;
  }));
  setState(State::kRunning, tr("evaluating…"));
}

void AnalysisController::onFinished() {
  Outcome out = m_watcher.result();
  if (m_pending || out.generation != m_generation) {
    m_pending = false;
    updateNow();
    return;
  }
  if (out.result) {
    m_result = std::move(out.result);
    setState(State::kReady, QString());
    emit resultReady(m_result);
  } else {
    m_result.reset();
    setState(State::kFailed, out.error);
    emit resultCleared(out.error);
  }
}

void AnalysisController::setState(State state, const QString& message) {
  if (m_state == state && m_message == message) return;
  m_state = state;
  m_message = message;
  emit stateChanged(state);
}

}  // namespace hpsim::gui
