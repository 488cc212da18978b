#include "hpsim/gui/models/scenario_document.h"

#include <QFileInfo>
#include <QUndoCommand>

#include "hpsim/core/json.h"
#include "hpsim/core/presets.h"
#include "hpsim/gui/models/scenario_fields.h"

namespace hpsim::gui {

// Whole-scenario snapshots: a Scenario is a few hundred bytes, so before/after copies keep undo
// exact for field edits and preset changes alike.
class SetScenarioCommand : public QUndoCommand {
 public:
  SetScenarioCommand(ScenarioDocument* doc, core::Scenario before, core::Scenario after, const QString& text)
      : QUndoCommand(text), m_doc(doc), m_before(std::move(before)), m_after(std::move(after)) {}
  void undo() override { m_doc->assign(m_before); }
  void redo() override { m_doc->assign(m_after); }

 private:
  ScenarioDocument* m_doc;
  core::Scenario m_before;
  core::Scenario m_after;
};

ScenarioDocument::ScenarioDocument(QObject* parent) : QObject(parent) {
  m_scenario = core::default_scenarios().front();
  connect(&m_undo, &QUndoStack::cleanChanged, this, [this](bool clean) { emit modifiedChanged(!clean); });
}

QString ScenarioDocument::displayName() const {
  if (!m_filePath.isEmpty()) return QFileInfo(m_filePath).fileName();
  return m_scenario.name.empty() ? tr("untitled") : QString::fromStdString(m_scenario.name);
}

void ScenarioDocument::setField(int field, const QVariant& value) {
  const auto& fields = scenario_fields();
  if (field < 0 || field >= static_cast<int>(fields.size())) return;
  const FieldSpec& spec = fields[static_cast<std::size_t>(field)];
  if (spec.get(m_scenario) == value) return;
  core::Scenario after = m_scenario;
  spec.set(after, value);
  m_undo.push(new SetScenarioCommand(this, m_scenario, std::move(after),
                                     tr("Set %1 to %2").arg(spec.label, field_text(spec, value))));
}

void ScenarioDocument::replaceScenario(const core::Scenario& scenario, const QString& what) {
  m_undo.push(new SetScenarioCommand(this, m_scenario, scenario, what));
}

core::Status ScenarioDocument::applyScenarioPreset(const QString& name) {
  auto preset = core::scenario_preset(name.toStdString());
  if (!preset) return preset.error();
  replaceScenario(*preset, tr("Scenario preset %1").arg(name));
  return core::Status::ok();
}

core::Status ScenarioDocument::applyModelPreset(const QString& name) {
  auto preset = core::model_preset(name.toStdString());
  if (!preset) return preset.error();
  core::Scenario after = m_scenario;
  after.model = *preset;
  replaceScenario(after, tr("Model preset %1").arg(name));
  return core::Status::ok();
}

core::Status ScenarioDocument::applyClusterPreset(const QString& name) {
  auto preset = core::cluster_preset(name.toStdString());
  if (!preset) return preset.error();
  core::Scenario after = m_scenario;
  after.cluster = *preset;
  replaceScenario(after, tr("Cluster preset %1").arg(name));
  return core::Status::ok();
}

void ScenarioDocument::newScenario() { reset(core::default_scenarios().front(), QString()); }

core::Status ScenarioDocument::open(const QString& path) {
  auto text = core::read_text_file(path.toStdString());
  if (!text) return text.error();
  auto scenario = core::parse_scenario(*text);
  if (!scenario) {
    return core::Error{scenario.error().code, path.toStdString() + ":\n" + scenario.error().message};
  }
  reset(*scenario, path);
  return core::Status::ok();
}

core::Status ScenarioDocument::save(const QString& path) {
  HPSIM_TRY(core::write_text_file(path.toStdString(), core::to_json(m_scenario)));
  if (m_filePath != path) {
    m_filePath = path;
    emit filePathChanged(m_filePath);
  }
  m_undo.setClean();
  return core::Status::ok();
}

void ScenarioDocument::assign(const core::Scenario& scenario) {
  m_scenario = scenario;
  emit scenarioChanged();
}

void ScenarioDocument::reset(const core::Scenario& scenario, const QString& path) {
  m_undo.clear();
  m_scenario = scenario;
  m_filePath = path;
  emit filePathChanged(m_filePath);
  emit scenarioChanged();
  emit modifiedChanged(false);
}

}  // namespace hpsim::gui
