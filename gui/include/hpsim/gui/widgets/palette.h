#pragma once
// Colours shared by the views: a perceptually ordered sequential scale for bytes, one colour per
// strategy, per memory part, and per stage (stable across runs: chosen from the stage's name).

#include <QColor>
#include <QString>

namespace hpsim::gui {

QColor sequentialColor(double t);               // t in [0, 1], dark blue -> yellow
QColor strategyColor(const QString& strategy);  // "ep", "hp"
QColor memoryPartColor(int part);               // MemoryModel part index
QColor stageColor(const QString& stage);
inline QColor localCellColor() { return QColor(0xd9, 0xd9, 0xd9); }
inline QColor overCapacityColor() { return QColor(0xc6, 0x28, 0x28); }

}  // namespace hpsim::gui
