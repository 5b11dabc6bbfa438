#include "plot_png.hpp"

#include <png.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace examples {

namespace {

struct Canvas {
  int width, height;
  std::vector<unsigned char> rgb;
  Canvas(int w, int h) : width(w), height(h), rgb(static_cast<std::size_t>(w) * h * 3, 255) {}
  void set(int x, int y, unsigned char r, unsigned char g, unsigned char b) {
    if (x < 0 || y < 0 || x >= width || y >= height) return;
    unsigned char* p = &rgb[(static_cast<std::size_t>(y) * width + x) * 3];
    p[0] = r, p[1] = g, p[2] = b;
  }
  // A line two pixels thick (Bresenham, with a second pass one pixel down).
  void line(int x0, int y0, int x1, int y1, unsigned char r, unsigned char g, unsigned char b) {
    const int dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0);
    const int sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    int error = dx + dy;
    while (true) {
      set(x0, y0, r, g, b);
      set(x0, y0 + 1, r, g, b);
      if (x0 == x1 && y0 == y1) break;
      const int e2 = 2 * error;
      if (e2 >= dy) error += dy, x0 += sx;
      if (e2 <= dx) error += dx, y0 += sy;
    }
  }
};

void draw_panel(Canvas& canvas, const std::vector<Curve>& curves, int top, int height) {
  const int margin = 20;
  const int left = margin, right = canvas.width - margin;
  const int upper = top + margin, lower = top + height - margin;
  double x_min = INFINITY, x_max = -INFINITY, y_min = INFINITY, y_max = -INFINITY;
  for (const Curve& c : curves) {
    for (double v : c.x) x_min = std::min(x_min, v), x_max = std::max(x_max, v);
    for (double v : c.y) y_min = std::min(y_min, v), y_max = std::max(y_max, v);
  }
  if (!(x_max > x_min)) x_max = x_min + 1;
  if (!(y_max > y_min)) y_max = y_min + 1;
  for (int i = 0; i <= 10; ++i) {
    const int x = left + (right - left) * i / 10, y = upper + (lower - upper) * i / 10;
    const unsigned char shade = i == 0 || i == 10 ? 0 : 225;
    for (int yy = upper; yy <= lower; ++yy) canvas.set(x, yy, shade, shade, shade);
    for (int xx = left; xx <= right; ++xx) canvas.set(xx, y, shade, shade, shade);
  }
  for (const Curve& c : curves) {
    for (std::size_t i = 1; i < c.x.size(); ++i) {
      const auto px = [&](double v) {
        return left + static_cast<int>((v - x_min) / (x_max - x_min) * (right - left));
      };
      const auto py = [&](double v) {
        return lower - static_cast<int>((v - y_min) / (y_max - y_min) * (lower - upper));
      };
      canvas.line(px(c.x[i - 1]), py(c.y[i - 1]), px(c.x[i]), py(c.y[i]), c.red, c.green, c.blue);
    }
  }
}

}  // namespace

void write_plot_png(const std::filesystem::path& path,
                    const std::vector<std::vector<Curve>>& panels, int width, int panel_height) {
  Canvas canvas(width, panel_height * static_cast<int>(panels.size()));
  for (std::size_t p = 0; p < panels.size(); ++p)
    draw_panel(canvas, panels[p], static_cast<int>(p) * panel_height, panel_height);
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  image.width = canvas.width;
  image.height = canvas.height;
  image.format = PNG_FORMAT_RGB;
  if (!png_image_write_to_file(&image, path.c_str(), 0, canvas.rgb.data(), 0, nullptr)) {
    throw std::runtime_error("cannot write " + path.string() + ": " + image.message);
  }
}

}  // namespace examples
