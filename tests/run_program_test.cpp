// What every executor shares (src/graph/run_program.cpp): the checks of a run's labels and
// the label weights of ones that stand in where a LossLabels has none, on every backend this
// build and machine have.
#include <gtest/gtest.h>

#include <random>

#include "cnngraph/cnngraph.hpp"
#include "support.hpp"

using namespace cnngraph;
using cnngraph::testing::random_image;

namespace {

std::vector<Device> devices() {
  std::vector<Device> found{Device::cpu_reference(), Device::cpu()};
  if (Device::cuda_device_count() > 0) found.push_back(Device::cuda());
  return found;
}

// Two loss nodes on predictions of different sizes (mean squared error, summed).
struct TwoLosses {
  std::shared_ptr<ImageNode> small = std::make_shared<ImageNode>("small");
  std::shared_ptr<ImageNode> large = std::make_shared<ImageNode>("large");
  LossDescriptor descriptor{LossType::mean_squared_error, ReductionType::sum};
  std::shared_ptr<LossNode> first = std::make_shared<LossNode>(small, descriptor);
  std::shared_ptr<LossNode> second = std::make_shared<LossNode>(large, descriptor);
  Graph graph(const Device& device) const {
    return Graph(device, {first->result_image(), second->result_image()}, {true, true});
  }
};

const ImageShape kSmall{2, 1, 1, 3}, kLarge{2, 3, 2, 5};

Image ones(const ImageShape& shape) {
  return Image::from_floats(shape, std::vector<float>(shape.elements(), 1.0f));
}

TEST(RunProgram, LabelsWithoutWeightsCountAsWeightsOfOnesForEveryLossNode) {
  std::mt19937 rng(5);
  const TwoLosses net;
  const std::vector<Image> sources{random_image(kSmall, rng), random_image(kLarge, rng)};
  const Image small_labels = random_image(kSmall, rng), large_labels = random_image(kLarge, rng);
  for (const Device& device : devices()) {
    SCOPED_TRACE(device.name());
    Graph graph = net.graph(device);
    // Twice without weights: the second run reuses the first one's ones.
    for (int run = 0; run < 2; ++run) {
      const Results bare = graph.run(sources, {LossLabels(small_labels), LossLabels(large_labels)});
      const Results weighted = graph.run(sources, {LossLabels(small_labels, ones(kSmall)),
                                                   LossLabels(large_labels, ones(kLarge))});
      ASSERT_EQ(bare.losses.size(), 2u);
      for (std::size_t k = 0; k < 2; ++k)
        EXPECT_FLOAT_EQ(bare.losses[k].second, weighted.losses[k].second) << "loss " << k;
    }
  }
}

TEST(RunProgram, LabelsOfTheWrongCountOrSizeAreRefusedNamingTheLossNode) {
  std::mt19937 rng(6);
  const TwoLosses net;
  Graph graph = net.graph(Device::cpu_reference());
  const std::vector<Image> sources{random_image(kSmall, rng), random_image(kLarge, rng)};
  const Image small_labels = random_image(kSmall, rng);
  EXPECT_THROW(graph.run(sources, {LossLabels(small_labels)}), InvalidArgument);
  try {
    graph.run(sources, {LossLabels(small_labels), LossLabels(small_labels)});
    FAIL() << "expected a ShapeError";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find(net.second->display_name()), std::string::npos)
        << e.what();
  }
}

// As for source images: labels on a device the graph does not run on are an error, not a
// read of memory the graph cannot reach.
TEST(RunProgram, LabelsOnAnotherDeviceAreRefusedNamingTheLossNode) {
  if (Device::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA GPU on this machine";
  std::mt19937 rng(7);
  const TwoLosses net;
  Graph graph = net.graph(Device::cpu());
  const std::vector<Image> sources{random_image(kSmall, rng), random_image(kLarge, rng)};
  const Image on_gpu = random_image(kLarge, rng).to(Device::cuda());
  try {
    graph.run(sources, {LossLabels(random_image(kSmall, rng)), LossLabels(on_gpu)});
    FAIL() << "expected an InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find(net.second->display_name()), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("cuda:0"), std::string::npos) << e.what();
  }
}

}  // namespace
