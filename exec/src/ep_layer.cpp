#include "ep_layer.h"

#include <algorithm>
#include <numeric>

#include "hpsim/exec/forced_routing.h"

namespace hpsim::exec::detail {
EpLayer::EpLayer(const core::Scenario& s, int rank, int world, bool forced_routing, bool include_backward,
                 int data_ranks)
    : scenario_(s), rank_(rank), world_(world), forced_(forced_routing), backward_(include_backward),
      data_ranks_(data_ranks) {
  n_ = s.workload.tokens_per_rank;
  d_ = s.model.d_model;
  E_ = s.model.num_experts;
  k_ = s.model.top_k;
  f_ = s.model.expert_hidden;
  E_loc_ = E_ / world;
  dd_ = static_cast<double>(d_);
  ff_ = static_cast<double>(f_);
  hh_ = static_cast<double>(s.model.head_dim);
  EE_ = static_cast<double>(E_);
  EEloc_ = static_cast<double>(E_ / world);
  const auto w = static_cast<std::size_t>(world);
  send_bytes_.assign(w, 0);
  send_off_.assign(w, 0);
  recv_bytes_.assign(w, 0);
  recv_off_.assign(w, 0);
}

Status EpLayer::allocate_received(Allocator& alloc, std::int64_t r) {
  HPSIM_ALLOC(g_offsets_, std::int32_t, E_loc_ + 1, kA, "regroup offsets");
  HPSIM_ALLOC(g_perm_, std::int32_t, r, kA, "regroup permutation");
  HPSIM_ALLOC(g_inverse_, std::int32_t, r, kA, "regroup inverse");
  HPSIM_ALLOC(recv_, Bf16, r * d_, kC, "dispatch receive buffer");
  HPSIM_ALLOC(grouped_, Bf16, r * d_, kA, "rows grouped by local expert");
  HPSIM_ALLOC(pre_act_, Bf16, r * f_, kA, "expert pre-activations");
  HPSIM_ALLOC(act_, Bf16, r * f_, kA, "expert activations");
  HPSIM_ALLOC(y_grouped_, Bf16, r * d_, kS, "expert outputs");
  HPSIM_ALLOC(back_, Bf16, r * d_, kC, "combine send buffer");
  if (backward_) {
    HPSIM_ALLOC(d_back_, Bf16, r * d_, kC, "combine_bwd receive buffer");
    HPSIM_ALLOC(d_grouped_, Bf16, r * d_, kS, "expert output gradient");
    HPSIM_ALLOC(dx_grouped_, Bf16, r * d_, kS, "expert input gradient");
    HPSIM_ALLOC(dx_recv_, Bf16, r * d_, kC, "dispatch_bwd send buffer");
  }
  return Status::ok();
}

Status EpLayer::build_received_args(RankContext* ctx, std::int64_t r, bool check) {
  (void)ctx;
  regroup_ = {recv_counts_, g_offsets_, g_perm_, g_inverse_, world_, E_loc_, r};
  // grouped[g] = recv[perm[g]]: a one-slot combine whose "inverse" is the permutation.
  gather_ = {recv_, g_perm_, nullptr, grouped_, 1, r, 1, d_};
  mlp_fwd_ = {grouped_, g_offsets_, w1_, w2_, pre_act_, act_, y_grouped_, E_loc_, r, d_, f_};
  // back[t] = y_grouped[inverse[t]]: received order again.
  ungather_ = {y_grouped_, g_inverse_, nullptr, back_, 1, r, 1, d_};
  if (backward_) {
    ungather_bwd_ = {d_back_, g_perm_, nullptr, d_grouped_, 1, r, 1, d_};
    mlp_bwd_ = {grouped_, g_offsets_, w1_, w2_, pre_act_, act_, d_grouped_, dx_grouped_, d_w1_, d_w2_, E_loc_, r, d_, f_};
    gather_bwd_ = {dx_grouped_, g_inverse_, nullptr, dx_recv_, 1, r, 1, d_};
  }
  if (check && r > 0) {
    HPSIM_TRY(kernels::can_implement(regroup_));
    HPSIM_TRY(kernels::can_implement(gather_));
    HPSIM_TRY(kernels::can_implement(mlp_fwd_));
    HPSIM_TRY(kernels::can_implement(ungather_));
    if (backward_) HPSIM_TRY(kernels::can_implement(mlp_bwd_));
  }
  return Status::ok();
}

Status EpLayer::allocate(Allocator& alloc, RankContext* ctx) {
  const std::int64_t slots = n_ * k_;
  HPSIM_ALLOC(router_w_, float, E_ * d_, kW, "router weights");
  HPSIM_ALLOC(bias_, float, E_, kW, "router bias");
  HPSIM_ALLOC(w1_, Bf16, E_loc_ * f_ * d_, kW, "expert weights W1");
  HPSIM_ALLOC(w2_, Bf16, E_loc_ * f_ * d_, kW, "expert weights W2");
  HPSIM_ALLOC(x_, Bf16, n_ * d_, kA, "layer input");
  HPSIM_ALLOC(topk_, std::int32_t, slots, kA, "top-k experts");
  HPSIM_ALLOC(gates_, float, slots, kA, "gates");
  HPSIM_ALLOC(counts_, std::int32_t, E_, kA, "expert counts");
  HPSIM_ALLOC(recv_counts_, std::int32_t, E_, kC, "metadata receive buffer");
  HPSIM_ALLOC(p_offsets_, std::int32_t, E_ + 1, kA, "permute offsets");
  HPSIM_ALLOC(p_perm_, std::int32_t, slots, kA, "permute permutation");
  HPSIM_ALLOC(p_inverse_, std::int32_t, slots, kA, "permute inverse");
  HPSIM_ALLOC(rank_counts_, std::int32_t, world_, kA, "rows per destination");
  HPSIM_ALLOC(p_counts_, std::int32_t, E_, kA, "permute expert counts");
  HPSIM_ALLOC(send_, Bf16, slots * d_, kC, "dispatch send buffer");
  HPSIM_ALLOC(ret_, Bf16, slots * d_, kC, "combine receive buffer");
  HPSIM_ALLOC(y_, Bf16, n_ * d_, kS, "layer output");
  if (forced_) {
    HPSIM_ALLOC(forced_topk_, std::int32_t, slots, kS, "forced routing (experts)");
    HPSIM_ALLOC(forced_gates_, float, slots, kS, "forced routing (gates)");
    HPSIM_ALLOC(forced_counts_, std::int32_t, E_, kS, "forced routing (counts)");
  }
  if (backward_) {
    HPSIM_ALLOC(d_router_, float, E_ * d_, kG, "router gradient");
    HPSIM_ALLOC(d_w1_, Bf16, E_loc_ * f_ * d_, kG, "dW1");
    HPSIM_ALLOC(d_w2_, Bf16, E_loc_ * f_ * d_, kG, "dW2");
    HPSIM_ALLOC(dy_, Bf16, n_ * d_, kS, "output gradient");
    HPSIM_ALLOC(d_ret_, Bf16, slots * d_, kC, "combine_bwd send buffer");
    HPSIM_ALLOC(dx_ret_, Bf16, slots * d_, kC, "dispatch_bwd receive buffer");
    HPSIM_ALLOC(dx_tok_, Bf16, n_ * d_, kS, "layer input gradient");
    HPSIM_ALLOC(d_gate_, float, slots, kS, "gate gradient");
    HPSIM_ALLOC(d_score_, float, slots, kS, "score gradient");
  }
  router_fwd_ = {x_, router_w_, bias_, topk_, gates_, counts_, 1, n_, d_, E_, k_, kernels::layer_router_algo(d_)};
  permute_ = {x_, topk_, send_, p_offsets_, p_perm_, p_inverse_, p_counts_, rank_counts_, n_, d_, k_, E_, world_};
  unpermute_ = {ret_, p_inverse_, gates_, y_, 1, n_, k_, d_};
  if (backward_) {
    unpermute_bwd_ = {dy_, ret_, p_inverse_, gates_, d_ret_, d_gate_, d_score_, 1, n_, k_, d_};
    permute_bwd_ = {dx_ret_, p_inverse_, nullptr, dx_tok_, 1, n_, k_, d_};
    router_bwd_ = {x_, router_w_, topk_, d_score_, p_offsets_, p_perm_, dx_tok_, dx_tok_, d_router_,
                   1, n_, d_, E_, k_, slots};
  }
  HPSIM_TRY(kernels::can_implement(router_fwd_));
  HPSIM_TRY(kernels::can_implement(permute_));
  HPSIM_TRY(kernels::can_implement(unpermute_));
  if (backward_) {
    HPSIM_TRY(kernels::can_implement(unpermute_bwd_));
    HPSIM_TRY(kernels::can_implement(permute_bwd_));
    HPSIM_TRY(kernels::can_implement(router_bwd_));
  }
  // Workspace for the worst case of received rows (every token of every rank comes here). The
  // dry pass also counts the routing-dependent buffers at that size and checks their shapes; the
  // real pass carves them per iteration (forward) and only sizes the workspace here.
  const std::int64_t worst = n_ * k_ * world_;
  if (alloc.dry()) HPSIM_TRY(allocate_received(alloc, worst));
  HPSIM_TRY(build_received_args(ctx, worst, /*check=*/alloc.dry()));
  std::int64_t ws = 0;
  for (std::int64_t b : {kernels::workspace_bytes(router_fwd_), kernels::workspace_bytes(permute_),
                         kernels::workspace_bytes(unpermute_), kernels::workspace_bytes(regroup_),
                         kernels::workspace_bytes(gather_), kernels::workspace_bytes(mlp_fwd_),
                         kernels::workspace_bytes(ungather_)}) {
    ws = std::max(ws, b);
  }
  if (backward_) {
    for (std::int64_t b : {kernels::workspace_bytes(unpermute_bwd_), kernels::workspace_bytes(permute_bwd_),
                           kernels::workspace_bytes(router_bwd_), kernels::workspace_bytes(mlp_bwd_),
                           kernels::workspace_bytes(ungather_bwd_), kernels::workspace_bytes(gather_bwd_)}) {
      ws = std::max(ws, b);
    }
  }
  std::uint8_t* workspace = nullptr;
  HPSIM_ALLOC(workspace, std::uint8_t, ws, kS, "kernel workspace");
  if (ctx != nullptr) {
    ctx->workspace = workspace;
    ctx->workspace_bytes = ws;
  }
  return Status::ok();
}

Status EpLayer::initialise(RankContext& c) {
  const std::uint64_t shared = scenario_.workload.seed * 1000003ULL;
  // The router is replicated: same weights on every rank.
  HPSIM_TRY(fill_random_f32(router_w_, E_ * d_, 1.0f / std::sqrt(static_cast<float>(d_)), shared + 3, c.stream));
  HPSIM_TRY(fill_random_f32(bias_, E_, 0.01f, shared + 4, c.stream));
  // Rank g's experts, tokens and routing, from rank g's seed; q-th of the ranks held here.
  const std::int64_t Eg = E_loc_ / data_ranks_, ng = n_ / data_ranks_;
  const auto weights = expert_weights(scenario_.workload, E_, world_ * data_ranks_);
  std::vector<std::int32_t> topk, counts(static_cast<std::size_t>(E_), 0);
  std::vector<float> gates;
  for (int q = 0; q < data_ranks_; ++q) {
    const std::int64_t g = rank_ * data_ranks_ + q;
    const std::uint64_t seed = shared + static_cast<std::uint64_t>(g) * 7919ULL;
    HPSIM_TRY(fill_random_bf16(w1_ + q * Eg * f_ * d_, Eg * f_ * d_, 1.0f / std::sqrt(static_cast<float>(d_)), seed + 5,
                               c.stream));
    HPSIM_TRY(fill_random_bf16(w2_ + q * Eg * f_ * d_, Eg * f_ * d_, 1.0f / std::sqrt(static_cast<float>(f_)), seed + 6,
                               c.stream));
    HPSIM_TRY(fill_random_bf16(x_ + q * ng * d_, ng * d_, 1.0f, seed + 7, c.stream));
    if (backward_) HPSIM_TRY(fill_random_bf16(dy_ + q * ng * d_, ng * d_, 0.01f, seed + 8, c.stream));
    if (forced_) {
      const auto r = draw_routing(weights, ng, k_, scenario_.workload.seed, ep_routing_stream(g));
      for (auto e : r.experts) ++counts[static_cast<std::size_t>(e)];
      topk.insert(topk.end(), r.experts.begin(), r.experts.end());
      gates.insert(gates.end(), r.gates.begin(), r.gates.end());
    }
  }
  if (forced_) {
    HPSIM_CUDA_TRY(cudaMemcpy(forced_topk_, topk.data(), topk.size() * 4, cudaMemcpyHostToDevice));
    HPSIM_CUDA_TRY(cudaMemcpy(forced_gates_, gates.data(), gates.size() * 4, cudaMemcpyHostToDevice));
    HPSIM_CUDA_TRY(cudaMemcpy(forced_counts_, counts.data(), counts.size() * 4, cudaMemcpyHostToDevice));
  }
  host_counts_.assign(static_cast<std::size_t>(E_), 0);
  host_recv_counts_.assign(static_cast<std::size_t>(E_), 0);
  return Status::ok();
}

Status EpLayer::forward(RankContext& c) {
  const Phase F = Phase::kForward;
  const double s = 2.0, n = static_cast<double>(n_), slots = n * static_cast<double>(k_);
  const auto w = static_cast<std::size_t>(world_);
  if (has_mark_) {
    // The previous iteration's routing-dependent buffers.
    c.arena.release_to(iteration_mark_);
    has_mark_ = false;
  }
  HPSIM_TRY(stage(c, "router", F, Lane::kCompute, n * dd_ * s + EE_ * dd_ * 4.0, 2 * n * dd_ * EE_,
                  [&] { return kernels::launch(router_fwd_, c.workspace, c.stream); }));
  if (forced_) {
    const auto bytes = static_cast<std::size_t>(n_ * k_ * 4);
    HPSIM_CUDA_TRY(cudaMemcpyAsync(topk_, forced_topk_, bytes, cudaMemcpyDeviceToDevice, c.stream));
    HPSIM_CUDA_TRY(cudaMemcpyAsync(gates_, forced_gates_, bytes, cudaMemcpyDeviceToDevice, c.stream));
    HPSIM_CUDA_TRY(cudaMemcpyAsync(counts_, forced_counts_, static_cast<std::size_t>(E_ * 4),
                                   cudaMemcpyDeviceToDevice, c.stream));
  }
  // Metadata: counts of each destination's experts, then the host learns every split size.
  HPSIM_TRY(stage(c, "metadata", F, Lane::kComm, static_cast<double>(E_loc_ * 4 * (world_ - 1)), 0, [&]() -> Status {
    HPSIM_TRY(c.comm->all_to_all(counts_, recv_counts_, E_loc_ * 4, c.stream));
    HPSIM_CUDA_TRY(cudaMemcpyAsync(host_counts_.data(), counts_, static_cast<std::size_t>(E_ * 4),
                                   cudaMemcpyDeviceToHost, c.stream));
    HPSIM_CUDA_TRY(cudaMemcpyAsync(host_recv_counts_.data(), recv_counts_, static_cast<std::size_t>(E_ * 4),
                                   cudaMemcpyDeviceToHost, c.stream));
    HPSIM_TRY(c.comm->wait(c.stream, "EP metadata all-to-all"));
    std::int64_t sent = 0, got = 0;
    for (std::size_t p = 0; p < w; ++p) {
      std::int64_t rows_to = 0, rows_from = 0;
      for (std::int64_t e = 0; e < E_loc_; ++e) {
        rows_to += host_counts_[p * static_cast<std::size_t>(E_loc_) + static_cast<std::size_t>(e)];
        rows_from += host_recv_counts_[p * static_cast<std::size_t>(E_loc_) + static_cast<std::size_t>(e)];
      }
      send_off_[p] = sent * d_ * 2;
      send_bytes_[p] = rows_to * d_ * 2;
      recv_off_[p] = got * d_ * 2;
      recv_bytes_[p] = rows_from * d_ * 2;
      sent += rows_to;
      got += rows_from;
    }
    HPSIM_ASSERT(sent == n_ * k_, "metadata: {} rows to send, expected n*k = {}", sent, n_ * k_);
    received_ = got;
    iteration_mark_ = c.arena.mark();
    has_mark_ = true;
    Allocator alloc(&c.arena);
    HPSIM_TRY(allocate_received(alloc, std::max<std::int64_t>(received_, 1)));
    return build_received_args(&c, received_, /*check=*/true);
  }));
  HPSIM_TRY(stage(c, "permute", F, Lane::kCompute, 2 * slots * dd_ * s, 0,
                  [&] { return kernels::launch(permute_, c.workspace, c.stream); }));
  const double sent_bytes = static_cast<double>(n_ * k_ * d_ * 2 - send_bytes_[static_cast<std::size_t>(rank_)]);
  HPSIM_TRY(stage(c, "dispatch", F, Lane::kComm, sent_bytes, 0, [&] {
    return c.comm->all_to_all_v(send_, send_bytes_, send_off_, recv_, recv_bytes_, recv_off_, c.stream);
  }));
  const double r = static_cast<double>(received_);
  HPSIM_TRY(stage(c, "regroup", F, Lane::kCompute, 2 * r * dd_ * s + r * 16, 0, [&]() -> Status {
    if (received_ == 0) return Status::ok();
    HPSIM_TRY(kernels::launch(regroup_, c.workspace, c.stream));
    return kernels::launch(gather_, c.workspace, c.stream);
  }));
  HPSIM_TRY(stage(c, "expert_mlp", F, Lane::kCompute, (2 * r * dd_ + 2 * r * ff_ + 2.0 * EEloc_ * ff_ * dd_) * s,
                  4 * r * dd_ * ff_, [&]() -> Status {
                    if (received_ == 0) return Status::ok();
                    return kernels::launch(mlp_fwd_, c.workspace, c.stream);
                  }));
  HPSIM_TRY(stage(c, "unregroup", F, Lane::kCompute, 2 * r * dd_ * s, 0, [&]() -> Status {
    if (received_ == 0) return Status::ok();
    return kernels::launch(ungather_, c.workspace, c.stream);
  }));
  const double returned = r * dd_ * 2 - static_cast<double>(recv_bytes_[static_cast<std::size_t>(rank_)]);
  HPSIM_TRY(stage(c, "combine", F, Lane::kComm, returned, 0, [&] {
    return c.comm->all_to_all_v(back_, recv_bytes_, recv_off_, ret_, send_bytes_, send_off_, c.stream);
  }));
  HPSIM_TRY(stage(c, "unpermute", F, Lane::kCompute, slots * dd_ * s + n * dd_ * s, 2 * slots * dd_,
                  [&] { return kernels::launch(unpermute_, c.workspace, c.stream); }));
  return Status::ok();
}

Status EpLayer::backward(RankContext& c) {
  const Phase B = Phase::kBackward;
  const double s = 2.0, n = static_cast<double>(n_), slots = n * static_cast<double>(k_);
  const double r = static_cast<double>(received_);
  HPSIM_TRY(stage(c, "unpermute_bwd", B, Lane::kCompute, 2 * slots * dd_ * s + n * dd_ * s, 4 * slots * dd_,
                  [&] { return kernels::launch(unpermute_bwd_, c.workspace, c.stream); }));
  const double sent_bytes = static_cast<double>(n_ * k_ * d_ * 2 - send_bytes_[static_cast<std::size_t>(rank_)]);
  HPSIM_TRY(stage(c, "combine_bwd", B, Lane::kComm, sent_bytes, 0, [&] {
    return c.comm->all_to_all_v(d_ret_, send_bytes_, send_off_, d_back_, recv_bytes_, recv_off_, c.stream);
  }));
  HPSIM_TRY(stage(c, "unregroup_bwd", B, Lane::kCompute, 2 * r * dd_ * s, 0, [&]() -> Status {
    if (received_ == 0) return Status::ok();
    return kernels::launch(ungather_bwd_, c.workspace, c.stream);
  }));
  HPSIM_TRY(stage(c, "expert_mlp_bwd", B, Lane::kCompute, (4 * r * dd_ + 4 * r * ff_ + 4.0 * EEloc_ * ff_ * dd_) * s,
                  8 * r * dd_ * ff_, [&]() -> Status {
                    if (received_ == 0) return Status::ok();
                    return kernels::launch(mlp_bwd_, c.workspace, c.stream);
                  }));
  HPSIM_TRY(stage(c, "regroup_bwd", B, Lane::kCompute, 2 * r * dd_ * s, 0, [&]() -> Status {
    if (received_ == 0) return Status::ok();
    return kernels::launch(gather_bwd_, c.workspace, c.stream);
  }));
  const double returned = r * dd_ * 2 - static_cast<double>(recv_bytes_[static_cast<std::size_t>(rank_)]);
  HPSIM_TRY(stage(c, "dispatch_bwd", B, Lane::kComm, returned, 0, [&] {
    return c.comm->all_to_all_v(dx_recv_, recv_bytes_, recv_off_, dx_ret_, send_bytes_, send_off_, c.stream);
  }));
  HPSIM_TRY(stage(c, "permute_bwd", B, Lane::kCompute, slots * dd_ * s + n * dd_ * s, slots * dd_,
                  [&] { return kernels::launch(permute_bwd_, c.workspace, c.stream); }));
  HPSIM_TRY(stage(c, "router_bwd", B, Lane::kCompute, 3 * n * dd_ * s + 2.0 * EE_ * dd_ * 4, 4 * slots * dd_,
                  [&] { return kernels::launch(router_bwd_, c.workspace, c.stream); }));
  return Status::ok();
}

core::Expected<std::vector<NumericsTensor>> EpLayer::numerics() const {
  std::vector<NumericsTensor> out;
  auto add = [&out](core::Expected<NumericsTensor> t) { return append(out, std::move(t)); };
  HPSIM_TRY(add(host_tensor("Y", y_, n_ * d_)));
  if (backward_) {
    HPSIM_TRY(add(host_tensor("dX", dx_tok_, n_ * d_)));
    HPSIM_TRY(add(host_tensor("d router", d_router_, E_ * d_, true)));
    HPSIM_TRY(add(host_tensor("dW1", d_w1_, E_loc_ * f_ * d_)));
    HPSIM_TRY(add(host_tensor("dW2", d_w2_, E_loc_ * f_ * d_)));
  }
  return out;
}

void EpLayer::add_traffic(std::vector<core::TrafficMatrix>& m) const {
  for (auto& matrix : m) {
    for (int peer = 0; peer < world_; ++peer) {
      const auto p = static_cast<std::size_t>(peer);
      if (matrix.phase == "metadata") {
        matrix.at(rank_, peer) = static_cast<double>(E_loc_ * 4);
      } else if (matrix.phase == "dispatch" || (backward_ && matrix.phase == "combine_bwd")) {
        matrix.at(rank_, peer) = static_cast<double>(send_bytes_[p]);
      } else if (matrix.phase == "combine" || (backward_ && matrix.phase == "dispatch_bwd")) {
        matrix.at(rank_, peer) = static_cast<double>(recv_bytes_[p]);
      }
    }
  }
}

}  // namespace hpsim::exec::detail
