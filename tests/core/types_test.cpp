#include <gtest/gtest.h>

#include "hpsim/core/memory_report.h"
#include "hpsim/core/traffic.h"

namespace hpsim::core {
namespace {

TEST(TrafficMatrix, SumsIgnoreTheDiagonal) {
  TrafficMatrix m("dispatch", 3);
  m.at(0, 0) = 100;  // stays local
  m.at(0, 1) = 10;
  m.at(0, 2) = 20;
  m.at(1, 0) = 30;
  m.at(2, 1) = 40;
  EXPECT_DOUBLE_EQ(m.sent(0), 30);
  EXPECT_DOUBLE_EQ(m.received(1), 50);
  EXPECT_DOUBLE_EQ(m.total_sent(), 100);
  EXPECT_DOUBLE_EQ(m.max_sent(), 40);
  EXPECT_DOUBLE_EQ(m.send_imbalance(), 40.0 / (100.0 / 3.0));
}

TEST(TrafficMatrix, EmptyMatrixIsBalanced) {
  TrafficMatrix m("combine", 4);
  EXPECT_DOUBLE_EQ(m.send_imbalance(), 1.0);
}

TEST(MemoryReport, PeakIsTheSumOfItsParts) {
  MemoryReport r;
  r.capacity_bytes = 100;
  r.ranks.push_back({0, 10, 20, 30, 5, 5, 1});
  r.ranks.push_back({1, 10, 20, 30, 50, 5, 1});
  EXPECT_DOUBLE_EQ(r.ranks[0].peak(), 71);
  EXPECT_DOUBLE_EQ(r.max_peak(), 116);
  EXPECT_EQ(r.num_over_capacity(), 1);
}

}  // namespace
}  // namespace hpsim::core
