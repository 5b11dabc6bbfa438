// Runs a small graph on the CPU and reports what Device::cuda() says, so that the install
// test can tell a program that links the CUDA backend from one that does not.
#include <cmath>
#include <cnngraph/cnngraph.hpp>
#include <iostream>

using namespace cnngraph;

int main() {
  // 1x1 convolution, 1 -> 2 channels (weights 1 and -1, bias 0.5), ReLU, 2x2 max-pooling.
  ConvolutionDescriptor d(1, 1, 1, 2);
  d.set_neuron(NeuronType::relu);
  auto weights = std::make_shared<ArrayDataSource>("conv", d, std::vector<float>{1.0f, -1.0f},
                                                   std::vector<float>{0.5f, 0.5f});
  auto image = std::make_shared<ImageNode>("image");
  auto conv = std::make_shared<ConvolutionNode>(image, weights);
  auto pool = std::make_shared<MaxPoolingNode>(conv->result_image(), 2);
  Graph graph(Device::cpu(), pool->result_image());
  const Image out =
      graph.run({Image::from_floats({1, 2, 2, 1}, std::vector<float>{1, 2, -3, 4})})[0];
  const std::vector<float> values = out.to_floats();
  // Channel 0: max(relu(x + 0.5)) = 4.5; channel 1: max(relu(-x + 0.5)) = 3.5.
  if (values.size() != 2 || std::fabs(values[0] - 4.5f) > 1e-5f ||
      std::fabs(values[1] - 3.5f) > 1e-5f) {
    std::cerr << "consumer: wrong result\n";
    return 1;
  }
  std::cout << "consumer: graph on " << Device::cpu().name() << " ok\n";
  std::cout << "consumer: cuda devices " << Device::cuda_device_count() << "\n";
  try {
    const Device gpu = Device::cuda();
    std::cout << "consumer: " << gpu.name() << " ok\n";
  } catch (const DeviceError& e) {
    std::cout << "consumer: Device::cuda(): " << e.what() << "\n";
  }
  return 0;
}
