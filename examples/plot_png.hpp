// A small line plot written as PNG with libpng: the trainer's loss and accuracy curves.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace examples {

struct Curve {
  std::vector<double> x, y;
  unsigned char red, green, blue;
};

// One panel per entry of `panels`, stacked vertically, each scaled to its own data with a
// light grid (ten divisions). Throws std::runtime_error when the file cannot be written.
void write_plot_png(const std::filesystem::path& path,
                    const std::vector<std::vector<Curve>>& panels, int width = 800,
                    int panel_height = 300);

}  // namespace examples
