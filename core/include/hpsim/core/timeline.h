#pragma once
// Timeline: per rank, per lane, the spans of work. The simulator and the executor both
// produce it, so the two compare span by span (same stage names, same phases).

#include <cstdint>
#include <string>
#include <vector>

namespace hpsim::core {

enum class Phase { kForward, kBackward };
enum class Lane { kCompute, kComm };
const char* to_string(Phase v);
const char* to_string(Lane v);

struct Span {
  std::string stage;  // e.g. "router", "dispatch", "expert_mlp"
  Phase phase = Phase::kForward;
  Lane lane = Lane::kCompute;
  std::int64_t start_ns = 0;
  std::int64_t end_ns = 0;
  double bytes = 0;   // bytes moved (sent, for communication)
  double flops = 0;
  std::int64_t layer = 0;
  std::int64_t micro_batch = 0;

  std::int64_t duration_ns() const { return end_ns - start_ns; }
};

struct RankTimeline {
  std::int64_t rank = 0;
  std::vector<Span> spans;
};

struct Timeline {
  std::string source;    // "analytic", "simulated" or "executed"
  std::string strategy;  // "ep" or "hp"
  std::vector<RankTimeline> ranks;

  std::int64_t end_ns() const;  // latest span end over all ranks
};

}  // namespace hpsim::core
