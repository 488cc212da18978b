// Grouping and EP permute on the GPU: exactly the CPU twin's stable counting sort (integer
// outputs, so equality is the tolerance), with padding, empty experts, one expert taking every
// pair, and several counting chunks; outputs poisoned before each run.
#include <array>

#include "gpu_test_util.h"
#include "hpsim/kernels/ep_permute.h"
#include "hpsim/kernels/grouping.h"
#include "hpsim/kernels/ref.h"

namespace hpsim::kernels {
namespace {

using namespace testing;

void check_grouping(std::int64_t L, std::int64_t N, std::int64_t k, std::int64_t E, std::int64_t pad, bool skewed,
                    std::uint64_t seed) {
  core::Rng rng(seed);
  auto topk = random_topk(rng, L, N, k, E);
  if (skewed)
    for (std::int64_t lt = 0; lt < L * N; ++lt)
      for (std::int64_t j = 0; j < k; ++j) topk[static_cast<std::size_t>(lt * k + j)] = static_cast<std::int32_t>(j);
  GroupingArgs a;
  a.num_heads = L;
  a.num_tokens = N;
  a.top_k = k;
  a.num_experts = E;
  a.pad_to = pad;
  const std::int64_t rows = grouping_rows_bound(a);
  std::vector<std::int32_t> offsets(static_cast<std::size_t>(L * E + 1)), perm(static_cast<std::size_t>(rows), -7),
      inverse(topk.size()), counts(static_cast<std::size_t>(L * E));
  a.topk_expert = topk.data();
  a.offsets = offsets.data();
  a.perm = perm.data();
  a.inverse = inverse.data();
  a.counts = counts.data();
  ASSERT_TRUE(ref::run(a).is_ok());
  const std::int64_t total = offsets.back();

  DeviceBuffer<std::int32_t> topk_d(topk), off_d(offsets.size()), perm_d(perm.size()), inv_d(inverse.size()),
      cnt_d(counts.size());
  a.topk_expert = topk_d.get();
  a.offsets = off_d.get();
  a.perm = perm_d.get();
  a.inverse = inv_d.get();
  a.counts = cnt_d.get();
  auto ws = workspace(workspace_bytes(a));
  for (int run = 0; run < 2; ++run) {
    off_d.poison(0x7f);
    perm_d.poison(0x7f);
    inv_d.poison(0x7f);
    cnt_d.poison(0x7f);
    const auto status = launch(a, ws.get(), nullptr);
    ASSERT_TRUE(status.is_ok()) << status.error().message;
    EXPECT_EQ(off_d.download(), offsets);
    auto got_perm = perm_d.download();
    got_perm.resize(static_cast<std::size_t>(total));
    EXPECT_EQ(got_perm, std::vector<std::int32_t>(perm.begin(), perm.begin() + total));
    EXPECT_EQ(inv_d.download(), inverse);
    EXPECT_EQ(cnt_d.download(), counts);
  }
}

TEST(GroupingGpu, EqualsTheStableCountingSortOfTheTwin) {
  HPSIM_REQUIRE_GPUS(1);
  check_grouping(3, 1000, 4, 77, 1, false, 1);
  check_grouping(4, 5000, 8, 1536, 1, false, 2);  // several counting chunks per head
  check_grouping(1, 1, 1, 3, 1, false, 3);
  // More chunks than resident blocks (E = 4096 leaves one block per SM): blocks loop over chunks.
  check_grouping(2, 150001, 8, 4096, 1, false, 8);
}

TEST(GroupingGpu, PadsEverySegmentToTheTileMultiple) {
  HPSIM_REQUIRE_GPUS(1);
  check_grouping(2, 999, 3, 50, 16, false, 4);
  check_grouping(2, 777, 4, 13, 128, false, 5);
}

TEST(GroupingGpu, HandlesEmptyExpertsAndOneExpertTakingEverything) {
  HPSIM_REQUIRE_GPUS(1);
  check_grouping(2, 6000, 2, 40, 1, true, 6);
  check_grouping(1, 4097, 1, 4096, 8, true, 7);
}

TEST(PermuteGpu, EqualsTheTwinAndCountsTheSplitsPerRank) {
  HPSIM_REQUIRE_GPUS(1);
  for (const auto& [n, d, k, E, W] : std::vector<std::array<std::int64_t, 5>>{{1000, 1024, 6, 64, 4}, {333, 256, 8, 768, 8}}) {
    core::Rng rng(static_cast<std::uint64_t>(n));
    const auto x = random_bf16(rng, static_cast<std::size_t>(n * d), 1.0);
    const auto topk = random_topk(rng, 1, n, k, E);
    PermuteArgs a;
    a.num_tokens = n;
    a.dim = d;
    a.top_k = k;
    a.num_experts = E;
    a.num_ranks = W;
    std::vector<Bf16> send(static_cast<std::size_t>(n * k * d));
    std::vector<std::int32_t> offsets(static_cast<std::size_t>(E + 1)), perm(static_cast<std::size_t>(n * k)),
        inverse(perm.size()), ecount(static_cast<std::size_t>(E)), rcount(static_cast<std::size_t>(W));
    a.x = x.data();
    a.topk_expert = topk.data();
    a.send = send.data();
    a.offsets = offsets.data();
    a.perm = perm.data();
    a.inverse = inverse.data();
    a.expert_counts = ecount.data();
    a.rank_counts = rcount.data();
    ASSERT_TRUE(ref::run(a).is_ok());
    DeviceBuffer<Bf16> x_d(x), send_d(send.size());
    DeviceBuffer<std::int32_t> topk_d(topk), off_d(offsets.size()), perm_d(perm.size()), inv_d(inverse.size()),
        ec_d(ecount.size()), rc_d(rcount.size());
    send_d.poison();
    rc_d.poison(0x7f);
    a.x = x_d.get();
    a.topk_expert = topk_d.get();
    a.send = send_d.get();
    a.offsets = off_d.get();
    a.perm = perm_d.get();
    a.inverse = inv_d.get();
    a.expert_counts = ec_d.get();
    a.rank_counts = rc_d.get();
    auto ws = workspace(workspace_bytes(a));
    const auto status = launch(a, ws.get(), nullptr);
    ASSERT_TRUE(status.is_ok()) << status.error().message;
    EXPECT_TRUE(bitwise_equal(send_d.download(), send));
    EXPECT_EQ(off_d.download(), offsets);
    EXPECT_EQ(perm_d.download(), perm);
    EXPECT_EQ(inv_d.download(), inverse);
    EXPECT_EQ(ec_d.download(), ecount);
    EXPECT_EQ(rc_d.download(), rcount);
  }
}

}  // namespace
}  // namespace hpsim::kernels
