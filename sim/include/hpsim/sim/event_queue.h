#pragma once
// EventQueue: the simulator's clock and agenda. Time is integer nanoseconds. Events at the same
// time run by priority class first (kNormal before kLate), then in insertion order, so a run is
// deterministic: the same inputs give the same order of events, bit for bit.
//
// Handlers are plain function pointers with a context pointer and one integer argument: no
// allocation per event, and the state a handler touches is passed in, never global.

#include <cstdint>
#include <vector>

namespace hpsim::sim {

using TimeNs = std::int64_t;

class EventQueue {
 public:
  using Handler = void (*)(void* context, std::int64_t arg);

  // kLate events run after every kNormal event of the same time, including kNormal events that
  // are scheduled for that time while it is being processed. The network uses it to recompute
  // rates once per instant, after all flows of that instant have arrived.
  enum class Priority : std::uint8_t { kNormal = 0, kLate = 1 };

  // Schedules `handler(context, arg)` at time `at` (>= now()).
  void schedule(TimeNs at, Handler handler, void* context, std::int64_t arg, Priority priority = Priority::kNormal);

  bool empty() const { return heap_.empty(); }
  TimeNs now() const { return now_; }
  // Time of the next event; only when !empty().
  TimeNs next_time() const;

  // Pops the earliest event, advances now() to its time and runs it. False when empty.
  bool run_next();
  // Runs events until none is left.
  void run();

  std::uint64_t num_processed() const { return num_processed_; }

 private:
  struct Event {
    TimeNs time;
    std::uint8_t priority;
    std::uint64_t seq;
    Handler handler;
    void* context;
    std::int64_t arg;
  };
  static bool later(const Event& a, const Event& b);

  std::vector<Event> heap_;
  TimeNs now_ = 0;
  std::uint64_t next_seq_ = 0;
  std::uint64_t num_processed_ = 0;
};

}  // namespace hpsim::sim
