#include "training_chart.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <stdexcept>

#if CNNGRAPH_EXAMPLES_HAVE_PLPLOT
#include <plstream.h>
#endif

namespace examples {

namespace {

// 1, 2 or 5 times a power of ten, the smallest not below `raw`.
double nice_step(double raw) {
  if (!(raw > 0.0)) return 1.0;
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  const double m = raw / power;
  return (m <= 1.0 ? 1.0 : m <= 2.0 ? 2.0 : m <= 5.0 ? 5.0 : 10.0) * power;
}

std::vector<double> finite(const std::vector<double>& values) {
  std::vector<double> out;
  for (double v : values)
    if (std::isfinite(v)) out.push_back(v);
  return out;
}

}  // namespace

const char* const kTrainingCsvHeader =
    "epoch,train_loss,train_accuracy,test_loss,test_accuracy,learning_rate,seconds,"
    "images_per_second";

void write_training_csv(const std::filesystem::path& path, const TrainingHistory& history) {
  std::ofstream out(path);
  if (!out) throw std::runtime_error("cannot write the curves " + path.string());
  out << kTrainingCsvHeader << "\n";
  for (const EpochRecord& e : history.epochs) {
    char line[256];
    std::snprintf(line, sizeof line, "%d,%.6g,%.4f,%.6g,%.4f,%.6g,%.3f,%.1f\n", e.epoch,
                  e.train_loss, e.train_accuracy, e.test_loss, e.test_accuracy, e.learning_rate,
                  e.seconds, e.images_per_second);
    out << line;
  }
  out.close();
  if (!out) throw std::runtime_error("cannot write the curves " + path.string());
}

std::filesystem::path csv_beside(const std::filesystem::path& chart) {
  return std::filesystem::path(chart).replace_extension(".csv");
}

AxisRange epoch_axis(int epochs) {
  const int n = std::max(epochs, 1);
  AxisRange axis;
  axis.tick = std::max(1.0, nice_step(n / 10.0));
  // A quarter tick past the last epoch keeps its points off the frame.
  axis.max = std::ceil(n / axis.tick) * axis.tick + 0.25 * axis.tick;
  return axis;
}

AxisRange accuracy_axis(const std::vector<double>& percents) {
  const auto values = finite(percents);
  if (values.empty()) return {0.0, 100.0, 10.0};
  const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
  const double pad = std::max(1.0, 0.1 * (*hi - *lo));
  AxisRange axis;
  axis.tick = nice_step((*hi - *lo + 2.0 * pad) / 6.0);
  axis.min = std::max(0.0, std::floor((*lo - pad) / axis.tick) * axis.tick);
  axis.max = std::min(100.0, std::ceil((*hi + pad) / axis.tick) * axis.tick);
  if (axis.max <= axis.min) axis.min = std::max(0.0, axis.max - 2.0 * axis.tick);
  return axis;
}

AxisRange loss_axis(const std::vector<double>& losses) {
  const auto values = finite(losses);
  const double top = values.empty() ? 0.0 : *std::max_element(values.begin(), values.end());
  if (!(top > 0.0)) return {0.0, 1.0, 0.2};
  AxisRange axis;
  axis.tick = nice_step(top * 1.1 / 5.0);
  axis.max = std::ceil(top * 1.1 / axis.tick) * axis.tick;
  return axis;
}

#if CNNGRAPH_EXAMPLES_HAVE_PLPLOT

bool chart_supported() { return true; }

namespace {

// Colour map 0: what each index means on this chart.
enum Colour : PLINT { paper, ink, grid_grey, train_blue, test_orange, running_blue, colours };

struct Series {
  std::vector<PLFLT> x, y;
  Colour colour;
  const char* label;
  bool points;  // a marker at each value (the per-epoch series)
};

bool has_pngcairo() {
  int count = 256;
  std::vector<const char*> menu(count), names(count);
  const char** menu_data = menu.data();
  const char** names_data = names.data();
  plgDevs(&menu_data, &names_data, &count);
  for (int i = 0; i < count; ++i)
    if (std::string(names_data[i]) == "pngcairo") return true;
  return false;
}

void draw_panel(plstream& pls, PLFLT left, PLFLT right, const AxisRange& x, const AxisRange& y,
                const char* y_label, const char* title, const std::vector<Series>& series,
                PLINT legend_position) {
  pls.vpor(left, right, 0.13, 0.84);
  pls.wind(x.min, x.max, y.min, y.max);
  pls.col0(grid_grey);
  pls.width(1.0);
  pls.box("g", x.tick, 1, "g", y.tick, 1);
  pls.col0(ink);
  pls.box("bcnst", x.tick, 1, "bcnstv", y.tick, 0);
  pls.lab("epoch", y_label, title);

  std::vector<PLINT> options, colours_of, styles, symbol_numbers;
  std::vector<PLFLT> widths, symbol_scales;
  std::vector<const char*> texts, symbols;
  for (const Series& s : series) {
    if (s.x.empty()) continue;
    pls.col0(s.colour);
    pls.width(s.points ? 2.5 : 1.5);
    if (s.x.size() > 1) pls.line(static_cast<PLINT>(s.x.size()), s.x.data(), s.y.data());
    if (s.points) {
      pls.schr(0.0, 0.65);
      pls.string(static_cast<PLINT>(s.x.size()), s.x.data(), s.y.data(), "●");
      pls.schr(0.0, 0.9);
    }
    options.push_back(PL_LEGEND_LINE | (s.points ? PL_LEGEND_SYMBOL : 0));
    colours_of.push_back(s.colour);
    styles.push_back(1);
    widths.push_back(s.points ? 2.5 : 1.5);
    symbol_numbers.push_back(1);
    symbol_scales.push_back(0.7);
    texts.push_back(s.label);
    symbols.push_back("●");
  }
  pls.width(1.0);
  if (texts.empty()) return;
  std::vector<PLINT> text_colours(texts.size(), ink);
  PLFLT legend_width = 0.0, legend_height = 0.0;
  pls.legend(&legend_width, &legend_height, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX,
             legend_position | PL_POSITION_INSIDE, 0.03, 0.04, 0.07, paper, ink, 1, 0, 0,
             static_cast<PLINT>(texts.size()), options.data(), 0.8, 0.85, 1.8, 0.0,
             text_colours.data(), texts.data(), nullptr, nullptr, nullptr, nullptr,
             colours_of.data(), styles.data(), widths.data(), colours_of.data(),
             symbol_scales.data(), symbol_numbers.data(), symbols.data());
}

}  // namespace

void write_training_chart(const std::filesystem::path& path, const TrainingHistory& history,
                          const std::string& title) {
  // PLplot ends the program on a file it cannot open; find out first.
  if (!std::ofstream(path, std::ios::binary))
    throw std::runtime_error("cannot write the chart " + path.string());
  if (!has_pngcairo()) {
    throw std::runtime_error("PLplot has no pngcairo device for the chart " + path.string() +
                             ": install Debian's plplot-driver-cairo");
  }
  Series train_loss{{}, {}, train_blue, "training", true};
  Series test_loss{{}, {}, test_orange, "test", true};
  Series running_loss{{}, {}, running_blue, "training, running", false};
  Series train_accuracy{{}, {}, train_blue, "training", true};
  Series test_accuracy{{}, {}, test_orange, "test", true};
  for (const EpochRecord& e : history.epochs) {
    train_loss.x.push_back(e.epoch), train_loss.y.push_back(e.train_loss);
    test_loss.x.push_back(e.epoch), test_loss.y.push_back(e.test_loss);
    train_accuracy.x.push_back(e.epoch), train_accuracy.y.push_back(e.train_accuracy);
    test_accuracy.x.push_back(e.epoch), test_accuracy.y.push_back(e.test_accuracy);
  }
  running_loss.x.assign(history.batch_epoch.begin(), history.batch_epoch.end());
  running_loss.y.assign(history.batch_loss.begin(), history.batch_loss.end());
  std::vector<double> losses = running_loss.y, percents = train_accuracy.y;
  losses.insert(losses.end(), train_loss.y.begin(), train_loss.y.end());
  losses.insert(losses.end(), test_loss.y.begin(), test_loss.y.end());
  percents.insert(percents.end(), test_accuracy.y.begin(), test_accuracy.y.end());
  const int epochs = history.epochs.empty() ? 1 : history.epochs.back().epoch;
  const AxisRange x = epoch_axis(epochs);

  plstream pls;
  pls.sdev("pngcairo");
  pls.sfnam(path.c_str());
  pls.spage(0.0, 0.0, 1400, 560, 0, 0);
  PLINT red[colours] = {255, 0, 205, 31, 230, 120};
  PLINT green[colours] = {255, 0, 205, 100, 110, 165};
  PLINT blue[colours] = {255, 0, 205, 180, 20, 220};
  pls.scmap0(red, green, blue, colours);
  pls.init();
  pls.adv(0);
  pls.schr(0.0, 1.1);
  pls.vpor(0.0, 1.0, 0.0, 1.0);
  pls.wind(0.0, 1.0, 0.0, 1.0);
  pls.col0(ink);
  pls.ptex(0.5, 0.955, 1.0, 0.0, 0.5, title.c_str());
  pls.schr(0.0, 0.9);
  draw_panel(pls, 0.075, 0.475, x, loss_axis(losses), "loss (cross-entropy)", "Loss per epoch",
             {running_loss, train_loss, test_loss}, PL_POSITION_TOP | PL_POSITION_RIGHT);
  draw_panel(pls, 0.575, 0.975, x, accuracy_axis(percents), "accuracy (%)", "Accuracy per epoch",
             {train_accuracy, test_accuracy}, PL_POSITION_BOTTOM | PL_POSITION_RIGHT);
}

#else

bool chart_supported() { return false; }

void write_training_chart(const std::filesystem::path& path, const TrainingHistory&,
                          const std::string&) {
  throw std::runtime_error("no chart " + path.string() +
                           ": this build has no PLplot (install Debian's libplplot-dev and "
                           "plplot-driver-cairo, then configure again)");
}

#endif

}  // namespace examples
