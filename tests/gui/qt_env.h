#pragma once
// A QApplication for the GUI tests, created when the tests run (never during test discovery),
// on the offscreen platform, with settings kept away from the user's (QStandardPaths test mode).

#include <gtest/gtest.h>

#include <QApplication>
#include <QStandardPaths>

#include "hpsim/core/scenario.h"

namespace hpsim::gui::testing {

class QtEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    if (qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM")) qputenv("QT_QPA_PLATFORM", "offscreen");
    QStandardPaths::setTestModeEnabled(true);
    QApplication::setOrganizationName(QStringLiteral("hpsim-tests"));
    QApplication::setApplicationName(QStringLiteral("hpsim-gui-tests"));
    static int argc = 1;
    static char name[] = "hpsim_gui_tests";
    static char* argv[] = {name, nullptr};
    app_ = new QApplication(argc, argv);
  }
  void TearDown() override {
    delete app_;
    app_ = nullptr;
  }

 private:
  QApplication* app_ = nullptr;
};

// The shipped H200 datasheet profile, by path (independent of the data-folder search).
inline std::string shippedProfilePath() {
  return std::string(HPSIM_SOURCE_DIR) + "/traces/data/profiles/h200-datasheet.json";
}

}  // namespace hpsim::gui::testing
