#pragma once
// Runs the hpsim binary with arguments and captures exit code, stdout and stderr.

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace hpsim::testing {

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A fresh folder per test binary run.
inline std::filesystem::path temp_dir() {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("hpsim_cli_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

inline std::filesystem::path write_temp(const std::string& name, const std::string& text) {
  const auto path = temp_dir() / name;
  std::ofstream(path) << text;
  return path;
}

inline std::string quote(const std::string& arg) {
  std::string out = "'";
  for (char c : arg) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

// `environment`: VAR=value words set for this run only (through env(1)).
inline CliResult run_cli(const std::vector<std::string>& args, const std::vector<std::string>& environment = {}) {
  static int counter = 0;
  const auto out_path = temp_dir() / ("out" + std::to_string(counter) + ".txt");
  const auto err_path = temp_dir() / ("err" + std::to_string(counter++) + ".txt");
  std::string cmd;
  if (!environment.empty()) {
    cmd = "env";
    for (const auto& e : environment) cmd.append(" ").append(quote(e));
    cmd.append(" ");
  }
  cmd += quote(HPSIM_CLI);
  for (const auto& a : args) cmd.append(" ").append(quote(a));
  cmd.append(" > ").append(quote(out_path.string())).append(" 2> ").append(quote(err_path.string()));
  const int status = std::system(cmd.c_str());
  CliResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = read_file(out_path);
  r.err = read_file(err_path);
  return r;
}

}  // namespace hpsim::testing
