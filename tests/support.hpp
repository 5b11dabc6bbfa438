// Test helpers: random data, a single-op graph runner for any device, comparisons.
#pragma once

#include <gtest/gtest.h>

#include <cnngraph/cnngraph.hpp>
#include <random>
#include <string>
#include <vector>

namespace cnngraph::testing {

std::vector<float> random_floats(std::size_t count, std::mt19937& rng, float lo = -1.0f,
                                 float hi = 1.0f);
Image random_image(ImageShape shape, std::mt19937& rng);

std::shared_ptr<ArrayDataSource> random_source(const ConvolutionDescriptor& d, std::mt19937& rng,
                                               bool with_bias = true,
                                               const std::string& label = "weights");

// Builds a graph for `result` on `device` and runs it on `sources`.
Image run_on(Device device, const std::shared_ptr<ImageNode>& result,
             const std::vector<Image>& sources, GraphOptions options = {});

// Largest |a - b| / (1 + |b|) over all elements; shapes must match.
double max_relative_error(const Image& a, const Image& b);

// Runs `result` on the reference and the oneDNN backends and checks they agree to `tolerance`.
void expect_backends_agree(const std::shared_ptr<ImageNode>& result,
                           const std::vector<Image>& sources, double tolerance,
                           GraphOptions fast_options = {});

}  // namespace cnngraph::testing
