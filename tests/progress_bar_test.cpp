// The examples' progress bar (examples/progress_bar.hpp): its line formats, the estimate of
// the time left, and how often it prints when the output is not a terminal.
#include "progress_bar.hpp"

#include <gtest/gtest.h>

#include <sstream>

namespace {

TEST(ProgressBar, FormatsDurationsAsMinutesAndSecondsOrHours) {
  EXPECT_EQ(examples::format_duration(0.0), "0:00");
  EXPECT_EQ(examples::format_duration(65.4), "1:05");
  EXPECT_EQ(examples::format_duration(3725.0), "1:02:05");
  EXPECT_EQ(examples::format_duration(-1.0), "?");
  EXPECT_EQ(examples::format_duration(NAN), "?");
}

TEST(ProgressBar, EstimatesTheTimeLeftFromTheRateSoFar) {
  EXPECT_DOUBLE_EQ(examples::estimate_seconds_left(300, 900, 10.0), 20.0);
  EXPECT_DOUBLE_EQ(examples::estimate_seconds_left(900, 900, 30.0), 0.0);
  EXPECT_LT(examples::estimate_seconds_left(0, 900, 1.0), 0.0);  // unknown
}

TEST(ProgressBar, PlainLineShowsCountPercentSuffixElapsedAndTimeLeft) {
  EXPECT_EQ(examples::format_progress("epoch 1", 300, 900, 10.0, "loss 0.5000", false),
            "epoch 1: 300/900 (33%) loss 0.5000  elapsed 0:10, left 0:20");
  EXPECT_EQ(examples::format_progress("epoch 2", 0, 900, 0.0, "", false),
            "epoch 2: 0/900 (0%)  elapsed 0:00, left ?");
}

TEST(ProgressBar, TerminalLineHasABarAndTheSameTimes) {
  EXPECT_EQ(examples::format_progress("epoch 1", 450, 900, 75.0, "loss 0.5", true),
            "epoch 1 [###############...............] 450/900 loss 0.5  elapsed 1:15, "
            "left 1:15");
}

TEST(ProgressBar, WithoutATerminalPrintsAPlainLineEveryIntervalAndAtTheEnd) {
  double now = 100.0;
  std::ostringstream out;
  examples::ProgressBar bar(
      "epoch 1", 12, out, false, [&] { return now; }, 5.0);
  for (long done = 1; done <= 12; ++done) {
    now = 100.0 + done;  // one item a second
    bar.update(done, "x");
  }
  EXPECT_EQ(out.str(),
            "epoch 1: 5/12 (41%) x  elapsed 0:05, left 0:07\n"
            "epoch 1: 10/12 (83%) x  elapsed 0:10, left 0:02\n"
            "epoch 1: 12/12 (100%) x  elapsed 0:12, left 0:00\n");
  EXPECT_EQ(out.str().find('\r'), std::string::npos);
}

TEST(ProgressBar, OnATerminalRedrawsOneLineAndEndsItWhenDone) {
  double now = 0.0;
  std::ostringstream out;
  examples::ProgressBar bar("run", 2, out, true, [&] { return now; });
  now = 1.0;
  bar.update(1, "");
  now = 2.0;
  bar.update(2, "");
  EXPECT_EQ(out.str(),
            "\rrun [###############...............] 1/2  elapsed 0:01, left 0:01"
            "\rrun [##############################] 2/2  elapsed 0:02, left 0:00\n");
}

}  // namespace
