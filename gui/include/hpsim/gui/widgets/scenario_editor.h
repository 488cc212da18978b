#pragma once
// ScenarioEditor: forms for the scenario's sections (model, parallelism, cluster, workload,
// training) built from ScenarioModel's rows, a message under each field that breaks a rule
// (core's wording, verbatim), and preset pickers. It only forwards edits to the model.

#include <QHash>
#include <QWidget>

class QComboBox;
class QLabel;
class QLineEdit;

namespace hpsim::gui {

class ScenarioDocument;
class ScenarioModel;

class ScenarioEditor : public QWidget {
  Q_OBJECT

 public:
  ScenarioEditor(ScenarioModel* model, ScenarioDocument* document, QWidget* parent = nullptr);

  // The editor widget of a field (QLineEdit or QComboBox) and its message label.
  QWidget* editorFor(const QString& path) const { return m_editors.value(path); }
  QLabel* messageFor(const QString& path) const { return m_messages.value(path); }
  QSize sizeHint() const override { return {380, 700}; }

 signals:
  void statusMessage(const QString& text);

 private:
  void refreshField(const QModelIndex& valueIndex);
  void refreshAll();
  void commit(const QString& path, const QString& text);

  ScenarioModel* m_model;
  ScenarioDocument* m_document;
  QHash<QString, QWidget*> m_editors;
  QHash<QString, QLabel*> m_messages;
  QLabel* m_summary;
};

}  // namespace hpsim::gui
