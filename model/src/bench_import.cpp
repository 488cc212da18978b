// Kernel points from hpsim-bench JSON (bench_import.h).
#include "hpsim/model/bench_import.h"

#include <array>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "hpsim/model/cost.h"
#include "hpsim/model/kernel_families.h"
#include "hpsim/model/segments.h"

namespace hpsim::model {
namespace {

using nlohmann::json;

struct Mapping {
  std::string_view bench;
  KernelFamily family;
};

// The default algorithm of every family the layers run; the rest (the FFMA and mma.sync routers, the mma.sync
// MLPs, cuBLAS's grouped GEMM, whole layers, ceilings) measure something the layers do not call.
constexpr std::array<Mapping, 18> kMappings = {{
    {"hp_w_in_fwd", KernelFamily::kHpWIn},
    {"hp_w_in_bwd", KernelFamily::kHpWInBwd},
    {"hp_router_fwd_bf16x3", KernelFamily::kHpRouterFwd},
    {"hp_router_bwd", KernelFamily::kHpRouterBwd},
    {"hp_grouping", KernelFamily::kHpGroup},
    {"hp_expert_mlp_fwd", KernelFamily::kHpExpertMlpFwd},
    {"hp_expert_mlp_bwd", KernelFamily::kHpExpertMlpBwd},
    {"hp_combine_fwd", KernelFamily::kHpCombineFwd},
    {"hp_combine_bwd", KernelFamily::kHpCombineBwd},
    {"hp_w_out_fwd", KernelFamily::kHpWOut},
    {"hp_w_out_bwd", KernelFamily::kHpWOutBwd},
    {"ep_router_fwd", KernelFamily::kEpRouterFwd},
    {"ep_router_bwd", KernelFamily::kEpRouterBwd},
    {"ep_permute", KernelFamily::kEpPermute},
    {"ep_grouped_mlp_fwd", KernelFamily::kEpExpertMlpFwd},
    {"ep_grouped_mlp_bwd", KernelFamily::kEpExpertMlpBwd},
    {"ep_unpermute_fwd", KernelFamily::kEpUnpermute},
    {"ep_unpermute_bwd", KernelFamily::kEpUnpermuteBwd},
}};

std::optional<KernelFamily> family_of(std::string_view bench) {
  for (const auto& m : kMappings) {
    if (m.bench == bench) return m.family;
  }
  return std::nullopt;
}

// "family=hp_expert_mlp_fwd layer=hp ..." -> "hp_expert_mlp_fwd".
std::string label_value(const std::string& label, std::string_view key) {
  const std::string k = std::string(key) + "=";
  std::size_t at = 0;
  while ((at = label.find(k, at)) != std::string::npos) {
    if (at == 0 || label[at - 1] == ' ') {
      const std::size_t end = label.find(' ', at);
      return label.substr(at + k.size(), end == std::string::npos ? std::string::npos : end - at - k.size());
    }
    at += k.size();
  }
  return {};
}

bool is_expert_mlp(KernelFamily f) {
  return f == KernelFamily::kHpExpertMlpFwd || f == KernelFamily::kHpExpertMlpBwd || f == KernelFamily::kEpExpertMlpFwd ||
         f == KernelFamily::kEpExpertMlpBwd;
}

bool is_projection(KernelFamily f) {
  return f == KernelFamily::kHpWIn || f == KernelFamily::kHpWInBwd || f == KernelFamily::kHpWOut || f == KernelFamily::kHpWOutBwd;
}

}  // namespace

std::string_view profile_family_of_bench(std::string_view bench_family) {
  const auto f = family_of(bench_family);
  return f ? name_of(*f) : std::string_view{};
}

core::Expected<BenchImport> kernel_points_from_bench(std::string_view json_text) {
  json doc;
  try {
    doc = json::parse(json_text);
  } catch (const json::parse_error& e) {
    return core::Error::field("bench JSON", fmt::format("not JSON ({})", e.what()));
  }
  if (!doc.is_object() || !doc.contains("benchmarks") || !doc["benchmarks"].is_array()) {
    return core::Error::field("bench JSON", "no \"benchmarks\" array (write it with --benchmark_out_format=json)");
  }
  BenchImport out;
  if (auto ctx = doc.find("context"); ctx != doc.end() && ctx->is_object()) {
    out.gpu = ctx->value("hpsim_gpu", std::string());
    out.date = ctx->value("date", std::string()).substr(0, 10);
  }
  for (const auto& b : doc["benchmarks"]) {
    if (out.copy_gbps == 0 && b.contains("ceiling_copy_gbps") && b["ceiling_copy_gbps"].is_number()) {
      out.copy_gbps = b["ceiling_copy_gbps"].get<double>();
      out.bf16_tflops = b.value("ceiling_bf16_tflops", 0.0);
    }
    const std::string name = b.value("name", std::string("(unnamed)"));
    auto skip = [&](const std::string& why) { out.skipped.push_back(name + ": " + why); };
    if (b.value("error_occurred", false)) {
      skip("the run reported an error");
      continue;
    }
    const std::string bench_family = label_value(b.value("label", std::string()), "family");
    if (bench_family.empty()) {
      skip("no family in its label");
      continue;
    }
    const auto family = family_of(bench_family);
    if (!family) {
      skip(fmt::format("{} is not a kernel a layer runs", bench_family));
      continue;
    }
    std::string missing;
    auto counter = [&](const char* key) -> double {
      auto it = b.find(key);
      if (it == b.end() || !it->is_number()) {
        missing += missing.empty() ? key : std::string(", ") + key;
        return 0;
      }
      return it->get<double>();
    };
    const double time_us = counter("median_us");
    KernelWork work;
    if (is_projection(*family)) {
      const double n = counter("n"), in = counter("in"), outf = counter("out");
      work = gemm_work(n, in, outf, 2);
      if (*family == KernelFamily::kHpWInBwd || *family == KernelFamily::kHpWOutBwd) work = {2 * work.flops, 2 * work.bytes};
    } else {
      const bool hp = bench_family.starts_with("hp_");
      LayerShape x;
      x.n = counter("n");
      x.W = counter("W");
      x.E = counter("E");
      x.k = counter("k");
      x.f = counter("f");
      x.d = counter("d");
      x.s = 2;
      x.save_expert_hidden = !hp;  // HP's fused MLP recomputes the activation; EP's saves it
      double rows = 0;
      if (hp) {
        x.H = counter("H");
        x.h = counter("h");
        rows = x.n * x.H * x.k;  // every (sub-token, slot) pair of the rank's heads
      } else {
        x.H = 1;
        x.h = x.d;
        rows = counter("rows");
      }
      SegmentTiles tiles;
      if (is_expert_mlp(*family)) {
        tiles.segments = counter("segments");
        tiles.nonempty = counter("segments_nonempty");
        for (std::size_t t = 0; t < kSegmentTileRows.size(); ++t)
          tiles.items[t] = counter(fmt::format("items_{}", kSegmentTileRows[t]).c_str());
      }
      if (missing.empty()) work = moe_kernel_work(*family, x, rows, tiles);
    }
    if (!missing.empty()) {
      skip("counters missing: " + missing);
      continue;
    }
    if (!(time_us > 0)) {
      skip("median_us is not positive");
      continue;
    }
    out.points[std::string(name_of(*family))].push_back(
        core::KernelPoint{fmt::format("{} (hpsim-bench)", name), work.flops, work.bytes, time_us, work.selections});
  }
  return out;
}

}  // namespace hpsim::model
