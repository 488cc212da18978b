#pragma once
// String tables of the enums, shared by to_string and the JSON reader.

#include <array>
#include <optional>
#include <string_view>
#include <utility>

#include "hpsim/core/profile.h"
#include "hpsim/core/scenario.h"
#include "hpsim/core/timeline.h"

namespace hpsim::core::detail {

template <typename E, std::size_t N>
using EnumTable = std::array<std::pair<E, std::string_view>, N>;

inline constexpr EnumTable<Strategy, 2> kStrategyNames{{{Strategy::kEp, "ep"}, {Strategy::kHp, "hp"}}};
inline constexpr EnumTable<Routing, 3> kRoutingNames{
    {{Routing::kUniform, "uniform"}, {Routing::kZipf, "zipf"}, {Routing::kTrace, "trace"}}};
inline constexpr EnumTable<Ownership, 2> kOwnershipNames{
    {{Ownership::kContiguous, "contiguous"}, {Ownership::kStrided, "strided"}}};
inline constexpr EnumTable<WorkloadMode, 2> kModeNames{
    {{WorkloadMode::kExpectation, "expectation"}, {WorkloadMode::kSampled, "sampled"}}};
inline constexpr EnumTable<TopologyKind, 3> kTopologyNames{{{TopologyKind::kFatTree, "fat_tree"},
                                                            {TopologyKind::kRailOptimized, "rail_optimized"},
                                                            {TopologyKind::kCustom, "custom"}}};
inline constexpr EnumTable<ProfileSource, 3> kProfileSourceNames{{{ProfileSource::kDatasheet, "datasheet"},
                                                                  {ProfileSource::kMeasured, "measured"},
                                                                  {ProfileSource::kDerived, "derived"}}};
inline constexpr EnumTable<Phase, 2> kPhaseNames{{{Phase::kForward, "forward"}, {Phase::kBackward, "backward"}}};
inline constexpr EnumTable<Lane, 2> kLaneNames{{{Lane::kCompute, "compute"}, {Lane::kComm, "comm"}}};

template <typename E, std::size_t N>
constexpr std::string_view name_of(const EnumTable<E, N>& table, E value) {
  for (const auto& [v, name] : table) {
    if (v == value) return name;
  }
  return "?";
}

template <typename E, std::size_t N>
constexpr std::optional<E> parse_enum(const EnumTable<E, N>& table, std::string_view text) {
  for (const auto& [v, name] : table) {
    if (name == text) return v;
  }
  return std::nullopt;
}

// "a, b or c" for error messages.
template <typename E, std::size_t N>
std::string choices(const EnumTable<E, N>& table) {
  std::string out;
  for (std::size_t i = 0; i < N; ++i) {
    if (i > 0) out += (i + 1 == N) ? " or " : ", ";
    out += '"';
    out += table[i].second;
    out += '"';
  }
  return out;
}

}  // namespace hpsim::core::detail
