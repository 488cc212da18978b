#include "hpsim/gui/models/format.h"

#include <cmath>

#include <QLocale>

namespace hpsim::gui {
namespace {

QString scaled(double value, const char* const* units, int numUnits, double step, int precision) {
  int u = 0;
  double v = value;
  while (std::abs(v) >= step && u + 1 < numUnits) {
    v /= step;
    ++u;
  }
  return QString::number(v, 'f', u == 0 && v == std::floor(v) ? 0 : precision) + QLatin1Char(' ') +
         QString::fromUtf8(units[u]);
}

}  // namespace

QString formatBytes(double bytes) {
  static const char* const kUnits[] = {"B", "kB", "MB", "GB", "TB", "PB"};
  return scaled(bytes, kUnits, 6, 1000.0, std::abs(bytes) >= 100e3 ? 1 : 2);
}

QString formatExactBytes(double bytes) {
  QLocale c(QLocale::English);
  if (bytes == std::floor(bytes) && std::abs(bytes) < 9e15) {
    return c.toString(static_cast<qlonglong>(bytes)) + QStringLiteral(" bytes");
  }
  return c.toString(bytes, 'f', 1) + QStringLiteral(" bytes");
}

QString formatMicros(double us) {
  if (std::abs(us) >= 1e6) return QString::number(us / 1e6, 'f', 3) + QStringLiteral(" s");
  if (std::abs(us) >= 1e3) return QString::number(us / 1e3, 'f', 3) + QStringLiteral(" ms");
  return QString::number(us, 'f', 1) + QStringLiteral(" µs");
}

QString formatNanos(double ns) {
  if (std::abs(ns) < 1e3) return QString::number(ns, 'f', 0) + QStringLiteral(" ns");
  return formatMicros(ns / 1e3);
}

QString formatFlops(double flops) {
  static const char* const kUnits[] = {"FLOP", "kFLOP", "MFLOP", "GFLOP", "TFLOP", "PFLOP"};
  return scaled(flops, kUnits, 6, 1000.0, 2);
}

QString formatRatio(double ratio) {
  if (!std::isfinite(ratio)) return QStringLiteral("—");
  return QString::number(ratio, 'f', ratio >= 100 ? 0 : (ratio >= 10 ? 1 : 2)) + QStringLiteral("×");
}

QString formatNumber(double value, int precision) { return QString::number(value, 'g', precision); }

QVariant bytesCellData(double bytes, int role, int bytesRole) {
  if (role == Qt::DisplayRole) return formatBytes(bytes);
  if (role == Qt::EditRole || role == bytesRole) return bytes;
  if (role == Qt::ToolTipRole) return formatExactBytes(bytes);
  if (role == Qt::TextAlignmentRole) return QVariant(Qt::AlignRight | Qt::AlignVCenter);
  return {};
}

}  // namespace hpsim::gui
