#pragma once
// ScenarioModel: the scenario's fields as a two-level tree (section -> field) with the validation
// message of each field beside it. Messages are core::check_scenario's and core::check_strategy's
// (both strategies), verbatim "path: rule"; text that does not parse gets the JSON reader's words.
//
// Columns: Field, Value, Unit, Message. Editing the Value column goes through the document's
// undo stack.

#include <QAbstractItemModel>
#include <QHash>
#include <QStringList>

namespace hpsim::gui {

class ScenarioDocument;

class ScenarioModel : public QAbstractItemModel {
  Q_OBJECT

 public:
  enum Column { kFieldColumn, kValueColumn, kUnitColumn, kMessageColumn, kNumColumns };
  enum Role {
    kPathRole = Qt::UserRole + 1,  // QString, core's field path
    kKindRole,                     // int(FieldKind)
    kChoicesRole,                  // QStringList
    kMessagesRole,                 // QStringList, "path: rule" each
    kBlockingRole,                 // bool: a message blocks every evaluation (not just one strategy)
    kFieldIndexRole,               // int, index into scenario_fields()
    kParseErrorRole,               // bool: the last text typed for the field did not parse
  };

  explicit ScenarioModel(ScenarioDocument* document, QObject* parent = nullptr);

  QModelIndex index(int row, int column, const QModelIndex& parent = {}) const override;
  QModelIndex parent(const QModelIndex& child) const override;
  int rowCount(const QModelIndex& parent = {}) const override;
  int columnCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  bool setData(const QModelIndex& index, const QVariant& value, int role = Qt::EditRole) override;
  Qt::ItemFlags flags(const QModelIndex& index) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

  // The Value-column index of a field path, or invalid.
  QModelIndex indexOfPath(const QString& path) const;
  QStringList messages(const QString& path) const;
  // Every message, in field order; count of those that block evaluation.
  QStringList allMessages() const;
  int numBlocking() const { return m_numBlocking; }
  // Fields whose last typed text did not parse (their value is unchanged).
  int numParseErrors() const { return static_cast<int>(m_parseErrors.size()); }

 signals:
  void validationChanged();

 private:
  void revalidate();

  ScenarioDocument* m_document;
  QStringList m_sections;
  std::vector<std::vector<int>> m_sectionFields;  // per section, indices into scenario_fields()
  std::vector<int> m_fieldSection;                // per field: section row
  std::vector<int> m_fieldRow;                    // per field: row inside its section
  QHash<QString, QStringList> m_messages;         // path -> messages
  QHash<QString, bool> m_blocking;                // path -> any blocking message
  QHash<QString, QString> m_parseErrors;          // path -> "path: expected ..."
  int m_numBlocking = 0;
};

}  // namespace hpsim::gui
