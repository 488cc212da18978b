#include "hpsim/sim/event_queue.h"

#include <algorithm>

#include "hpsim/core/error.h"

namespace hpsim::sim {

bool EventQueue::later(const Event& a, const Event& b) {
  if (a.time != b.time) return a.time > b.time;
  if (a.priority != b.priority) return a.priority > b.priority;
  return a.seq > b.seq;
}

void EventQueue::schedule(TimeNs at, Handler handler, void* context, std::int64_t arg, Priority priority) {
  HPSIM_ASSERT(at >= now_, "event scheduled in the past: at {} ns, now {} ns", at, now_);
  HPSIM_ASSERT(handler != nullptr, "event without a handler");
  heap_.push_back(Event{at, static_cast<std::uint8_t>(priority), next_seq_++, handler, context, arg});
  std::push_heap(heap_.begin(), heap_.end(), later);
}

TimeNs EventQueue::next_time() const {
  HPSIM_ASSERT(!heap_.empty(), "next_time() on an empty event queue");
  return heap_.front().time;
}

bool EventQueue::run_next() {
  if (heap_.empty()) return false;
  std::pop_heap(heap_.begin(), heap_.end(), later);
  const Event event = heap_.back();
  heap_.pop_back();
  now_ = event.time;
  ++num_processed_;
  event.handler(event.context, event.arg);
  return true;
}

void EventQueue::run() {
  while (run_next()) {
  }
}

}  // namespace hpsim::sim
