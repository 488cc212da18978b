#include "hpsim/gui/models/scenario_model.h"

#include <QBrush>
#include <QColor>

#include "hpsim/core/validate.h"
#include "hpsim/gui/engine.h"
#include "hpsim/gui/models/scenario_document.h"
#include "hpsim/gui/models/scenario_fields.h"

namespace hpsim::gui {
namespace {

// internalId: sections carry kSectionId, fields carry their section row.
constexpr quintptr kSectionId = ~quintptr(0);

}  // namespace

ScenarioModel::ScenarioModel(ScenarioDocument* document, QObject* parent)
    : QAbstractItemModel(parent), m_document(document), m_sections(scenario_sections()) {
  const auto& fields = scenario_fields();
  m_sectionFields.resize(static_cast<std::size_t>(m_sections.size()));
  m_fieldSection.resize(fields.size());
  m_fieldRow.resize(fields.size());
  for (std::size_t i = 0; i < fields.size(); ++i) {
    const int section = static_cast<int>(m_sections.indexOf(fields[i].section));
    auto& list = m_sectionFields[static_cast<std::size_t>(section)];
    m_fieldSection[i] = section;
    m_fieldRow[i] = static_cast<int>(list.size());
    list.push_back(static_cast<int>(i));
  }
  connect(m_document, &ScenarioDocument::scenarioChanged, this, [this] {
    m_parseErrors.clear();
    revalidate();
    // Every field may have changed (presets, undo of a whole scenario): one signal per section.
    for (int s = 0; s < m_sections.size(); ++s) {
      const int n = static_cast<int>(m_sectionFields[static_cast<std::size_t>(s)].size());
      if (n > 0) emit dataChanged(index(0, 0, index(s, 0)), index(n - 1, kNumColumns - 1, index(s, 0)));
    }
  });
  revalidate();
}

QModelIndex ScenarioModel::index(int row, int column, const QModelIndex& parent) const {
  if (!hasIndex(row, column, parent)) return {};
  if (!parent.isValid()) return createIndex(row, column, kSectionId);
  return createIndex(row, column, static_cast<quintptr>(parent.row()));
}

QModelIndex ScenarioModel::parent(const QModelIndex& child) const {
  if (!child.isValid() || child.internalId() == kSectionId) return {};
  return createIndex(static_cast<int>(child.internalId()), 0, kSectionId);
}

int ScenarioModel::rowCount(const QModelIndex& parent) const {
  if (!parent.isValid()) return static_cast<int>(m_sections.size());
  if (parent.internalId() == kSectionId && parent.column() == 0) {
    return static_cast<int>(m_sectionFields[static_cast<std::size_t>(parent.row())].size());
  }
  return 0;
}

int ScenarioModel::columnCount(const QModelIndex&) const { return kNumColumns; }

QVariant ScenarioModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid()) return {};
  if (index.internalId() == kSectionId) {
    if (index.column() == kFieldColumn && role == Qt::DisplayRole) return m_sections[index.row()];
    return {};
  }
  const int fieldIndex =
      m_sectionFields[static_cast<std::size_t>(index.internalId())][static_cast<std::size_t>(index.row())];
  const FieldSpec& field = scenario_fields()[static_cast<std::size_t>(fieldIndex)];
  QStringList messages = m_messages.value(field.path);
  if (m_parseErrors.contains(field.path)) messages.prepend(m_parseErrors.value(field.path));
  const bool blocking = m_blocking.value(field.path) || m_parseErrors.contains(field.path);

  switch (role) {
    case kPathRole:
      return field.path;
    case kKindRole:
      return static_cast<int>(field.kind);
    case kChoicesRole:
      return field.choices;
    case kMessagesRole:
      return messages;
    case kBlockingRole:
      return blocking;
    case kFieldIndexRole:
      return fieldIndex;
    case kParseErrorRole:
      return m_parseErrors.contains(field.path);
    case Qt::ToolTipRole:
      if (!messages.isEmpty()) return messages.join(QLatin1Char('\n'));
      return field.help.isEmpty() ? field.path : field.path + QStringLiteral(" — ") + field.help;
    case Qt::ForegroundRole:
      if (index.column() == kMessageColumn && !messages.isEmpty()) {
        return QBrush(blocking ? QColor(0xc6, 0x28, 0x28) : QColor(0xb2, 0x6a, 0x00));
      }
      return {};
    default:
      break;
  }
  if (role != Qt::DisplayRole && role != Qt::EditRole) return {};
  switch (index.column()) {
    case kFieldColumn:
      return field.label;
    case kValueColumn:
      return role == Qt::EditRole ? field.get(m_document->scenario())
                                  : QVariant(field_text(field, field.get(m_document->scenario())));
    case kUnitColumn:
      return field.unit;
    case kMessageColumn:
      return messages.join(QLatin1Char('\n'));
    default:
      return {};
  }
}

