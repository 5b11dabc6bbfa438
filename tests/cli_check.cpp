// The cnngraph program's tests (tests/cli_test.sh) use this to make their files and to check
// the program's outputs against the library's own run:
//   cli_check make DIR                 small saved graphs and .npy inputs, good and bad
//   cli_check compare MODEL IN OUT LAYOUT
//                                      OUT is what load_graph(MODEL) computes on IN on the
//                                      reference backend, bit for bit
//   cli_check same A B [TOLERANCE]     two .npy files of one shape agree within TOLERANCE
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>

#include "cnngraph/cnngraph.hpp"
#include "cnngraph/saved_graph.hpp"
#include "model.hpp"
#include "npy.hpp"

using namespace cnngraph;
using namespace cnngraph::cli;
namespace fs = std::filesystem;

namespace {

std::shared_ptr<TrainableDataSource> weights(const std::string& label, ConvolutionDescriptor d,
                                             std::uint64_t seed) {
  return TrainableDataSource::uniform(label, d, 0.5f, 0.05f, seed,
                                      std::make_shared<SgdOptimizer>());
}

void make(const fs::path& dir) {
  fs::create_directories(dir);
  // A classifier: 8 x 8 x 3 -> conv 3x3 (4) + ReLU -> max-pool 2 -> 5 classes -> soft-max.
  auto image = std::make_shared<ImageNode>("image");
  auto conv = std::make_shared<ConvolutionNode>(image, weights("conv", {3, 3, 3, 4}, 1));
  auto relu =
      std::make_shared<NeuronNode>(conv->result_image(), NeuronDescriptor::make(NeuronType::relu));
  auto pool = std::make_shared<MaxPoolingNode>(relu->result_image(), 2);
  auto fc =
      std::make_shared<FullyConnectedNode>(pool->result_image(), weights("fc", {4, 4, 4, 5}, 2));
  auto softmax = std::make_shared<SoftMaxNode>(fc->result_image());
  save_graph(dir / "classifier.safetensors", {softmax->result_image()});
  // A feature map: its output is 4-D, so the layout of the output file matters.
  save_graph(dir / "features.safetensors", {relu->result_image()});

  std::mt19937 rng(3);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> nchw(2 * 3 * 8 * 8);
  for (float& v : nchw) v = uniform(rng);
  write_npy(dir / "input.npy", {2, 3, 8, 8}, nchw);
  const Image image_of = Image::from_nchw({2, 8, 8, 3}, nchw);
  write_npy(dir / "input_nhwc.npy", {2, 8, 8, 3}, image_of.to_floats());
  write_npy(dir / "input_f16.npy", {2, 3, 8, 8}, nchw, DataType::f16);
  std::vector<float> five(2 * 5 * 8 * 8, 0.5f);
  write_npy(dir / "wrong_channels.npy", {2, 5, 8, 8}, five);
  write_npy(dir / "three_dims.npy", {3, 8, 8}, std::vector<float>(3 * 8 * 8, 0.5f));
  // Truncated: the header promises more data than the file has.
  const fs::path good = dir / "input.npy";
  std::string bytes(fs::file_size(good), '\0');
  std::ifstream(good, std::ios::binary)
      .read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  std::ofstream(dir / "truncated.npy", std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size() - 7));
  std::ofstream(dir / "not_a_model.txt") << "hello\n";  // parses as protobuf's tag 'h'
  std::ofstream(dir / "binary.bin", std::ios::binary) << std::string("\xff\xff\x00\x01", 4);
}

int compare(const fs::path& model, const fs::path& in, const fs::path& out,
            const std::string& layout_name) {
  const Layout layout = layout_name == "nhwc" ? Layout::nhwc : Layout::nchw;
  const SavedGraph saved = load_graph(model);
  Graph graph(Device::cpu_reference(), saved.results[0]);
  const Image input = image_from_npy(read_npy(in), layout, in.string());
  const auto [dims, expected] = image_to_npy(graph.run({input})[0], layout);
  const NpyArray got = read_npy(out);
  if (got.shape != dims) {
    std::fprintf(stderr, "%s: the shape differs from the library's result\n", out.c_str());
    return 1;
  }
  if (got.values != expected) {
    std::fprintf(stderr, "%s: the values differ from the library's result\n", out.c_str());
    return 1;
  }
  std::printf("%s: %zu values equal to the library's\n", out.c_str(), expected.size());
  return 0;
}

int same(const fs::path& a_path, const fs::path& b_path, double tolerance) {
  const NpyArray a = read_npy(a_path), b = read_npy(b_path);
  if (a.shape != b.shape) {
    std::fprintf(stderr, "%s and %s differ in shape\n", a_path.c_str(), b_path.c_str());
    return 1;
  }
  double worst = 0.0;
  for (std::size_t i = 0; i < a.values.size(); ++i)
    worst = std::max(worst, static_cast<double>(std::fabs(a.values[i] - b.values[i])));
  std::printf("largest difference %g (tolerance %g)\n", worst, tolerance);
  return worst <= tolerance ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string command = argc > 1 ? argv[1] : "";
    if (command == "make" && argc == 3) {
      make(argv[2]);
      return 0;
    }
    if (command == "compare" && argc == 6) return compare(argv[2], argv[3], argv[4], argv[5]);
    if (command == "same" && (argc == 4 || argc == 5))
      return same(argv[2], argv[3], argc == 5 ? std::stod(argv[4]) : 0.0);
    std::fprintf(stderr,
                 "usage: cli_check make DIR | compare MODEL IN OUT LAYOUT | same A B [TOL]\n");
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cli_check: %s\n", e.what());
    return 1;
  }
}
