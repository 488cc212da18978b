#pragma once
// The EP (baseline MoE) layer on one rank (DESIGN.md section 2): router d -> E, metadata
// all-to-all of the per-expert counts (and the host synchronisation it forces), permute with
// k-fold duplication, dispatch all-to-all-v, regroup by local expert, grouped expert MLP, the
// inverse path, and backward with two more all-to-all-v on the forward's split sizes. Buffers
// whose size depends on routing are carved per iteration at their actual size, so the measured
// peak shows the hot rank. Stage names match model::layer_stages(kEp).

#include <vector>

#include "hpsim/core/traffic.h"
#include "hpsim/kernels/combine.h"
#include "hpsim/kernels/ep_permute.h"
#include "hpsim/kernels/grouped_mlp.h"
#include "hpsim/kernels/grouping.h"
#include "hpsim/kernels/router.h"
#include "layer_common.h"

namespace hpsim::exec::detail {

class EpLayer {
 public:
  // `data_ranks`: as HpLayer's (this instance holds the tokens, experts and forced routing of that
  // many consecutive ranks; W in the one-GPU reference of the numerics check).
  EpLayer(const core::Scenario& scenario, int rank, int world, bool forced_routing, bool include_backward,
          int data_ranks = 1);

  core::Status allocate(Allocator& alloc, RankContext* ctx);
  core::Status initialise(RankContext& ctx);
  core::Status forward(RankContext& ctx);
  core::Status backward(RankContext& ctx);
  void add_traffic(std::vector<core::TrafficMatrix>& matrices) const;
  // Host copies of the output, the input gradient and the weight gradients after an iteration.
  core::Expected<std::vector<NumericsTensor>> numerics() const;

 private:
  // Buffers sized by the received rows R (worst case n*k*W in a dry run).
  core::Status allocate_received(Allocator& alloc, std::int64_t received_rows);
  core::Status build_received_args(RankContext* ctx, std::int64_t received_rows, bool check);

  const core::Scenario& scenario_;
  int rank_, world_;
  bool forced_, backward_;
  int data_ranks_;
  std::int64_t n_, d_, E_, k_, f_, E_loc_;

  double dd_ = 0, ff_ = 0, hh_ = 0, EE_ = 0, EEloc_ = 0;  // the dimensions as doubles, for byte and FLOP counts
  float *router_w_ = nullptr, *bias_ = nullptr, *d_router_ = nullptr;
  Bf16 *w1_ = nullptr, *w2_ = nullptr, *d_w1_ = nullptr, *d_w2_ = nullptr;
  Bf16 *x_ = nullptr, *send_ = nullptr, *ret_ = nullptr, *y_ = nullptr;
  std::int32_t *topk_ = nullptr, *counts_ = nullptr, *p_offsets_ = nullptr, *p_perm_ = nullptr, *p_inverse_ = nullptr;
  std::int32_t *rank_counts_ = nullptr, *recv_counts_ = nullptr;
  float* gates_ = nullptr;
  std::int32_t *forced_topk_ = nullptr, *forced_counts_ = nullptr;
  float* forced_gates_ = nullptr;
  Bf16 *dy_ = nullptr, *d_ret_ = nullptr, *dx_ret_ = nullptr, *dx_tok_ = nullptr;
  float *d_gate_ = nullptr, *d_score_ = nullptr;
  std::int64_t workspace_fixed_ = 0;

  // Per iteration (routing-dependent).
  DeviceArena::Mark iteration_mark_{};
  std::int64_t received_ = 0;
  std::vector<std::int64_t> send_bytes_, send_off_, recv_bytes_, recv_off_;
  std::vector<std::int32_t> host_counts_, host_recv_counts_;
  std::int32_t *g_offsets_ = nullptr, *g_perm_ = nullptr, *g_inverse_ = nullptr;
  Bf16 *recv_ = nullptr, *grouped_ = nullptr, *pre_act_ = nullptr, *act_ = nullptr, *y_grouped_ = nullptr, *back_ = nullptr;
  Bf16 *d_back_ = nullptr, *d_grouped_ = nullptr, *dx_grouped_ = nullptr, *dx_recv_ = nullptr;
  bool has_mark_ = false;
  std::int32_t* p_counts_ = nullptr;

  kernels::RouterForwardArgs router_fwd_{};
  kernels::RouterBackwardArgs router_bwd_{};
  kernels::PermuteArgs permute_{};
  kernels::RegroupArgs regroup_{};  // the received rows by local expert, from recv_counts_
  kernels::CombineForwardArgs gather_{}, ungather_{}, unpermute_{}, ungather_bwd_{}, gather_bwd_{}, permute_bwd_{};
  kernels::CombineBackwardArgs unpermute_bwd_{};
  kernels::GroupedMlpForwardArgs mlp_fwd_{};
  kernels::GroupedMlpBackwardArgs mlp_bwd_{};
};

}  // namespace hpsim::exec::detail
