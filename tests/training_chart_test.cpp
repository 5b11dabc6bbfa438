// The Fashion-MNIST trainer's curves (examples/training_chart.hpp): the CSV, the chart's
// axis ranges, and the PNG that PLplot writes where the build has it.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <sstream>
#include <vector>

#include "support.hpp"
#include "training_chart.hpp"

namespace {

using cnngraph::testing::file_contents;
using cnngraph::testing::fresh_test_folder;

examples::TrainingHistory three_epochs() {
  examples::TrainingHistory h;
  const double accuracy[] = {88.0, 90.5, 92.0};
  for (int e = 1; e <= 3; ++e) {
    examples::EpochRecord r;
    r.epoch = e;
    r.train_loss = 0.5 / e;
    r.train_accuracy = accuracy[e - 1] - 1.0;
    r.test_loss = 0.45 / e;
    r.test_accuracy = accuracy[e - 1];
    r.learning_rate = 0.001 * std::pow(0.7, e - 1);
    r.seconds = 30.0 + e;
    h.epochs.push_back(r);
    for (int part = 1; part <= 4; ++part) {
      h.batch_epoch.push_back(e - 1 + part / 4.0);
      h.batch_loss.push_back(0.6 / (e - 1 + part / 4.0 + 0.5));
    }
  }
  return h;
}

std::uint32_t big_endian(const std::string& bytes, std::size_t at) {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i) v = v << 8 | static_cast<unsigned char>(bytes[at + i]);
  return v;
}

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::stringstream in(text);
  for (std::string part; std::getline(in, part, separator);) parts.push_back(part);
  return parts;
}

TEST(TrainingCsv, HasTheDocumentedColumnsAndOneRowPerEpoch) {
  const auto path = fresh_test_folder("training_chart") / "curves.csv";
  auto history = three_epochs();
  history.epochs[2].images_per_second = 1234.5;
  examples::write_training_csv(path, history);
  const auto lines = split(file_contents(path), '\n');
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0],
            "epoch,train_loss,train_accuracy,test_loss,test_accuracy,learning_rate,seconds,"
            "images_per_second");
  for (int e = 1; e <= 3; ++e) {
    const auto fields = split(lines[e], ',');
    ASSERT_EQ(fields.size(), 8u) << lines[e];
    EXPECT_EQ(fields[0], std::to_string(e));
    const auto& r = history.epochs[e - 1];
    EXPECT_NEAR(std::stod(fields[1]), r.train_loss, 1e-6);
    EXPECT_NEAR(std::stod(fields[2]), r.train_accuracy, 1e-4);
    EXPECT_NEAR(std::stod(fields[3]), r.test_loss, 1e-6);
    EXPECT_NEAR(std::stod(fields[4]), r.test_accuracy, 1e-4);
    EXPECT_NEAR(std::stod(fields[5]), r.learning_rate, 1e-9);
    EXPECT_NEAR(std::stod(fields[6]), r.seconds, 1e-3);
  }
  EXPECT_EQ(split(lines[3], ',')[7], "1234.5");
}

TEST(TrainingCsv, GoesBesideTheChartWithTheExtensionCsv) {
  EXPECT_EQ(examples::csv_beside("out/run.png"), std::filesystem::path("out/run.csv"));
  EXPECT_EQ(examples::csv_beside("chart"), std::filesystem::path("chart.csv"));
}

TEST(TrainingCsv, UnwritablePathThrowsNamingTheFile) {
  const auto path = fresh_test_folder("training_chart") / "missing" / "curves.csv";
  try {
    examples::write_training_csv(path, three_epochs());
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
  }
}

TEST(TrainingChart, AccuracyAxisHasAMarginAndIsNotStretchedToTheData) {
  const auto axis = examples::accuracy_axis({88.0, 90.5, 92.0});
  EXPECT_LE(axis.min, 87.0);
  EXPECT_GE(axis.max, 93.0);
  EXPECT_LE(axis.max - axis.min, 10.0);
  EXPECT_GT(axis.tick, 0.0);
  EXPECT_DOUBLE_EQ(std::remainder(axis.min, axis.tick), 0.0);  // starts on a tick
}

TEST(TrainingChart, AccuracyAxisStaysWithinZeroToHundredPercent) {
  const auto high = examples::accuracy_axis({99.5, 100.0});
  EXPECT_LE(high.max, 100.0);
  EXPECT_LT(high.min, 99.5);
  const auto low = examples::accuracy_axis({0.0, 3.0});
  EXPECT_GE(low.min, 0.0);
  const auto one = examples::accuracy_axis({91.5});
  EXPECT_LT(one.min, 91.5);
  EXPECT_GT(one.max, 91.5);
  const auto none = examples::accuracy_axis({});
  EXPECT_EQ(none.min, 0.0);
  EXPECT_EQ(none.max, 100.0);
}

TEST(TrainingChart, EpochAxisHasIntegerTicksAndRoomAfterTheLastEpoch) {
  const auto seven = examples::epoch_axis(7);
  EXPECT_EQ(seven.min, 0.0);
  EXPECT_EQ(seven.tick, 1.0);
  EXPECT_GT(seven.max, 7.0);
  EXPECT_LT(seven.max, 8.0);
  const auto many = examples::epoch_axis(60);
  EXPECT_EQ(many.tick, std::round(many.tick));
  EXPECT_LE(60.0 / many.tick, 10.0);
  EXPECT_GT(many.max, 60.0);
}

TEST(TrainingChart, LossAxisStartsAtZeroAboveTheLargestLoss) {
  const auto axis = examples::loss_axis({2.3, 0.4, NAN, 0.25});
  EXPECT_EQ(axis.min, 0.0);
  EXPECT_GT(axis.max, 2.3);
  EXPECT_LE(axis.max, 3.0);
}

TEST(TrainingChart, WritesAValidPngWherePlplotIsBuilt) {
  const auto path = fresh_test_folder("training_chart") / "chart.png";
  if (!examples::chart_supported()) {
    EXPECT_THROW(examples::write_training_chart(path, three_epochs(), "title"), std::runtime_error);
    GTEST_SKIP() << "this build has no PLplot (libplplot-dev): no chart to check";
  }
  examples::write_training_chart(path, three_epochs(), "Fashion-MNIST, three epochs");
  const std::string png = file_contents(path);
  ASSERT_GT(png.size(), 1000u);
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(big_endian(png, 8), 13u);  // the IHDR chunk first
  EXPECT_EQ(png.substr(12, 4), "IHDR");
  EXPECT_EQ(big_endian(png, 16), 1400u);
  EXPECT_EQ(big_endian(png, 20), 560u);
  EXPECT_EQ(png.substr(png.size() - 8, 4), "IEND");
}

TEST(TrainingChart, UnwritableChartPathThrowsNamingTheFile) {
  const auto path = fresh_test_folder("training_chart") / "missing" / "chart.png";
  try {
    examples::write_training_chart(path, three_epochs(), "title");
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
  }
}

}  // namespace
