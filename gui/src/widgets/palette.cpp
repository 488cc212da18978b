#include "hpsim/gui/widgets/palette.h"

#include <algorithm>
#include <array>
#include <cmath>

#include <QHash>

namespace hpsim::gui {
namespace {

// Control points of a blue-green-yellow scale whose lightness rises monotonically.
constexpr std::array<std::array<int, 3>, 9> kSequential = {{
    {68, 1, 84},
    {71, 44, 122},
    {59, 81, 139},
    {44, 113, 142},
    {33, 144, 141},
    {39, 173, 129},
    {92, 200, 99},
    {170, 220, 50},
    {253, 231, 37},
}};

// Categorical colours, distinguishable and not too loud.
// Categorical colours, distinguishable and not too loud; 20, so that the stages of one layer
// (about 17) each get their own.
constexpr std::array<QRgb, 20> kCategorical = {
    0x4e79a7, 0xf28e2b, 0x59a14f, 0xe15759, 0x76b7b2, 0xedc948, 0xb07aa1, 0xff9da7, 0x9c755f, 0x17becf,
    0x8c564b, 0xbcbd22, 0x637939, 0x843c39, 0x5254a3, 0x7b4173, 0x393b79, 0x7f7f7f, 0xaec7e8, 0x98df8a,
};

}  // namespace

QColor sequentialColor(double t) {
  if (!std::isfinite(t)) t = 0;
  t = std::clamp(t, 0.0, 1.0) * static_cast<double>(kSequential.size() - 1);
  const auto i = std::min(static_cast<std::size_t>(t), kSequential.size() - 2);
  const double f = t - static_cast<double>(i);
  auto mix = [&](int c) {
    return static_cast<int>(std::lround(kSequential[i][static_cast<std::size_t>(c)] * (1 - f) +
                                        kSequential[i + 1][static_cast<std::size_t>(c)] * f));
  };
  return QColor(mix(0), mix(1), mix(2));
}

QColor strategyColor(const QString& strategy) {
  return strategy == QLatin1String("ep") ? QColor(0xe1, 0x57, 0x59) : QColor(0x4e, 0x79, 0xa7);
}

QColor memoryPartColor(int part) {
  static constexpr std::array<QRgb, 6> kParts = {0x4e79a7, 0xa0cbe8, 0xf28e2b, 0x59a14f, 0xb07aa1, 0x9c755f};
  return QColor::fromRgb(kParts[static_cast<std::size_t>(std::clamp(part, 0, 5))]);
}

QColor stageColor(const QString& stage) {
  // In order of first use: the same stage keeps its colour in every view of the session, and the
  // few stages of a layer get distinct colours. GUI thread only.
  static QHash<QString, int> assigned;
  auto it = assigned.find(stage);
  if (it == assigned.end()) it = assigned.insert(stage, static_cast<int>(assigned.size()));
  return QColor::fromRgb(kCategorical[static_cast<std::size_t>(it.value()) % kCategorical.size()]);
}

}  // namespace hpsim::gui
