#pragma once
// The editable fields of a core::Scenario, one descriptor each, keyed by the same path that
// core::check_scenario reports ("model.top_k"), so every validation message lands on its field.

#include <functional>
#include <vector>

#include <QString>
#include <QStringList>
#include <QVariant>

#include "hpsim/core/scenario.h"

namespace hpsim::gui {

enum class FieldKind { kText, kInteger, kUnsigned, kReal, kChoice };

struct FieldSpec {
  QString section;  // "Model", "Parallelism", "Cluster", "Workload", "Training", "Scenario"
  QString path;     // core's field path, e.g. "model.top_k"
  QString label;    // "Top-k (k)"
  QString unit;     // "tokens", "GB/s", ...
  QString help;     // one line for the tooltip
  FieldKind kind = FieldKind::kText;
  QStringList choices;                                 // kChoice: the values as the JSON spells them
  std::function<QVariant(const core::Scenario&)> get;  // QString, qlonglong, qulonglong or double
  std::function<void(core::Scenario&, const QVariant&)> set;
};

// In display order; sections appear in the order of their first field.
const std::vector<FieldSpec>& scenario_fields();
QStringList scenario_sections();
// Index into scenario_fields(), or -1.
int find_field(const QString& path);

// Parses what a user typed for a field. On failure returns a null QVariant and sets `rule` to the
// JSON reader's wording ("expected an integer, got \"x\"", "expected a number, got ...").
QVariant parse_field_text(const FieldSpec& field, const QString& text, QString* rule);
// The value as it reads in an editor (integers without grouping, reals in shortest form).
QString field_text(const FieldSpec& field, const QVariant& value);

}  // namespace hpsim::gui
