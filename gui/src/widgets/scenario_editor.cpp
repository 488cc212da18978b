#include "hpsim/gui/widgets/scenario_editor.h"

#include <QComboBox>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QScrollArea>
#include <QVBoxLayout>

#include "hpsim/core/presets.h"
#include "hpsim/gui/models/scenario_document.h"
#include "hpsim/gui/models/scenario_fields.h"
#include "hpsim/gui/models/scenario_model.h"

namespace hpsim::gui {
namespace {

QComboBox* presetCombo(const std::vector<core::Preset>& presets, const QString& placeholder, QWidget* parent) {
  auto* combo = new QComboBox(parent);
  combo->addItem(placeholder, QString());
  for (const auto& p : presets) {
    combo->addItem(QString::fromStdString(p.name), QString::fromStdString(p.name));
    combo->setItemData(combo->count() - 1, QString::fromStdString(p.description), Qt::ToolTipRole);
  }
  combo->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
  combo->setMinimumContentsLength(14);
  return combo;
}

}  // namespace

ScenarioEditor::ScenarioEditor(ScenarioModel* model, ScenarioDocument* document, QWidget* parent)
    : QWidget(parent), m_model(model), m_document(document) {
  auto* outer = new QVBoxLayout(this);
  outer->setContentsMargins(4, 4, 4, 4);

  // Presets: a whole scenario, or only the model or the cluster part.
  auto* presets = new QGroupBox(tr("Presets"), this);
  auto* pl = new QFormLayout(presets);
  struct Picker {
    QComboBox* combo;
    core::Status (ScenarioDocument::*apply)(const QString&);
  };
  const Picker pickers[] = {
      {presetCombo(core::scenario_presets(), tr("— scenario —"), presets), &ScenarioDocument::applyScenarioPreset},
      {presetCombo(core::model_presets(), tr("— model —"), presets), &ScenarioDocument::applyModelPreset},
      {presetCombo(core::cluster_presets(), tr("— cluster —"), presets), &ScenarioDocument::applyClusterPreset},
  };
  const QString labels[] = {tr("Scenario"), tr("Model"), tr("Cluster")};
  const QString names[] = {QStringLiteral("scenarioPreset"), QStringLiteral("modelPreset"),
                           QStringLiteral("clusterPreset")};
  for (int i = 0; i < 3; ++i) {
    const Picker picker = pickers[i];
    picker.combo->setObjectName(names[i]);
    pl->addRow(labels[i], picker.combo);
    connect(picker.combo, &QComboBox::activated, this, [this, picker](int index) {
      const QString name = picker.combo->itemData(index).toString();
      if (name.isEmpty()) return;
      const core::Status status = (m_document->*picker.apply)(name);
      emit statusMessage(status ? tr("applied preset %1 (Ctrl+Z undoes)").arg(name)
                                : QString::fromStdString(status.error().message));
      picker.combo->setCurrentIndex(0);
    });
  }
  outer->addWidget(presets);

  m_summary = new QLabel(this);
  m_summary->setWordWrap(true);
  m_summary->setObjectName(QStringLiteral("validationSummary"));
  outer->addWidget(m_summary);

  // One group per section, one row per field: editor, unit, and the message beneath.
  auto* scroll = new QScrollArea(this);
  scroll->setWidgetResizable(true);
  scroll->setFrameShape(QFrame::NoFrame);
  auto* body = new QWidget(scroll);
  auto* bodyLayout = new QVBoxLayout(body);
  bodyLayout->setContentsMargins(0, 0, 0, 0);
  for (int s = 0; s < m_model->rowCount(); ++s) {
    const QModelIndex section = m_model->index(s, 0);
    auto* group = new QGroupBox(m_model->data(section).toString(), body);
    auto* form = new QFormLayout(group);
    form->setFieldGrowthPolicy(QFormLayout::AllNonFixedFieldsGrow);
    for (int r = 0; r < m_model->rowCount(section); ++r) {
      const QModelIndex value = m_model->index(r, ScenarioModel::kValueColumn, section);
      const QString path = value.data(ScenarioModel::kPathRole).toString();
      const auto kind = static_cast<FieldKind>(value.data(ScenarioModel::kKindRole).toInt());
      QWidget* editor = nullptr;
      if (kind == FieldKind::kChoice) {
        auto* combo = new QComboBox(group);
        combo->addItems(value.data(ScenarioModel::kChoicesRole).toStringList());
        connect(combo, &QComboBox::activated, this, [this, path, combo] { commit(path, combo->currentText()); });
        editor = combo;
      } else {
        auto* line = new QLineEdit(group);
        connect(line, &QLineEdit::editingFinished, this, [this, path, line] {
          if (line->isModified()) commit(path, line->text());
          line->setModified(false);
        });
        editor = line;
      }
      editor->setObjectName(path);
      editor->setToolTip(value.data(Qt::ToolTipRole).toString());
      QWidget* field = editor;
      const QString unit = m_model->index(r, ScenarioModel::kUnitColumn, section).data().toString();
      auto* cell = new QWidget(group);
      auto* v = new QVBoxLayout(cell);
      v->setContentsMargins(0, 0, 0, 0);
      v->setSpacing(1);
      if (!unit.isEmpty()) {
        auto* h = new QHBoxLayout;
        h->setContentsMargins(0, 0, 0, 0);
        h->addWidget(editor, 1);
        auto* u = new QLabel(unit, cell);
        u->setStyleSheet(QStringLiteral("color: palette(mid);"));
        h->addWidget(u);
        v->addLayout(h);
      } else {
        v->addWidget(field);
      }
      auto* message = new QLabel(cell);
      message->setWordWrap(true);
      message->setObjectName(path + QStringLiteral(".message"));
      message->hide();
      v->addWidget(message);
      form->addRow(m_model->index(r, ScenarioModel::kFieldColumn, section).data().toString(), cell);
      m_editors.insert(path, editor);
      m_messages.insert(path, message);
    }
    bodyLayout->addWidget(group);
  }
  bodyLayout->addStretch(1);
  scroll->setWidget(body);
  outer->addWidget(scroll, 1);

  connect(m_model, &QAbstractItemModel::dataChanged, this, [this](const QModelIndex& tl, const QModelIndex& br) {
    for (int r = tl.row(); r <= br.row(); ++r)
      refreshField(m_model->index(r, ScenarioModel::kValueColumn, tl.parent()));
  });
  connect(m_model, &ScenarioModel::validationChanged, this, &ScenarioEditor::refreshAll);
  refreshAll();
}

void ScenarioEditor::commit(const QString& path, const QString& text) {
  const QModelIndex index = m_model->indexOfPath(path);
  if (!m_model->setData(index, text)) refreshField(index);  // a parse error: show it, keep the text
}

void ScenarioEditor::refreshField(const QModelIndex& value) {
  const QString path = value.data(ScenarioModel::kPathRole).toString();
  QWidget* editor = m_editors.value(path);
  QLabel* message = m_messages.value(path);
  if (!editor || !message) return;
  const QStringList messages = value.data(ScenarioModel::kMessagesRole).toStringList();
  const bool blocking = value.data(ScenarioModel::kBlockingRole).toBool();
  const bool parseError = value.data(ScenarioModel::kParseErrorRole).toBool();
  if (auto* line = qobject_cast<QLineEdit*>(editor)) {
    // Keep what the user typed while it does not parse, so they can fix it.
    if (!parseError && !line->hasFocus()) line->setText(value.data(Qt::DisplayRole).toString());
    if (!parseError && line->hasFocus() && !line->isModified()) line->setText(value.data(Qt::DisplayRole).toString());
  } else if (auto* combo = qobject_cast<QComboBox*>(editor)) {
    const QSignalBlocker block(combo);
    combo->setCurrentText(value.data(Qt::DisplayRole).toString());
  }
  message->setText(messages.join(QLatin1Char('\n')));
  message->setVisible(!messages.isEmpty());
  message->setStyleSheet(blocking ? QStringLiteral("color: #c62828;") : QStringLiteral("color: #b26a00;"));
  editor->setStyleSheet(messages.isEmpty() ? QString()
                                           : (blocking ? QStringLiteral("border: 1px solid #c62828;")
                                                       : QStringLiteral("border: 1px solid #b26a00;")));
}

void ScenarioEditor::refreshAll() {
  for (int s = 0; s < m_model->rowCount(); ++s) {
    const QModelIndex section = m_model->index(s, 0);
    for (int r = 0; r < m_model->rowCount(section); ++r) {
      refreshField(m_model->index(r, ScenarioModel::kValueColumn, section));
    }
  }
  const int blocking = m_model->numBlocking();
  const int all = static_cast<int>(m_model->allMessages().size()) - m_model->numParseErrors();
  if (m_model->numParseErrors() > 0) {
    m_summary->setText(
        tr("%n field(s) hold text that is not a value (red): fix or undo them", nullptr, m_model->numParseErrors()) +
        (blocking > 0 ? tr("; %n rule(s) broken", nullptr, blocking) : QString()));
    m_summary->setStyleSheet(QStringLiteral("color: #c62828;"));
  } else if (all == 0) {
    m_summary->setText(tr("✔ valid for EP and HP"));
    m_summary->setStyleSheet(QStringLiteral("color: #2e7d32;"));
  } else if (blocking == 0) {
    m_summary->setText(tr("%n rule(s) leave one strategy out (amber)", nullptr, all));
    m_summary->setStyleSheet(QStringLiteral("color: #b26a00;"));
  } else {
    m_summary->setText(tr("%n rule(s) broken: nothing can be evaluated until fixed (red)", nullptr, blocking));
    m_summary->setStyleSheet(QStringLiteral("color: #c62828;"));
  }
}

}  // namespace hpsim::gui
