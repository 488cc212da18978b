#include "hp_layer.h"

#include <algorithm>

#include "hpsim/exec/forced_routing.h"

namespace hpsim::exec::detail {
HpLayer::HpLayer(const core::Scenario& s, int rank, int world, bool forced_routing, bool include_backward,
                 int data_ranks)
    : scenario_(s), rank_(rank), world_(world), forced_(forced_routing), backward_(include_backward),
      data_ranks_(data_ranks) {
  n_ = s.workload.tokens_per_rank;
  d_ = s.model.d_model;
  H_ = s.model.num_heads;
  h_ = s.model.head_dim;
  E_ = s.model.num_experts;
  k_ = s.model.top_k;
  f_ = s.model.expert_hidden;
  L_ = H_ / world;
  N_ = n_ * world;
  rows_ = kernels::grouping_rows_bound(L_, N_, k_, E_, 1);
  dd_ = static_cast<double>(d_);
  ff_ = static_cast<double>(f_);
  hh_ = static_cast<double>(s.model.head_dim);
  EE_ = static_cast<double>(E_);
  EEloc_ = static_cast<double>(E_ / world);
}

Status HpLayer::allocate(Allocator& alloc, RankContext* ctx) {
  const std::int64_t Hh = H_ * h_, slots = L_ * N_ * k_;
  HPSIM_ALLOC(w_in_, Bf16, Hh * d_, kW, "W_in");
  HPSIM_ALLOC(w_out_, Bf16, d_ * Hh, kW, "W_out");
  HPSIM_ALLOC(router_w_, float, L_ * E_ * h_, kW, "router weights");
  HPSIM_ALLOC(bias_, float, L_ * E_, kW, "router bias");
  HPSIM_ALLOC(w_k_, Bf16, L_ * E_ * f_ * h_, kW, "expert weights K");
  HPSIM_ALLOC(w_v_, Bf16, L_ * E_ * f_ * h_, kW, "expert weights V");
  HPSIM_ALLOC(x_, Bf16, n_ * d_, kA, "layer input");
  HPSIM_ALLOC(xs_, Bf16, n_ * Hh, kS, "W_in output");
  HPSIM_ALLOC(send_in_, Bf16, n_ * Hh, kC, "dispatch send buffer");
  HPSIM_ALLOC(x_heads_, Bf16, N_ * L_ * h_, kC, "dispatch receive buffer (sub-tokens)");
  HPSIM_ALLOC(topk_, std::int32_t, slots, kA, "top-k experts");
  HPSIM_ALLOC(gates_, float, slots, kA, "gates");
  HPSIM_ALLOC(counts_, std::int32_t, L_ * E_, kA, "expert counts");
  HPSIM_ALLOC(offsets_, std::int32_t, L_ * E_ + 1, kA, "group offsets");
  HPSIM_ALLOC(perm_, std::int32_t, rows_, kA, "group permutation");
  HPSIM_ALLOC(inverse_, std::int32_t, slots, kA, "group inverse");
  if (forced_) {
    HPSIM_ALLOC(forced_topk_, std::int32_t, slots, kS, "forced routing (experts)");
    HPSIM_ALLOC(forced_gates_, float, slots, kS, "forced routing (gates)");
  }
  HPSIM_ALLOC(y_grouped_, Bf16, rows_ * h_, kA, "expert outputs");
  HPSIM_ALLOC(out_, Bf16, N_ * L_ * h_, kC, "combine send buffer");
  HPSIM_ALLOC(recv_out_, Bf16, n_ * Hh, kC, "combine receive buffer");
  HPSIM_ALLOC(packed_, Bf16, n_ * Hh, kA, "W_out input");
  HPSIM_ALLOC(y_, Bf16, n_ * d_, kS, "layer output");
  if (backward_) {
    HPSIM_ALLOC(d_w_in_, Bf16, Hh * d_, kG, "dW_in");
    HPSIM_ALLOC(d_w_out_, Bf16, d_ * Hh, kG, "dW_out");
    HPSIM_ALLOC(d_router_, float, L_ * E_ * h_, kG, "router gradient");
    HPSIM_ALLOC(d_w_k_, Bf16, L_ * E_ * f_ * h_, kG, "dK");
    HPSIM_ALLOC(d_w_v_, Bf16, L_ * E_ * f_ * h_, kG, "dV");
    HPSIM_ALLOC(dy_, Bf16, n_ * d_, kS, "output gradient");
    HPSIM_ALLOC(d_packed_, Bf16, n_ * Hh, kS, "W_out input gradient");
    HPSIM_ALLOC(send_bwd_, Bf16, n_ * Hh, kC, "combine_bwd send buffer");
    HPSIM_ALLOC(d_out_, Bf16, N_ * L_ * h_, kC, "combine_bwd receive buffer");
    HPSIM_ALLOC(d_y_grouped_, Bf16, rows_ * h_, kS, "expert output gradient");
    HPSIM_ALLOC(d_gate_, float, slots, kS, "gate gradient");
    HPSIM_ALLOC(d_score_, float, slots, kS, "score gradient");
    HPSIM_ALLOC(dx_grouped_, Bf16, rows_ * h_, kS, "expert input gradient");
    HPSIM_ALLOC(dx_tokens_, Bf16, N_ * L_ * h_, kC, "dispatch_bwd send buffer");
    HPSIM_ALLOC(recv_dx_, Bf16, n_ * Hh, kC, "dispatch_bwd receive buffer");
    HPSIM_ALLOC(d_xs_, Bf16, n_ * Hh, kS, "W_in output gradient");
    HPSIM_ALLOC(dx_, Bf16, n_ * d_, kS, "layer input gradient");
  }
  HPSIM_TRY(build_args(ctx));
  std::int64_t ws = 0;
  ws = std::max(ws, kernels::workspace_bytes(w_in_fwd_));
  ws = std::max(ws, kernels::workspace_bytes(w_out_fwd_));
  ws = std::max(ws, kernels::workspace_bytes(router_fwd_));
  ws = std::max(ws, kernels::workspace_bytes(grouping_));
  ws = std::max(ws, kernels::workspace_bytes(mlp_fwd_));
  ws = std::max(ws, kernels::workspace_bytes(combine_fwd_));
  if (backward_) {
    ws = std::max(ws, kernels::workspace_bytes(w_in_bwd_));
    ws = std::max(ws, kernels::workspace_bytes(w_out_bwd_));
    ws = std::max(ws, kernels::workspace_bytes(router_bwd_));
    ws = std::max(ws, kernels::workspace_bytes(mlp_bwd_));
    ws = std::max(ws, kernels::workspace_bytes(combine_bwd_));
    ws = std::max(ws, kernels::workspace_bytes(group_bwd_));
  }
  std::uint8_t* workspace = nullptr;
  HPSIM_ALLOC(workspace, std::uint8_t, ws, kS, "kernel workspace");
  if (ctx != nullptr) {
    ctx->workspace = workspace;
    ctx->workspace_bytes = ws;
  }
  return Status::ok();
}

Status HpLayer::build_args(RankContext* ctx) {
  kernels::DenseContext* dense = ctx ? ctx->dense.get() : nullptr;
  const std::int64_t Hh = H_ * h_;
  w_in_fwd_ = {dense, x_, w_in_, xs_, n_, d_, Hh};
  w_out_fwd_ = {dense, packed_, w_out_, y_, n_, Hh, d_};
  const kernels::RouterAlgo router_algo = kernels::layer_router_algo(h_);
  router_fwd_ = {x_heads_, router_w_, bias_, topk_, gates_, counts_, L_, N_, h_, E_, k_, router_algo};
  grouping_ = {topk_, offsets_, perm_, inverse_, nullptr, L_, N_, k_, E_, 1};
  mlp_fwd_ = {x_heads_, offsets_, perm_, w_k_, w_v_, y_grouped_, L_, N_, k_, E_, h_, f_, rows_};
  combine_fwd_ = {y_grouped_, inverse_, gates_, out_, L_, N_, k_, h_};
  if (backward_) {
    w_out_bwd_ = {dense, packed_, w_out_, dy_, d_packed_, d_w_out_, n_, Hh, d_};
    combine_bwd_ = {d_out_, y_grouped_, inverse_, gates_, d_y_grouped_, d_gate_, d_score_, L_, N_, k_, h_};
    mlp_bwd_ = {x_heads_, offsets_, perm_, w_k_, w_v_, d_y_grouped_, dx_grouped_, d_w_k_, d_w_v_,
                L_, N_, k_, E_, h_, f_, rows_};
    group_bwd_ = {dx_grouped_, inverse_, nullptr, dx_tokens_, L_, N_, k_, h_};
    router_bwd_ = {x_heads_, router_w_, topk_, d_score_, offsets_, perm_, dx_tokens_, dx_tokens_, d_router_,
                   L_, N_, h_, E_, k_, rows_};
    w_in_bwd_ = {dense, x_, w_in_, d_xs_, dx_, d_w_in_, n_, d_, Hh};
  }
  HPSIM_TRY(kernels::can_implement(router_fwd_));
  HPSIM_TRY(kernels::can_implement(grouping_));
  HPSIM_TRY(kernels::can_implement(mlp_fwd_));
  HPSIM_TRY(kernels::can_implement(combine_fwd_));
  if (backward_) {
    HPSIM_TRY(kernels::can_implement(combine_bwd_));
    HPSIM_TRY(kernels::can_implement(mlp_bwd_));
    HPSIM_TRY(kernels::can_implement(group_bwd_));
    HPSIM_TRY(kernels::can_implement(router_bwd_));
  }
  return Status::ok();
}

Status HpLayer::initialise(RankContext& c) {
  const std::int64_t Hh = H_ * h_;
  // Weights are the same on every rank where they are replicated (W_in, W_out): same seed.
  const std::uint64_t shared = scenario_.workload.seed * 1000003ULL;
  HPSIM_TRY(fill_random_bf16(w_in_, Hh * d_, 1.0f / std::sqrt(static_cast<float>(d_)), shared + 1, c.stream));
  HPSIM_TRY(fill_random_bf16(w_out_, d_ * Hh, 1.0f / std::sqrt(static_cast<float>(Hh)), shared + 2, c.stream));
  // Rank g's heads, tokens and their gradients, from rank g's seed; q-th of the ranks held here.
  const std::int64_t Lg = L_ / data_ranks_, ng = n_ / data_ranks_;
  for (int q = 0; q < data_ranks_; ++q) {
    const auto g = static_cast<std::uint64_t>(rank_ * data_ranks_ + q);
    const std::uint64_t seed = shared + g * 7919ULL;
    HPSIM_TRY(fill_random_f32(router_w_ + q * Lg * E_ * h_, Lg * E_ * h_, 1.0f / std::sqrt(static_cast<float>(h_)),
                              seed + 3, c.stream));
    HPSIM_TRY(fill_random_f32(bias_ + q * Lg * E_, Lg * E_, 0.01f, seed + 4, c.stream));
    HPSIM_TRY(fill_random_bf16(w_k_ + q * Lg * E_ * f_ * h_, Lg * E_ * f_ * h_, 1.0f / std::sqrt(static_cast<float>(h_)),
                               seed + 5, c.stream));
    HPSIM_TRY(fill_random_bf16(w_v_ + q * Lg * E_ * f_ * h_, Lg * E_ * f_ * h_, 1.0f / std::sqrt(static_cast<float>(f_)),
                               seed + 6, c.stream));
    HPSIM_TRY(fill_random_bf16(x_ + q * ng * d_, ng * d_, 1.0f, seed + 7, c.stream));
    if (backward_) HPSIM_TRY(fill_random_bf16(dy_ + q * ng * d_, ng * d_, 0.01f, seed + 8, c.stream));
  }
  if (forced_) {
    // Head l of this rank is global head rank*L + l; its sub-tokens come in blocks of ng from every
    // source rank b of the world (all held here in the one-GPU reference: the same draws).
    const std::int64_t blocks = world_ * data_ranks_;
    const auto weights = expert_weights(scenario_.workload, E_, blocks);
    std::vector<std::int32_t> topk(static_cast<std::size_t>(L_ * N_ * k_));
    std::vector<float> gates(topk.size());
    for (std::int64_t l = 0; l < L_; ++l) {
      const std::int64_t head = rank_ * L_ + l;
      for (std::int64_t src = 0; src < blocks; ++src) {
        const auto r = draw_routing(weights, ng, k_, scenario_.workload.seed, hp_routing_stream(head, src));
        const std::size_t at = static_cast<std::size_t>((l * N_ + src * ng) * k_);
        std::copy(r.experts.begin(), r.experts.end(), topk.begin() + static_cast<std::ptrdiff_t>(at));
        std::copy(r.gates.begin(), r.gates.end(), gates.begin() + static_cast<std::ptrdiff_t>(at));
      }
    }
    HPSIM_CUDA_TRY(cudaMemcpy(forced_topk_, topk.data(), topk.size() * 4, cudaMemcpyHostToDevice));
    HPSIM_CUDA_TRY(cudaMemcpy(forced_gates_, gates.data(), gates.size() * 4, cudaMemcpyHostToDevice));
  }
  return Status::ok();
}

Status HpLayer::forward(RankContext& c) {
  const Phase F = Phase::kForward;
  const double s = 2.0, Hh = static_cast<double>(H_ * h_);
  const double n = static_cast<double>(n_), N = static_cast<double>(N_), L = static_cast<double>(L_);
  const double peers = static_cast<double>(world_ - 1) / static_cast<double>(world_);
  const std::int64_t block = n_ * L_ * h_ * 2;
  HPSIM_TRY(stage(c, "w_in", F, Lane::kCompute, (n * dd_ + Hh * dd_ + 2 * n * Hh) * s, 2 * n * dd_ * Hh, [&]() -> Status {
    HPSIM_TRY(kernels::launch(w_in_fwd_, c.workspace, c.stream));
    return split_blocks(xs_, send_in_, n_, world_, L_ * h_ * 2, c.stream);
  }));
  HPSIM_TRY(stage(c, "dispatch", F, Lane::kComm, n * Hh * s * peers, 0,
                  [&] { return c.comm->all_to_all(send_in_, x_heads_, block, c.stream); }));
  HPSIM_TRY(stage(c, "router", F, Lane::kCompute, N * L * hh_ * s + L * EE_ * hh_ * 4, 2 * N * L * hh_ * EE_,
                  [&] { return kernels::launch(router_fwd_, c.workspace, c.stream); }));
  if (forced_) {
    const auto bytes = static_cast<std::size_t>(L_ * N_ * k_ * 4);
    HPSIM_CUDA_TRY(cudaMemcpyAsync(topk_, forced_topk_, bytes, cudaMemcpyDeviceToDevice, c.stream));
    HPSIM_CUDA_TRY(cudaMemcpyAsync(gates_, forced_gates_, bytes, cudaMemcpyDeviceToDevice, c.stream));
  }
  const double slots = L * N * static_cast<double>(k_);
  HPSIM_TRY(stage(c, "group", F, Lane::kCompute, slots * 4 * 3, 0,
                  [&] { return kernels::launch(grouping_, c.workspace, c.stream); }));
  HPSIM_TRY(stage(c, "expert_mlp", F, Lane::kCompute, slots * hh_ * s * 2 + L * EE_ * ff_ * hh_ * s * 2,
                  4 * slots * hh_ * ff_, [&] { return kernels::launch(mlp_fwd_, c.workspace, c.stream); }));
  HPSIM_TRY(stage(c, "weighted_sum", F, Lane::kCompute, slots * hh_ * s + N * L * hh_ * s, 2 * slots * hh_,
                  [&] { return kernels::launch(combine_fwd_, c.workspace, c.stream); }));
  HPSIM_TRY(stage(c, "combine", F, Lane::kComm, n * Hh * s * peers, 0,
                  [&] { return c.comm->all_to_all(out_, recv_out_, block, c.stream); }));
  HPSIM_TRY(stage(c, "w_out", F, Lane::kCompute, (2 * n * Hh + Hh * dd_ + n * dd_) * s, 2 * n * dd_ * Hh, [&]() -> Status {
    HPSIM_TRY(join_blocks(recv_out_, packed_, n_, world_, L_ * h_ * 2, c.stream));
    return kernels::launch(w_out_fwd_, c.workspace, c.stream);
  }));
  return Status::ok();
}

Status HpLayer::backward(RankContext& c) {
  const Phase B = Phase::kBackward;
  const double s = 2.0, Hh = static_cast<double>(H_ * h_);
  const double n = static_cast<double>(n_), N = static_cast<double>(N_), L = static_cast<double>(L_);
  const double slots = L * N * static_cast<double>(k_);
  const double peers = static_cast<double>(world_ - 1) / static_cast<double>(world_);
  const std::int64_t block = n_ * L_ * h_ * 2;
  HPSIM_TRY(stage(c, "w_out_bwd", B, Lane::kCompute, (3 * n * Hh + 2 * Hh * dd_ + n * dd_) * s, 4 * n * dd_ * Hh,
                  [&]() -> Status {
                    HPSIM_TRY(kernels::launch(w_out_bwd_, c.workspace, c.stream));
                    return split_blocks(d_packed_, send_bwd_, n_, world_, L_ * h_ * 2, c.stream);
                  }));
  HPSIM_TRY(stage(c, "combine_bwd", B, Lane::kComm, n * Hh * s * peers, 0,
                  [&] { return c.comm->all_to_all(send_bwd_, d_out_, block, c.stream); }));
  HPSIM_TRY(stage(c, "weighted_sum_bwd", B, Lane::kCompute, 2 * slots * hh_ * s + N * L * hh_ * s, 4 * slots * hh_,
                  [&] { return kernels::launch(combine_bwd_, c.workspace, c.stream); }));
  HPSIM_TRY(stage(c, "expert_mlp_bwd", B, Lane::kCompute, 3 * slots * hh_ * s + 4 * L * EE_ * ff_ * hh_ * s,
                  10 * slots * hh_ * ff_, [&] { return kernels::launch(mlp_bwd_, c.workspace, c.stream); }));
  HPSIM_TRY(stage(c, "group_bwd", B, Lane::kCompute, slots * hh_ * s + N * L * hh_ * s, slots * hh_,
                  [&] { return kernels::launch(group_bwd_, c.workspace, c.stream); }));
  HPSIM_TRY(stage(c, "router_bwd", B, Lane::kCompute, 3 * N * L * hh_ * s + 2 * L * EE_ * hh_ * 4, 4 * slots * hh_,
                  [&] { return kernels::launch(router_bwd_, c.workspace, c.stream); }));
  HPSIM_TRY(stage(c, "dispatch_bwd", B, Lane::kComm, n * Hh * s * peers, 0,
                  [&] { return c.comm->all_to_all(dx_tokens_, recv_dx_, block, c.stream); }));
  HPSIM_TRY(stage(c, "w_in_bwd", B, Lane::kCompute, (2 * n * Hh + 2 * Hh * dd_ + 2 * n * dd_) * s, 4 * n * dd_ * Hh,
                  [&]() -> Status {
                    HPSIM_TRY(join_blocks(recv_dx_, d_xs_, n_, world_, L_ * h_ * 2, c.stream));
                    return kernels::launch(w_in_bwd_, c.workspace, c.stream);
                  }));
  return Status::ok();
}

core::Expected<std::vector<NumericsTensor>> HpLayer::numerics() const {
  const std::int64_t Hh = H_ * h_;
  std::vector<NumericsTensor> out;
  auto add = [&out](core::Expected<NumericsTensor> t) { return append(out, std::move(t)); };
  HPSIM_TRY(add(host_tensor("Y", y_, n_ * d_)));
  if (backward_) {
    HPSIM_TRY(add(host_tensor("dX", dx_, n_ * d_)));
    HPSIM_TRY(add(host_tensor("dW_in", d_w_in_, Hh * d_, true)));
    HPSIM_TRY(add(host_tensor("dW_out", d_w_out_, d_ * Hh, true)));
    HPSIM_TRY(add(host_tensor("d router", d_router_, L_ * E_ * h_)));
    HPSIM_TRY(add(host_tensor("dK", d_w_k_, L_ * E_ * f_ * h_)));
    HPSIM_TRY(add(host_tensor("dV", d_w_v_, L_ * E_ * f_ * h_)));
  }
  return out;
}

void HpLayer::add_traffic(std::vector<core::TrafficMatrix>& m) const {
  // Equal fixed splits: n * L * h * s bytes to every peer in each of the four all-to-alls.
  const double block = static_cast<double>(n_ * L_ * h_ * 2);
  for (auto& matrix : m) {
    const bool bwd = matrix.phase == "dispatch_bwd" || matrix.phase == "combine_bwd";
    if (bwd && !backward_) continue;
    for (int peer = 0; peer < world_; ++peer) matrix.at(rank_, peer) = block;
  }
}

}  // namespace hpsim::exec::detail
