// The trainer's record of its curves, drawn as a PNG chart with PLplot (where the build
// found it) and written as CSV for plotting elsewhere.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace examples {

struct EpochRecord {
  int epoch = 0;
  double train_loss = 0.0;         // mean loss of the epoch's training batches
  double train_accuracy = 0.0;     // percent of the epoch's training images classified right
  double test_loss = 0.0;          // mean cross-entropy over the test images
  double test_accuracy = 0.0;      // percent
  double learning_rate = 0.0;      // the epoch's learning rate
  double seconds = 0.0;            // the epoch's training pass, evaluation not included
  double images_per_second = 0.0;  // training images / seconds
};

struct TrainingHistory {
  std::vector<EpochRecord> epochs;
  // The running training loss (mean of the last batches) at fractional epochs.
  std::vector<double> batch_epoch, batch_loss;
};

// The CSV's first line: epoch,train_loss,train_accuracy,test_loss,test_accuracy,
// learning_rate,seconds,images_per_second (accuracies in percent, docs/training.md).
extern const char* const kTrainingCsvHeader;
// The header and one line per epoch. Throws std::runtime_error naming the file when it
// cannot be written.
void write_training_csv(const std::filesystem::path& path, const TrainingHistory& history);
// Where the CSV goes beside a chart: its path with the extension .csv.
std::filesystem::path csv_beside(const std::filesystem::path& chart);

// A linear axis: [min, max] with major ticks every `tick`.
struct AxisRange {
  double min = 0.0, max = 1.0, tick = 1.0;
};

// Epochs 0..epochs with integer ticks, at most about ten of them.
AxisRange epoch_axis(int epochs);
// Percent values with a margin of at least one point each side, rounded to the tick, and
// clamped to [0, 100].
AxisRange accuracy_axis(const std::vector<double>& percents);
// From 0 to a little above the largest loss.
AxisRange loss_axis(const std::vector<double>& losses);

// Whether this build draws charts (it found PLplot at configure time).
bool chart_supported();
// Two panels side by side: loss per epoch (training and test, with the running training
// loss), and accuracy per epoch (training and test). Throws std::runtime_error when the
// file cannot be written, PLplot lacks its PNG driver (plplot-driver-cairo), or the build
// has no PLplot.
void write_training_chart(const std::filesystem::path& path, const TrainingHistory& history,
                          const std::string& title);

}  // namespace examples
