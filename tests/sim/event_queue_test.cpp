#include "hpsim/sim/event_queue.h"

#include <vector>

#include <gtest/gtest.h>

namespace hpsim::sim {
namespace {

struct Log {
  EventQueue* queue = nullptr;
  std::vector<std::int64_t> order;
  std::vector<TimeNs> times;
};

void record(void* ctx, std::int64_t arg) {
  auto* log = static_cast<Log*>(ctx);
  log->order.push_back(arg);
  log->times.push_back(log->queue->now());
}

// Schedules a normal event for the same instant while that instant is being processed.
void record_and_add(void* ctx, std::int64_t arg) {
  auto* log = static_cast<Log*>(ctx);
  record(ctx, arg);
  log->queue->schedule(log->queue->now(), &record, ctx, arg + 100);
}

TEST(EventQueue, RunsEventsInTimeOrder) {
  EventQueue q;
  Log log{&q, {}, {}};
  q.schedule(30, &record, &log, 3);
  q.schedule(10, &record, &log, 1);
  q.schedule(20, &record, &log, 2);
  q.run();
  EXPECT_EQ(log.order, (std::vector<std::int64_t>{1, 2, 3}));
  EXPECT_EQ(log.times, (std::vector<TimeNs>{10, 20, 30}));
  EXPECT_EQ(q.num_processed(), 3u);
}

TEST(EventQueue, BreaksTiesByInsertionOrder) {
  EventQueue q;
  Log log{&q, {}, {}};
  for (std::int64_t i = 0; i < 50; ++i) q.schedule(7, &record, &log, (i * 37) % 50);
  q.run();
  ASSERT_EQ(log.order.size(), 50u);
  for (std::int64_t i = 0; i < 50; ++i) EXPECT_EQ(log.order[static_cast<std::size_t>(i)], (i * 37) % 50);
}

TEST(EventQueue, LateEventsRunAfterEveryNormalEventOfTheirInstant) {
  EventQueue q;
  Log log{&q, {}, {}};
  q.schedule(5, &record, &log, 9, EventQueue::Priority::kLate);
  q.schedule(5, &record_and_add, &log, 1);
  q.schedule(6, &record, &log, 2);
  q.run();
  // The normal event added at t = 5 while t = 5 runs still goes before the late one.
  EXPECT_EQ(log.order, (std::vector<std::int64_t>{1, 101, 9, 2}));
}

TEST(EventQueue, NowStaysAtTheLastEventWhenEmpty) {
  EventQueue q;
  Log log{&q, {}, {}};
  EXPECT_TRUE(q.empty());
  EXPECT_FALSE(q.run_next());
  q.schedule(42, &record, &log, 0);
  EXPECT_EQ(q.next_time(), 42);
  q.run();
  EXPECT_EQ(q.now(), 42);
}

}  // namespace
}  // namespace hpsim::sim
