#pragma once
// The HP (Multi-Head LatentMoE) layer on one rank (DESIGN.md section 2): W_in, an all-to-all with
// equal fixed splits, per local head router / grouping / expert MLP / weighted sum, the mirror
// all-to-all and W_out; backward mirrors it. Stage names match model::layer_stages(kHp).

#include <vector>

#include "hpsim/core/traffic.h"
#include "hpsim/kernels/combine.h"
#include "hpsim/kernels/expert_mlp.h"
#include "hpsim/kernels/grouping.h"
#include "hpsim/kernels/router.h"
#include "layer_common.h"

namespace hpsim::exec::detail {

class HpLayer {
 public:
  // `data_ranks`: how many consecutive ranks' data this instance holds (their tokens, heads,
  // weights and forced routing, each filled as that rank fills it): 1 normally; W in the one-GPU
  // reference of the numerics check, which runs a world of one with all W ranks' data.
  HpLayer(const core::Scenario& scenario, int rank, int world, bool forced_routing, bool include_backward,
          int data_ranks = 1);

  // Every buffer and the kernel workspace (dry run counts; real run carves the arena).
  core::Status allocate(Allocator& alloc, RankContext* ctx);
  core::Status initialise(RankContext& ctx);
  core::Status forward(RankContext& ctx);
  core::Status backward(RankContext& ctx);
  // Bytes this rank posts to each peer, per phase (row `rank_` of each matrix).
  void add_traffic(std::vector<core::TrafficMatrix>& matrices) const;
  // Host copies of the output, the input gradient and the weight gradients after an iteration.
  core::Expected<std::vector<NumericsTensor>> numerics() const;

 private:
  core::Status build_args(RankContext* ctx);

  const core::Scenario& scenario_;
  int rank_, world_;
  bool forced_, backward_;
  int data_ranks_;
  std::int64_t n_, d_, H_, h_, E_, k_, f_, L_, N_, rows_;

  double dd_ = 0, ff_ = 0, hh_ = 0, EE_ = 0, EEloc_ = 0;  // the dimensions as doubles, for byte and FLOP counts
  // Weights and gradients.
  Bf16 *w_in_ = nullptr, *w_out_ = nullptr, *w_k_ = nullptr, *w_v_ = nullptr;
  float *router_w_ = nullptr, *bias_ = nullptr;
  Bf16 *d_w_in_ = nullptr, *d_w_out_ = nullptr, *d_w_k_ = nullptr, *d_w_v_ = nullptr;
  float* d_router_ = nullptr;
  // Forward.
  Bf16 *x_ = nullptr, *xs_ = nullptr, *send_in_ = nullptr, *x_heads_ = nullptr;
  std::int32_t *topk_ = nullptr, *counts_ = nullptr, *offsets_ = nullptr, *perm_ = nullptr, *inverse_ = nullptr;
  float* gates_ = nullptr;
  std::int32_t* forced_topk_ = nullptr;
  float* forced_gates_ = nullptr;
  Bf16 *y_grouped_ = nullptr, *out_ = nullptr, *recv_out_ = nullptr, *packed_ = nullptr, *y_ = nullptr;
  // Backward.
  Bf16 *dy_ = nullptr, *d_packed_ = nullptr, *send_bwd_ = nullptr, *d_out_ = nullptr, *d_y_grouped_ = nullptr;
  float *d_gate_ = nullptr, *d_score_ = nullptr;
  Bf16 *dx_grouped_ = nullptr, *dx_tokens_ = nullptr, *recv_dx_ = nullptr, *d_xs_ = nullptr, *dx_ = nullptr;

  kernels::DenseForwardArgs w_in_fwd_{}, w_out_fwd_{};
  kernels::DenseBackwardArgs w_in_bwd_{}, w_out_bwd_{};
  kernels::RouterForwardArgs router_fwd_{};
  kernels::RouterBackwardArgs router_bwd_{};
  kernels::GroupingArgs grouping_{};
  kernels::ExpertMlpForwardArgs mlp_fwd_{};
  kernels::ExpertMlpBackwardArgs mlp_bwd_{};
  kernels::CombineForwardArgs combine_fwd_{}, group_bwd_{};
  kernels::CombineBackwardArgs combine_bwd_{};
};

}  // namespace hpsim::exec::detail
