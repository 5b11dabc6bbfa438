// Test helpers: random data, a single-op graph runner for any device, comparisons.
#pragma once

#include <gtest/gtest.h>

#include <cnngraph/cnngraph.hpp>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

namespace cnngraph::testing {

std::vector<float> random_floats(std::size_t count, std::mt19937& rng, float lo = -1.0f,
                                 float hi = 1.0f);
Image random_image(ImageShape shape, std::mt19937& rng);
// Integer values in [-3, 3], zeros included (the binary convolutions' sign rules at 0).
Image integer_image(ImageShape shape, std::mt19937& rng);

std::shared_ptr<ArrayDataSource> random_source(const ConvolutionDescriptor& d, std::mt19937& rng,
                                               bool with_bias = true,
                                               const std::string& label = "weights");

// Builds a graph for `result` on `device` and runs it on `sources`.
Image run_on(Device device, const std::shared_ptr<ImageNode>& result,
             const std::vector<Image>& sources, GraphOptions options = {});

// Largest |a - b| / (1 + |b|) over all elements; shapes must match.
double max_relative_error(const Image& a, const Image& b);
// The same for value lists: max |a - b| / (1 + |b|); NaN counts as a failure.
double max_relative_error(const std::vector<float>& a, const std::vector<float>& b);

// Runs `result` on the reference and the oneDNN backends and checks they agree to `tolerance`.
void expect_backends_agree(const std::shared_ptr<ImageNode>& result,
                           const std::vector<Image>& sources, double tolerance,
                           GraphOptions fast_options = {});

// A padding policy in the problem-string notation (docs/testing.md): pad=SIZE[/ALIGN[/ODD]].
std::string padding_token(const PaddingPolicy& policy);

// A convolution problem for randomized tests.
struct ConvCase {
  int batch, height, width, in_channels, out_channels, kernel_w, kernel_h, stride, dilation, groups;
  PaddingPolicy padding;
  // Its problem string (docs/testing.md), e.g. "conv n2 c5 h9 w7 k6 r3x3 s2 d1 g1 pad=same".
  std::string name() const;
  // The case's descriptor: kernel, channels, stride, dilation and groups.
  ConvolutionDescriptor descriptor() const {
    ConvolutionDescriptor d(kernel_w, kernel_h, in_channels, out_channels);
    d.stride_x = d.stride_y = stride;
    d.dilation_x = d.dilation_y = dilation;
    d.groups = groups;
    return d;
  }
};

// Random convolution problems: batch 1-3, sizes 5-13, kernels 1-5, strides 1-3, dilation
// 1-2, dense / grouped / depthwise, six padding policies.
std::vector<ConvCase> random_convolution_cases(int count, unsigned seed);

// An empty folder for the running test under $CNNGRAPH_TEST_TMP (or /tmp), named by
// `group` and the test: ctest runs tests in parallel, each in its own process.
std::filesystem::path fresh_test_folder(const std::string& group);
// A file's bytes (empty if it cannot be read).
std::string file_contents(const std::filesystem::path& path);

}  // namespace cnngraph::testing
