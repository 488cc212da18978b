// The hpsim binary on good and bad inputs: exit codes, the field named on stderr, JSON output.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "run_cli.h"

namespace hpsim::testing {
namespace {

using nlohmann::json;

json default_scenario() {
  const auto r = run_cli({"presets", "--show", "paper-4.2b-h200x8-uniform"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return json::parse(r.out);
}

std::string write_json(const std::string& name, const json& doc) { return write_temp(name, doc.dump(2)).string(); }

// Every stderr line of a failed run is "error: ..."; returns them joined.
void expect_error_lines(const CliResult& r) {
  ASSERT_FALSE(r.err.empty());
  std::istringstream lines(r.err);
  std::string line;
  while (std::getline(lines, line)) EXPECT_EQ(line.rfind("error: ", 0), 0u) << line;
}

void expect_bad_input(const CliResult& r, const std::string& needle) {
  EXPECT_EQ(r.exit_code, 1) << r.err;
  expect_error_lines(r);
  EXPECT_NE(r.err.find(needle), std::string::npos) << "stderr: " << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
}

TEST(CliSimulate, MalformedJsonNamesTheFile) {
  const auto path = write_temp("malformed.json", "{\"name\": \"x\",\n  \"model\": {").string();
  expect_bad_input(run_cli({"simulate", path}), "error: " + path + ": (document): malformed JSON at line 2");
}

TEST(CliSimulate, UnknownFieldIsNamed) {
  auto s = default_scenario();
  s["model"]["colour"] = "blue";
  expect_bad_input(run_cli({"simulate", write_json("unknown.json", s)}), "model.colour: unknown field");
}

TEST(CliSimulate, MissingFieldIsNamed) {
  auto s = default_scenario();
  s["workload"].erase("seed");
  expect_bad_input(run_cli({"simulate", write_json("missing.json", s)}), "workload.seed: missing field");
}

TEST(CliSimulate, WrongTypeIsNamed) {
  auto s = default_scenario();
  s["cluster"]["num_nodes"] = "one";
  expect_bad_input(run_cli({"simulate", write_json("type.json", s)}), "cluster.num_nodes: expected an integer");
}

TEST(CliSimulate, TopKAboveExpertsIsRejected) {
  auto s = default_scenario();
  s["model"]["top_k"] = 800;
  expect_bad_input(run_cli({"simulate", write_json("topk.json", s)}),
                   "model.top_k: must be <= model.num_experts (768), got 800");
}

TEST(CliSimulate, HpScenarioNeedsWDividingH) {
  auto s = default_scenario();
  s["cluster"]["num_nodes"] = 2;
  s["parallel"]["num_ranks"] = 12;
  expect_bad_input(run_cli({"simulate", write_json("hp_w.json", s)}), "parallel.num_ranks: must divide model.num_heads (8)");
}

TEST(CliSimulate, EpScenarioNeedsWDividingE) {
  auto s = default_scenario();
  s["parallel"]["strategy"] = "ep";
  s["model"]["num_experts"] = 764;
  expect_bad_input(run_cli({"simulate", write_json("ep_w.json", s)}),
                   "parallel.num_ranks: must divide model.num_experts (764)");
}

TEST(CliSimulate, MoreRanksThanGpusIsRejected) {
  auto s = default_scenario();
  s["parallel"]["num_ranks"] = 16;
  expect_bad_input(run_cli({"simulate", write_json("ranks.json", s)}), "parallel.num_ranks: must be <= the cluster's GPUs");
}

TEST(CliSimulate, MissingFileIsNamed) {
  const auto path = (temp_dir() / "no_such_scenario.json").string();
  expect_bad_input(run_cli({"simulate", path}), path + ": cannot open file for reading");
}

TEST(CliSimulate, BadProfileIsNamed) {
  const auto base = run_cli({"simulate", "--json"});  // make sure the default profile itself works
  ASSERT_EQ(base.exit_code, 0) << base.err;
  auto profile = json::parse(read_file(std::string(HPSIM_SOURCE_DIR) + "/traces/data/profiles/h200-datasheet.json"));
  profile["collectives"]["intra_node"]["all_to_all"]["efficiency"] = 2.0;
  const auto path = write_json("bad_profile.json", profile);
  expect_bad_input(run_cli({"simulate", "--profile", path}),
                   path + ": collectives.intra_node.all_to_all.efficiency: must be in (0, 1], got 2");

  profile = json::parse(read_file(std::string(HPSIM_SOURCE_DIR) + "/traces/data/profiles/h200-datasheet.json"));
  profile["kernels"].erase("hp_group");
  const auto missing = write_json("missing_family.json", profile);
  expect_bad_input(run_cli({"simulate", "--profile", missing}), missing + ": kernels.hp_group: missing");

  expect_bad_input(run_cli({"simulate", "--profile", "no-such-profile"}), "no-such-profile: no such file");
}

TEST(CliSimulate, ReportsEveryBadFieldOfAFileAtOnce) {
  auto s = default_scenario();
  s["model"]["colour"] = 1;
  s["workload"].erase("seed");
  const auto r = run_cli({"simulate", write_json("two.json", s)});
  expect_bad_input(r, "model.colour: unknown field");
  EXPECT_NE(r.err.find("workload.seed: missing field"), std::string::npos);
}

TEST(CliSimulate, UsageErrorsExitTwo) {
  EXPECT_EQ(run_cli({"simulate", "--strategy", "xp"}).exit_code, 2);
  EXPECT_EQ(run_cli({"simulate", "--no-such-option"}).exit_code, 2);
  EXPECT_EQ(run_cli({"no-such-command"}).exit_code, 2);
  EXPECT_EQ(run_cli({}).exit_code, 2);
  EXPECT_EQ(run_cli({"sweep", "--k", "0"}).exit_code, 2);
  EXPECT_EQ(run_cli({"sweep", "--format", "xml"}).exit_code, 2);
}

TEST(CliSimulate, SimEngineReportsSimulatedTimelinesAndWritesAChromeTrace) {
  const auto trace = temp_dir() / "sim-trace.json";
  const auto r = run_cli({"simulate", "paper-4.2b-h200x8-zipf1", "--engine", "sim", "--strategy", "ep", "--json",
                          "--trace", trace.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json reports = json::parse(r.out);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0]["engine"], "sim");
  const json& ep = reports[0]["strategies"][0];
  EXPECT_EQ(ep["timeline"]["source"], "simulated");
  EXPECT_EQ(ep["timeline"]["ranks"].size(), 8u);
  EXPECT_GT(ep["layer_total_us"].get<double>(), 0.0);
  // The trace opens as Chrome Trace Event JSON: complete events for the stages, arrows for flows.
  const json t = json::parse(read_file(trace));
  bool has_dispatch = false, has_flow = false;
  for (const auto& ev : t["traceEvents"]) {
    if (ev.value("ph", "") == "X" && ev.value("name", "") == "dispatch") has_dispatch = true;
    if (ev.value("ph", "") == "s") has_flow = true;
  }
  EXPECT_TRUE(has_dispatch);
  EXPECT_TRUE(has_flow);
}

TEST(CliSimulate, UnknownEngineIsAUsageError) {
  EXPECT_EQ(run_cli({"simulate", "--engine", "magic"}).exit_code, 2);
}

TEST(CliHelp, EveryCommandExplainsItsOptionsWithDefaults) {
  for (const char* cmd : {"simulate", "sweep", "presets"}) {
    const auto r = run_cli({cmd, "--help"});
    EXPECT_EQ(r.exit_code, 0) << cmd;
    EXPECT_NE(r.out.find("--"), std::string::npos) << cmd;
  }
  const auto simulate = run_cli({"simulate", "--help"});
  EXPECT_NE(simulate.out.find("--profile"), std::string::npos);
  EXPECT_NE(simulate.out.find("h200x2-measured"), std::string::npos);
  EXPECT_NE(simulate.out.find("=both"), std::string::npos) << simulate.out;
  const auto sweep = run_cli({"sweep", "--help"});
  EXPECT_NE(sweep.out.find("=csv"), std::string::npos) << sweep.out;
}

TEST(CliHelp, GpuCommandsExplainThemselvesAndRejectBadOptions) {
  for (const char* cmd : {"execute", "validate", "imbalance", "calibrate"}) {
    const auto r = run_cli({cmd, "--help"});
    EXPECT_EQ(r.exit_code, 0) << cmd;
    EXPECT_NE(r.out.find(std::string(cmd) == "calibrate" ? "--base" : "--profile"), std::string::npos) << cmd;
  }
  for (const char* cmd : {"execute", "validate", "imbalance"})
    EXPECT_NE(run_cli({cmd, "--help"}).out.find("--json"), std::string::npos) << cmd;
  EXPECT_NE(run_cli({"calibrate", "--help"}).out.find("--collectives-only"), std::string::npos);
  // One way of making a profile at a time: a second is a usage error, not silently ignored.
  const auto both = run_cli({"calibrate", "--collectives-only", "--refit", "p.json", "--out", "q.json"});
  EXPECT_EQ(both.exit_code, 2);
  EXPECT_NE(both.err.find("excludes"), std::string::npos) << both.err;
  EXPECT_EQ(run_cli({"calibrate", "--collectives-only", "--from-bench", "b.json", "--out", "q.json"}).exit_code, 2);
  EXPECT_EQ(run_cli({"calibrate", "--refit", "p.json", "--from-bench", "b.json", "--out", "q.json"}).exit_code, 2);
  const auto imbalance = run_cli({"imbalance", "--help"});
  EXPECT_NE(imbalance.out.find("=16384"), std::string::npos) << imbalance.out;
  EXPECT_NE(imbalance.out.find("--quick"), std::string::npos) << imbalance.out;
  EXPECT_EQ(run_cli({"imbalance", "--engine", "magic"}).exit_code, 2);
  EXPECT_EQ(run_cli({"imbalance", "--tokens", "0"}).exit_code, 2);
}

TEST(CliHelp, TheSweepsStartedByMpirunSayWhyNotInsteadOfRunningTwice) {
  // A launcher's environment (two processes) without a launcher: the sweeps drive every local GPU
  // from one process, so each would run the whole sweep; they refuse (builds without the CUDA
  // executor say that instead). `hpsim execute` is the command for one process per GPU.
  for (const char* cmd : {"validate", "imbalance", "calibrate"}) {
    const auto r = run_cli({cmd}, {"OMPI_COMM_WORLD_SIZE=2"});
    if (r.err.find("no CUDA executor") != std::string::npos) {
      EXPECT_EQ(r.exit_code, 77) << cmd;
      continue;
    }
    EXPECT_EQ(r.exit_code, 2) << cmd << ": " << r.err;
    EXPECT_NE(r.err.find("start it without mpirun"), std::string::npos) << cmd << ": " << r.err;
  }
}

TEST(CliSimulate, JsonHasBothStrategiesForEachDefaultScenario) {
  const auto r = run_cli({"simulate", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto reports = json::parse(r.out);
  ASSERT_TRUE(reports.is_array());
  ASSERT_EQ(reports.size(), 2u);
  EXPECT_EQ(reports[0]["scenario"], "paper-4.2b-h200x8-uniform");
  EXPECT_EQ(reports[1]["scenario"], "paper-4.2b-h200x8-zipf1");
  for (const auto& report : reports) {
    EXPECT_EQ(report["engine"], "analytic");
    EXPECT_EQ(report["profile"], "h200x2-measured");
    ASSERT_EQ(report["strategies"].size(), 2u);
    EXPECT_EQ(report["strategies"][0]["strategy"], "ep");
    EXPECT_EQ(report["strategies"][1]["strategy"], "hp");
    for (const auto& s : report["strategies"]) {
      EXPECT_GT(s["layer_total_us"].get<double>(), 0);
      EXPECT_FALSE(s["stages"].empty());
      EXPECT_EQ(s["memory"]["ranks"].size(), 8u);
      EXPECT_EQ(s["timeline"]["source"], "analytic");
    }
  }
}

TEST(CliSimulate, HumanTableFitsOneHundredTwentyColumns) {
  const auto r = run_cli({"simulate"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream lines(r.out);
  std::string line;
  int count = 0;
  while (std::getline(lines, line)) {
    EXPECT_LE(line.size(), 120u) << line;
    ++count;
  }
  EXPECT_GT(count, 40);
  EXPECT_NE(r.out.find("HP/EP"), std::string::npos);
  EXPECT_NE(r.out.find("peak memory"), std::string::npos);
}

TEST(CliSimulate, LeavesOutAnInvalidStrategyWithANote) {
  auto s = default_scenario();
  s["model"]["num_experts"] = 764;  // HP is fine (8 divides H), EP is not (8 does not divide 764)
  const auto path = write_json("hp_only.json", s);
  const auto table = run_cli({"simulate", path});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("note: left out ep: parallel.num_ranks: must divide model.num_experts (764)"),
            std::string::npos);
  EXPECT_EQ(table.out.find("HP/EP"), std::string::npos);
  const auto js = run_cli({"simulate", "--json", path});
  ASSERT_EQ(js.exit_code, 0) << js.err;
  const auto reports = json::parse(js.out);
  ASSERT_EQ(reports[0]["strategies"].size(), 1u);
  EXPECT_EQ(reports[0]["strategies"][0]["strategy"], "hp");
  EXPECT_NE(js.err.find("note:"), std::string::npos);
}

TEST(CliSimulate, OutWritesTheFileAndPresetNamesWork) {
  const auto out = (temp_dir() / "report.json").string();
  const auto r = run_cli({"simulate", "paper-4.2b-h100x8", "--strategy", "hp", "--json", "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.out.empty());
  const auto reports = json::parse(read_file(out));
  EXPECT_EQ(reports[0]["scenario"], "paper-4.2b-h100x8");
  EXPECT_EQ(reports[0]["strategies"].size(), 1u);
}

TEST(CliDerive, WritesADerivedProfileThatSimulateTakes) {
  const auto out = (temp_dir() / "derived.json").string();
  const auto r = run_cli({"derive", "h200x2-measured", "--name", "test-h100", "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto profile = json::parse(read_file(out));
  EXPECT_EQ(profile["name"], "test-h100");
  EXPECT_EQ(profile["source"], "derived");
  EXPECT_EQ(profile["gpu"], "NVIDIA H100");
  const auto sim = run_cli({"simulate", "paper-4.2b-h100x8", "--profile", out, "--json"});
  ASSERT_EQ(sim.exit_code, 0) << sim.err;
  EXPECT_EQ(json::parse(sim.out)[0]["profile"], "test-h100");
  expect_bad_input(run_cli({"derive", "h200x2-measured", "--name", ""}), "--name: must not be empty");
  expect_bad_input(run_cli({"derive", "no-such-profile", "--name", "x"}), "base: no-such-profile");
}

TEST(CliCalibrate, RefitRedoesTheKernelFitsFromTheStoredPointsWithoutAGpu) {
  const auto out = (temp_dir() / "refit.json").string();
  const auto r = run_cli({"calibrate", "--refit", "h200x1-measured", "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("hp_expert_mlp_bwd    roofline"), std::string::npos) << r.out;
  const auto profile = json::parse(read_file(out));
  EXPECT_EQ(profile["kernels"]["hp_expert_mlp_bwd"]["form"], "roofline");
  EXPECT_FALSE(profile["kernels"]["hp_router_fwd"].contains("form"));
  EXPECT_FALSE(profile["kernels"]["hp_expert_mlp_bwd"]["points"].empty());
  expect_bad_input(run_cli({"calibrate", "--refit", "h200x1-measured"}), "--out: needed with --refit");
}

TEST(CliCalibrate, RecountCountsTheStoredPointsAgainBeforeTheRefit) {
  const auto out = (temp_dir() / "recount.json").string();
  const auto r = run_cli({"calibrate", "--refit", "h200x1-measured", "--recount", "1", "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // The shipped points were counted by the model as it counts now: nothing changes.
  EXPECT_NE(r.out.find("recounted 384 points at 1 GPUs: 0 with other counts than stored"), std::string::npos) << r.out;
  EXPECT_NE(json::parse(read_file(out))["note"].get<std::string>().find("--recount 1"), std::string::npos);
  EXPECT_EQ(run_cli({"calibrate", "--recount", "1", "--out", out}).exit_code, 2);  // needs --refit
  EXPECT_EQ(run_cli({"calibrate", "--refit", "h200x1-measured", "--recount", "0", "--out", out}).exit_code, 2);
}

TEST(CliCalibrate, FromBenchFitsTheKernelFamiliesOfAnHpsimBenchRunWithoutAGpu) {
  // hpsim-bench --hpsim_quick on nvidia-h200: four shapes per family, the expert MLPs with their segments.
  const std::string bench = std::string(HPSIM_SOURCE_DIR) + "/kernels/bench/results/h200-2026-11-29-quick-hold.json";
  const auto out = (temp_dir() / "from-bench.json").string();
  const auto r = run_cli({"calibrate", "--from-bench", bench, "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("hp_router_fwd"), std::string::npos) << r.out;
  const auto profile = json::parse(read_file(out));
  EXPECT_EQ(profile["name"], "from-bench");
  EXPECT_EQ(profile["source"], "measured");
  const auto& router = profile["kernels"]["hp_router_fwd"];
  ASSERT_GE(router["points"].size(), 3u);
  EXPECT_NE(router["points"][0]["shape"].get<std::string>().find("(hpsim-bench)"), std::string::npos);
  EXPECT_GT(router["select_gps"].get<double>() + router["tflops"].get<double>(), 0.0);
  EXPECT_NE(profile["note"].get<std::string>().find("--from-bench h200-2026-11-29-quick-hold.json"), std::string::npos);
  EXPECT_EQ(profile["gpu"], "NVIDIA H200");
  EXPECT_EQ(profile["kernels"]["hp_expert_mlp_bwd"]["form"], "roofline");
  EXPECT_EQ(profile["kernels"]["hp_expert_mlp_bwd"]["points"].size(), 4u);
  EXPECT_NE(r.err.find("kept hp_w_in from h200-datasheet"), std::string::npos) << r.err;  // one shape: no fit
  // A family the file does not measure comes from the base, untouched.
  const auto base = json::parse(read_file(std::string(HPSIM_SOURCE_DIR) + "/traces/data/profiles/h200-datasheet.json"));
  EXPECT_EQ(profile["kernels"]["optimizer_step"], base["kernels"]["optimizer_step"]);
  expect_bad_input(run_cli({"calibrate", "--from-bench", bench}), "--out: needed with --from-bench");
  const auto not_bench = write_json("not-bench.json", json{{"name", "x"}});
  expect_bad_input(run_cli({"calibrate", "--from-bench", not_bench, "--out", out}), "no \"benchmarks\" array");
}

TEST(CliSimulate, ShippedTraceScenarioRuns) {
  const auto r = run_cli({"simulate", std::string(HPSIM_SOURCE_DIR) + "/traces/data/scenarios/tiny-trace.json", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto reports = json::parse(r.out);
  ASSERT_EQ(reports[0]["strategies"].size(), 2u);
  // EP dispatch from the recorded counts: rank 0 sends 3 slots of d s = 32 bytes to rank 1.
  const auto& dispatch = reports[0]["strategies"][0]["traffic"][1];
  EXPECT_EQ(dispatch["phase"], "dispatch");
  EXPECT_DOUBLE_EQ(dispatch["bytes"][1].get<double>(), 3 * 32.0);
}

TEST(CliPresets, ShowPrintsALoadableScenarioAndUnknownNamesFail) {
  const auto s = default_scenario();
  EXPECT_EQ(s["name"], "paper-4.2b-h200x8-uniform");
  const auto path = write_json("template.json", s);
  EXPECT_EQ(run_cli({"simulate", path}).exit_code, 0);
  expect_bad_input(run_cli({"presets", "--show", "nope"}), "--show: unknown scenario preset \"nope\"");
  const auto list = run_cli({"presets", "--json"});
  ASSERT_EQ(list.exit_code, 0);
  EXPECT_FALSE(json::parse(list.out)["scenarios"].empty());
}

TEST(CliSweep, CsvHasARowPerPointAndStrategy) {
  const auto r = run_cli({"sweep", "--k", "1,2,4", "--ranks", "4,8", "--skew", "0,1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream lines(r.out);
  std::string header;
  std::getline(lines, header);
  EXPECT_EQ(header.rfind("scenario,strategy,top_k,num_experts,num_ranks,zipf_skew,tokens_per_rank,valid,error,", 0), 0u);
  int rows = 0;
  std::string line;
  while (std::getline(lines, line)) ++rows;
  EXPECT_EQ(rows, 3 * 2 * 2 * 2);
}

TEST(CliSweep, JsonRowsFlagInvalidPointsAndGrowTheCluster) {
  const auto r = run_cli({"sweep", "--ranks", "8,16", "--experts", "768,764", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto rows = json::parse(r.out);
  ASSERT_EQ(rows.size(), 8u);
  for (const auto& row : rows) {
    const bool hp_needs = row["strategy"] == "hp" && row["num_ranks"] == 16;           // 16 does not divide H = 8
    const bool ep_needs = row["strategy"] == "ep" && row["num_experts"] == 764;        // W does not divide 764
    EXPECT_EQ(row["valid"].get<bool>(), !(hp_needs || ep_needs)) << row.dump();
    if (row["valid"].get<bool>()) {
      EXPECT_GT(row["layer_total_us"].get<double>(), 0);
    } else {
      EXPECT_NE(row["error"].get<std::string>().find("parallel.num_ranks"), std::string::npos);
      EXPECT_TRUE(row["layer_total_us"].is_null());
    }
  }
}

TEST(CliSweep, BadBaseScenarioIsNamed) {
  expect_bad_input(run_cli({"sweep", "--preset", "nope"}), "--preset: unknown scenario preset");
  const auto path = write_temp("sweep_bad.json", "[1, 2]").string();
  expect_bad_input(run_cli({"sweep", path}), path + ": (document): expected an object");
}

}  // namespace
}  // namespace hpsim::testing
