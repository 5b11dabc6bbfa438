// Runs a small graph on the CPU and reports what Device::cuda() says (running the graph on
// the GPU too where there is one), so that the install test can tell a program that links
// the CUDA backend from one that does not.
#include <cmath>
#include <cnngraph/cnngraph.hpp>
#include <iostream>

using namespace cnngraph;

namespace {

// 1x1 convolution, 1 -> 2 channels (weights 1 and -1, bias 0.5), ReLU, 2x2 max-pooling.
bool run_graph(const Device& device) {
  ConvolutionDescriptor d(1, 1, 1, 2);
  d.set_neuron(NeuronType::relu);
  auto weights = std::make_shared<ArrayDataSource>("conv", d, std::vector<float>{1.0f, -1.0f},
                                                   std::vector<float>{0.5f, 0.5f});
  auto image = std::make_shared<ImageNode>("image");
  auto conv = std::make_shared<ConvolutionNode>(image, weights);
  auto pool = std::make_shared<MaxPoolingNode>(conv->result_image(), 2);
  Graph graph(device, pool->result_image());
  const std::vector<float> values =
      graph.run({Image::from_floats({1, 2, 2, 1}, std::vector<float>{1, 2, -3, 4})})[0].to_floats();
  // Channel 0: max(relu(x + 0.5)) = 4.5; channel 1: max(relu(-x + 0.5)) = 3.5.
  const bool right = values.size() == 2 && std::fabs(values[0] - 4.5f) < 1e-3f &&
                     std::fabs(values[1] - 3.5f) < 1e-3f;
  std::cout << "consumer: graph on " << device.name() << (right ? " ok" : " WRONG") << "\n";
  return right;
}

}  // namespace

int main() {
  bool right = false;
  try {
    right = run_graph(Device::cpu());
  } catch (const DeviceError& e) {  // a build without oneDNN
    std::cout << "consumer: " << e.what() << "\n";
    right = run_graph(Device::cpu_reference());
  }
  std::cout << "consumer: cuda devices " << Device::cuda_device_count() << "\n";
  try {
    const Device gpu = Device::cuda();
    right = run_graph(gpu) && right;
  } catch (const DeviceError& e) {
    std::cout << "consumer: Device::cuda(): " << e.what() << "\n";
  }
  return right ? 0 : 1;
}
