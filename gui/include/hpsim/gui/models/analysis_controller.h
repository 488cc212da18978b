#pragma once
// AnalysisController: evaluates the document's scenario with the Engine off the GUI thread and
// hands the result (a value type) to whoever listens. Edits are debounced; a result that arrives
// after a newer edit is dropped, so views never show numbers of a scenario that is gone.

#include <optional>

#include <QFutureWatcher>
#include <QObject>
#include <QString>
#include <QTimer>

#include "hpsim/gui/engine.h"

namespace hpsim::gui {

class ScenarioDocument;

class AnalysisController : public QObject {
  Q_OBJECT

 public:
  enum class State {
    kIdle,         // nothing evaluated yet
    kRunning,      // a job is in flight
    kReady,        // result() is the current scenario's
    kBlocked,      // the scenario breaks a rule (message() lists them)
    kUnavailable,  // this build has no engine
    kFailed,       // the engine returned an error
  };
  Q_ENUM(State)

  explicit AnalysisController(ScenarioDocument* document, QObject* parent = nullptr);
  ~AnalysisController() override;

  const Engine& engine() const { return m_engine; }
  // The profile timing is read from; `source` names it for the status bar (usually its file).
  void setProfile(std::optional<core::Profile> profile, const QString& source);
  QString profileSource() const { return m_profileSource; }
  void setEngineOptions(const EngineOptions& options);

  State state() const { return m_state; }
  QString message() const { return m_message; }
  const ResultPtr& result() const { return m_result; }
  void setDebounceMs(int ms) { m_debounce.setInterval(ms); }

 public slots:
  void requestUpdate();  // after the debounce interval
  void updateNow();

 signals:
  void resultReady(const hpsim::gui::ResultPtr& result);
  void resultCleared(const QString& why);
  void stateChanged(hpsim::gui::AnalysisController::State state);

 private:
  struct Outcome {
    quint64 generation = 0;
    ResultPtr result;
    QString error;
  };
  void setState(State state, const QString& message);
  void onFinished();

  ScenarioDocument* m_document;
  Engine m_engine;
  QString m_profileSource;
  QTimer m_debounce;
  QFutureWatcher<Outcome> m_watcher;
  quint64 m_generation = 0;
  bool m_pending = false;
  State m_state = State::kIdle;
  QString m_message;
  ResultPtr m_result;
};

}  // namespace hpsim::gui

Q_DECLARE_METATYPE(hpsim::gui::ResultPtr)
