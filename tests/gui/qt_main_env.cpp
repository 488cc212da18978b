// Registers the QApplication environment; no Qt call happens until the tests run.
#include "qt_env.h"

namespace {
[[maybe_unused]] const auto* const kEnvironment =
    ::testing::AddGlobalTestEnvironment(new hpsim::gui::testing::QtEnvironment);
}  // namespace
