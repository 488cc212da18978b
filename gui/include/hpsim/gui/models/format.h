#pragma once
// How numbers read in the views: decimal units (GB = 1e9 bytes, as core/units.h), and exact
// values for tooltips and CSV.

#include <QString>
#include <QVariant>

namespace hpsim::gui {

QString formatBytes(double bytes);                      // "12.3 MB"
QString formatExactBytes(double bytes);                 // "12,345,678 bytes"
QString formatMicros(double us);                        // "812.4 µs", "1.25 ms", "3.1 s"
QString formatNanos(double ns);                         // same, from nanoseconds
QString formatFlops(double flops);                      // "4.29 GFLOP"
QString formatRatio(double ratio);                      // "0.50×"
QString formatNumber(double value, int precision = 4);  // general, shortest

// A table cell that holds bytes: formatBytes to read, formatExactBytes as its tooltip, the number
// itself for Qt::EditRole and `bytesRole`, right-aligned; nothing for other roles.
QVariant bytesCellData(double bytes, int role, int bytesRole);

}  // namespace hpsim::gui
