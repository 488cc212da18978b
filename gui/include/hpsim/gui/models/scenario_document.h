#pragma once
// ScenarioDocument: the scenario being edited, its file, and its undo history. Every edit is an
// undo command on undoStack(); opening or creating a scenario starts a fresh history.

#include <QObject>
#include <QString>
#include <QUndoStack>
#include <QVariant>

#include "hpsim/core/error.h"
#include "hpsim/core/scenario.h"

namespace hpsim::gui {

class ScenarioDocument : public QObject {
  Q_OBJECT

 public:
  explicit ScenarioDocument(QObject* parent = nullptr);

  const core::Scenario& scenario() const { return m_scenario; }
  QUndoStack* undoStack() { return &m_undo; }
  QString filePath() const { return m_filePath; }
  // A name for the title bar: the file's name, or the scenario's name when unsaved.
  QString displayName() const;
  bool isModified() const { return !m_undo.isClean(); }

  // Undoable edits. setField takes a value of the field's type (scenario_fields.h).
  void setField(int field, const QVariant& value);
  void replaceScenario(const core::Scenario& scenario, const QString& what);
  core::Status applyScenarioPreset(const QString& name);
  core::Status applyModelPreset(const QString& name);
  core::Status applyClusterPreset(const QString& name);

  // Files. open() reads the structure strictly (core::parse_scenario) but keeps a scenario that
  // breaks rules, so that the editor can show and fix them.
  void newScenario();
  core::Status open(const QString& path);
  core::Status save(const QString& path);

 signals:
  void scenarioChanged();
  void filePathChanged(const QString& path);
  void modifiedChanged(bool modified);

 private:
  friend class SetScenarioCommand;
  void assign(const core::Scenario& scenario);
  void reset(const core::Scenario& scenario, const QString& path);

  core::Scenario m_scenario;
  QUndoStack m_undo;
  QString m_filePath;
};

}  // namespace hpsim::gui