bool ScenarioModel::setData(const QModelIndex& index, const QVariant& value, int role) {
  if (!index.isValid() || index.internalId() == kSectionId || index.column() != kValueColumn || role != Qt::EditRole) {
    return false;
  }
  const int fieldIndex =
      m_sectionFields[static_cast<std::size_t>(index.internalId())][static_cast<std::size_t>(index.row())];
  const FieldSpec& field = scenario_fields()[static_cast<std::size_t>(fieldIndex)];
  QVariant typed = value;
  if (value.typeId() == QMetaType::QString && field.kind != FieldKind::kText) {
    QString rule;
    typed = parse_field_text(field, value.toString(), &rule);
    if (!typed.isValid()) {
      m_parseErrors.insert(field.path, field.path + QStringLiteral(": ") + rule);
      const QModelIndex first = this->index(index.row(), 0, index.parent());
      const QModelIndex last = this->index(index.row(), kNumColumns - 1, index.parent());
      emit dataChanged(first, last);
      emit validationChanged();
      return false;
    }
  }
  const bool hadParseError = m_parseErrors.remove(field.path) > 0;
  if (field.get(m_document->scenario()) == typed) {
    if (hadParseError) {
      emit dataChanged(this->index(index.row(), 0, index.parent()),
                       this->index(index.row(), kNumColumns - 1, index.parent()));
      emit validationChanged();
    }
    return true;
  }
  m_document->setField(fieldIndex, typed);  // scenarioChanged -> revalidate + dataChanged
  return true;
}

Qt::ItemFlags ScenarioModel::flags(const QModelIndex& index) const {
  if (!index.isValid()) return Qt::NoItemFlags;
  Qt::ItemFlags f = Qt::ItemIsEnabled | Qt::ItemIsSelectable;
  if (index.internalId() != kSectionId && index.column() == kValueColumn) f |= Qt::ItemIsEditable;
  if (index.internalId() != kSectionId) f |= Qt::ItemNeverHasChildren;
  return f;
}

QVariant ScenarioModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (orientation != Qt::Horizontal || role != Qt::DisplayRole) return {};
  switch (section) {
    case kFieldColumn:
      return tr("Field");
    case kValueColumn:
      return tr("Value");
    case kUnitColumn:
      return tr("Unit");
    case kMessageColumn:
      return tr("Message");
    default:
      return {};
  }
}

QModelIndex ScenarioModel::indexOfPath(const QString& path) const {
  const int field = find_field(path);
  if (field < 0) return {};
  const auto f = static_cast<std::size_t>(field);
  return index(m_fieldRow[f], kValueColumn, index(m_fieldSection[f], 0));
}

QStringList ScenarioModel::messages(const QString& path) const {
  QStringList out = m_messages.value(path);
  if (m_parseErrors.contains(path)) out.prepend(m_parseErrors.value(path));
  return out;
}

QStringList ScenarioModel::allMessages() const {
  QStringList out;
  for (const auto& field : scenario_fields()) out << messages(field.path);
  for (auto it = m_messages.begin(); it != m_messages.end(); ++it) {
    if (find_field(it.key()) < 0) out << it.value();
  }
  return out;
}

void ScenarioModel::revalidate() {
  m_messages.clear();
  m_blocking.clear();
  const core::Scenario& s = m_document->scenario();
  const auto blocking = Engine::blocking_errors(s);
  m_numBlocking = static_cast<int>(blocking.size());
  auto add = [this](const core::FieldError& e, bool isBlocking) {
    const QString path = QString::fromStdString(e.path);
    const QString text = QString::fromStdString(e.to_string());
    QStringList& list = m_messages[path];
    if (!list.contains(text)) list << text;
    if (isBlocking) m_blocking[path] = true;
  };
  for (const auto& e : blocking) add(e, true);
  // A strategy's own rules only leave that strategy out, unless both are out.
  const auto ep = core::check_strategy(s, core::Strategy::kEp);
  const auto hp = core::check_strategy(s, core::Strategy::kHp);
  const bool neither = !ep.empty() && !hp.empty();
  for (const auto& e : ep) add(e, neither);
  for (const auto& e : hp) add(e, neither);
  if (neither) m_numBlocking += static_cast<int>(ep.size() + hp.size());
  emit validationChanged();
}

}  // namespace hpsim::gui
