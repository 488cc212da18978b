// Kernel points from hpsim-bench JSON: which cases become points of which family, with the model's
// own FLOPs and bytes for each case's shape (bench_import.h).
#include "hpsim/model/bench_import.h"

#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "hpsim/model/cost.h"
#include "hpsim/model/segments.h"

namespace hpsim::model {
namespace {

using nlohmann::json;

json hp_case(const std::string& family, double median_us) {
  // A rank of W = 2 holding 4 heads: n = 1000 tokens, so 4 x 2000 sub-tokens, E = 10, k = 2, f = 128.
  return {{"name", "hp/toy/W2/n1000/uniform/" + family},
          {"label", "family=" + family + " layer=hp config=toy W=2 n=1000 ceiling=bf16_gemm"},
          {"median_us", median_us},
          {"n", 1000}, {"W", 2}, {"L", 4}, {"N", 2000}, {"E", 10}, {"k", 2}, {"f", 128}, {"h", 128}, {"d", 1024}, {"H", 8},
          {"segments", 40}, {"segments_nonempty", 39}, {"items_64", 270}, {"items_128", 150}, {"items_192", 110}, {"items_2048", 40},
          {"ceiling_copy_gbps", 4200.0}, {"ceiling_bf16_tflops", 790.0}};
}

TEST(BenchImport, MapsTheLayersDefaultKernelsAndSkipsTheRest) {
  EXPECT_EQ(profile_family_of_bench("hp_expert_mlp_fwd"), "hp_expert_mlp_fwd");
  EXPECT_EQ(profile_family_of_bench("ep_grouped_mlp_bwd"), "ep_expert_mlp_bwd");
  EXPECT_EQ(profile_family_of_bench("hp_router_fwd_bf16x3"), "hp_router_fwd");
  EXPECT_EQ(profile_family_of_bench("hp_grouping"), "hp_group");
  EXPECT_EQ(profile_family_of_bench("hp_w_out_bwd"), "hp_w_out_bwd");
  EXPECT_TRUE(profile_family_of_bench("hp_router_fwd_ffma").empty());
  EXPECT_TRUE(profile_family_of_bench("hp_expert_mlp_fwd_mmasync").empty());
  EXPECT_TRUE(profile_family_of_bench("ep_grouped_mlp_fwd_cublas").empty());
  EXPECT_TRUE(profile_family_of_bench("hp_layer_fwd_bwd").empty());
  EXPECT_TRUE(profile_family_of_bench("ceiling_copy").empty());
}

TEST(BenchImport, PricesAnExpertMlpCaseWithTheModelsWorkForItsSegments) {
  json doc = {{"context", {{"date", "2026-11-29T14:06:00+00:00"}, {"hpsim_gpu", "NVIDIA H200"}}}, {"benchmarks", json::array()}};
  doc["benchmarks"].push_back(hp_case("hp_expert_mlp_fwd", 50.0));
  auto got = kernel_points_from_bench(doc.dump());
  ASSERT_TRUE(got.has_value()) << got.error().message;
  EXPECT_EQ(got->gpu, "NVIDIA H200");
  EXPECT_EQ(got->date, "2026-11-29");
  EXPECT_DOUBLE_EQ(got->copy_gbps, 4200.0);
  EXPECT_DOUBLE_EQ(got->bf16_tflops, 790.0);
  ASSERT_EQ(got->points.count("hp_expert_mlp_fwd"), 1u);
  const auto& p = got->points.at("hp_expert_mlp_fwd").at(0);
  // Forward items of 192 rows: 110 items -> 21120 padded rows; 4 FLOPs per row, h and f.
  EXPECT_DOUBLE_EQ(p.flops, 4.0 * 110 * 192 * 128 * 128);
  // 2 R h s with R = n H k = 16000 pairs, plus the 39 non-empty segments' K and V.
  EXPECT_DOUBLE_EQ(p.bytes, 2.0 * 16000 * 128 * 2 + 39.0 * 2 * 128 * 128 * 2);
  EXPECT_DOUBLE_EQ(p.time_us, 50.0);
  EXPECT_NE(p.shape.find("hp/toy/W2/n1000/uniform/hp_expert_mlp_fwd"), std::string::npos);
}

TEST(BenchImport, RoutersCarryTheirSelectionsAndProjectionsAreGemms) {
  json ep = {{"name", "ep/toy/W2/n1000/uniform/ep_router_fwd"},
             {"label", "family=ep_router_fwd layer=ep"},
             {"median_us", 20.0},
             {"n", 1000}, {"W", 2}, {"E", 16}, {"E_local", 8}, {"k", 4}, {"f", 256}, {"d", 1024}, {"rows", 4000}};
  json dense = {{"name", "dense/hp_w_in_bwd/n100"}, {"label", "family=hp_w_in_bwd layer=hp n=100"}, {"median_us", 9.0},
                {"n", 100}, {"in", 1024}, {"out", 512}};
  const json doc = {{"benchmarks", {ep, dense}}};
  auto got = kernel_points_from_bench(doc.dump());
  ASSERT_TRUE(got.has_value()) << got.error().message;
  const auto& r = got->points.at("ep_router_fwd").at(0);
  EXPECT_DOUBLE_EQ(r.flops, 2.0 * 1000 * 1024 * 16);
  EXPECT_DOUBLE_EQ(r.selections, 1000.0 * 16 * 4);
  const auto& g = got->points.at("hp_w_in_bwd").at(0);
  EXPECT_DOUBLE_EQ(g.flops, 2 * 2.0 * 100 * 1024 * 512);
  EXPECT_DOUBLE_EQ(g.bytes, 2 * (100.0 * 1024 + 1024.0 * 512 + 100.0 * 512) * 2);
  EXPECT_TRUE(got->skipped.empty());
}

TEST(BenchImport, ListsWhatItCannotUseAndRejectsWhatIsNotABenchFile) {
  json failed = hp_case("hp_combine_fwd", 10.0);
  failed["error_occurred"] = true;
  json other_algo = hp_case("hp_expert_mlp_fwd_mmasync", 90.0);
  json no_segments = hp_case("hp_expert_mlp_bwd", 80.0);
  no_segments.erase("items_2048");
  no_segments.erase("segments");
  json ceiling = {{"name", "ceiling/copy_d2d_2GiB"}, {"label", "family=ceiling_copy ceiling=copy"}, {"median_us", 1000.0}};
  json unlabelled = {{"name", "mystery"}, {"median_us", 1.0}};
  const json doc = {{"benchmarks", {failed, other_algo, no_segments, ceiling, unlabelled, hp_case("hp_combine_bwd", 12.0)}}};
  auto got = kernel_points_from_bench(doc.dump());
  ASSERT_TRUE(got.has_value()) << got.error().message;
  ASSERT_EQ(got->points.size(), 1u);
  EXPECT_EQ(got->points.count("hp_combine_bwd"), 1u);
  ASSERT_EQ(got->skipped.size(), 5u);
  EXPECT_NE(got->skipped[0].find("reported an error"), std::string::npos) << got->skipped[0];
  EXPECT_NE(got->skipped[1].find("hp_expert_mlp_fwd_mmasync is not a kernel a layer runs"), std::string::npos) << got->skipped[1];
  EXPECT_NE(got->skipped[2].find("counters missing: segments, items_2048"), std::string::npos) << got->skipped[2];
  EXPECT_NE(got->skipped[3].find("ceiling_copy"), std::string::npos) << got->skipped[3];
  EXPECT_NE(got->skipped[4].find("no family in its label"), std::string::npos) << got->skipped[4];

  EXPECT_FALSE(kernel_points_from_bench("{not json").has_value());
  auto no_array = kernel_points_from_bench(R"({"context": {}})");
  ASSERT_FALSE(no_array.has_value());
  EXPECT_NE(no_array.error().message.find("no \"benchmarks\" array"), std::string::npos);
}

}  // namespace
}  // namespace hpsim::model
