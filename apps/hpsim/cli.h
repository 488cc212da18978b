#pragma once
// Shared plumbing of the hpsim commands: error printing, loading scenarios and profiles, output.

#include <optional>
#include <string>
#include <vector>

#include "hpsim/core/error.h"
#include "hpsim/core/profile.h"
#include "hpsim/core/scenario.h"

namespace hpsim::cli {

// Exit codes (CONVENTIONS.md).
inline constexpr int kExitOk = 0;
inline constexpr int kExitBadInput = 1;
inline constexpr int kExitUsage = 2;

// "error: <line>" on stderr for every line of the message; returns kExitBadInput.
int print_error(const core::Error& error);
// "note: <text>" on stderr.
void print_note(const std::string& text);

// A scenario from a file (validated), or a shipped scenario preset when no file has that name.
// A relative workload.trace_file is read relative to the scenario file's folder.
core::Expected<core::Scenario> load_scenario_arg(const std::string& file_or_preset);

// --profile: a file or a shipped profile name; empty = the default profile.
core::Expected<core::Profile> load_profile_arg(const std::string& file_or_name);

// --strategy both|ep|hp.
std::vector<core::Strategy> strategies_of(const std::string& choice);

// Writes `text` to `out_file`, or to stdout when it is empty.
core::Status emit(const std::string& out_file, const std::string& text);

}  // namespace hpsim::cli
