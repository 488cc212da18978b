#pragma once
// CSV of any table or tree model (RFC 4180 quoting). Cells are the raw values (EditRole) so that
// numbers keep full precision; trees are flattened with the parent's first column in front.

#include <QAbstractItemModel>
#include <QString>

namespace hpsim::gui {

QString modelToCsv(const QAbstractItemModel& model);

}  // namespace hpsim::gui
