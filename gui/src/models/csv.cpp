#include "hpsim/gui/models/csv.h"

#include <QStringList>

namespace hpsim::gui {
namespace {

QString quote(const QString& cell) {
  if (!cell.contains(QLatin1Char(',')) && !cell.contains(QLatin1Char('"')) && !cell.contains(QLatin1Char('\n'))) {
    return cell;
  }
  QString q = cell;
  q.replace(QLatin1String("\""), QLatin1String("\"\""));
  return QLatin1Char('"') + q + QLatin1Char('"');
}

QString cellText(const QAbstractItemModel& model, const QModelIndex& index) {
  const QVariant v = model.data(index, Qt::EditRole);
  if (!v.isValid()) return QString();
  if (v.typeId() == QMetaType::Double) return QString::number(v.toDouble(), 'g', 17);
  return v.toString();
}

bool isTree(const QAbstractItemModel& model) {
  for (int r = 0; r < model.rowCount(); ++r) {
    if (model.hasChildren(model.index(r, 0))) return true;
  }
  return false;
}

void appendRows(const QAbstractItemModel& model, const QModelIndex& parent, const QString& parentName, bool tree,
                QString& out) {
  const int columns = model.columnCount(parent);
  for (int r = 0; r < model.rowCount(parent); ++r) {
    const QModelIndex first = model.index(r, 0, parent);
    if (tree && model.hasChildren(first)) {
      appendRows(model, first, cellText(model, first), tree, out);
      continue;
    }
    QStringList cells;
    if (tree) cells << quote(parentName);
    for (int c = 0; c < columns; ++c) cells << quote(cellText(model, model.index(r, c, parent)));
    out += cells.join(QLatin1Char(',')) + QLatin1Char('\n');
  }
}

}  // namespace

QString modelToCsv(const QAbstractItemModel& model) {
  const bool tree = isTree(model);
  QStringList header;
  if (tree) header << QStringLiteral("group");
  for (int c = 0; c < model.columnCount(); ++c) header << quote(model.headerData(c, Qt::Horizontal).toString());
  QString out = header.join(QLatin1Char(',')) + QLatin1Char('\n');
  appendRows(model, {}, QString(), tree, out);
  return out;
}

}  // namespace hpsim::gui
