// Runs the reference network over Fashion-MNIST's 10,000 test images with weights read from
// a safetensors file, and reports images per second and accuracy. Without --weights it
// writes the untrained initial weights (write_initial_weights) first, so accuracy is at
// chance level (about 10%) until the trainer (fashion_mnist_train) produces a trained file.
// With --graph it runs a saved graph instead (docs/saved-graphs.md; the trainer's
// --save-graph writes one): its first source takes the 28 x 28 x 1 images, its first result
// gives the 10 class scores.
#include <cxxopts.hpp>
#include <iostream>

#include "cnngraph/saved_graph.hpp"
#include "fashion_mnist.hpp"
#include "progress_bar.hpp"
#include "reference_network.hpp"

using namespace cnngraph;

namespace {

// The trainer's --device names; an unknown one is an error, never a silent CPU run.
Device parse_device(const std::string& name) {
  if (name == "cpu") return Device::cpu();
  if (name == "cpu_reference") return Device::cpu_reference();
  if (name == "cuda") return Device::cuda(0);
  throw InvalidArgument("--device must be cpu, cpu_reference or cuda, got '" + name + "'");
}

}  // namespace

int main(int argc, char** argv) {
  cxxopts::Options options("fashion_mnist_inference",
                           "Classify Fashion-MNIST test images with cnngraph");
  options.add_options()(
      "data-dir", "directory of the idx .gz files",
      cxxopts::value<std::string>()->default_value(examples::kDefaultFashionMnistDir))(
      "weights", "safetensors weights file (conv1/conv2/fc1/fc2 .weight and .bias)",
      cxxopts::value<std::string>()->default_value(""))(
      "graph", "a saved graph to run instead of the reference network (--weights is then unused)",
      cxxopts::value<std::string>()->default_value(""))(
      "batch-size", "images per run", cxxopts::value<int>()->default_value("1000"))(
      "test-images", "evaluate on only the first N test images (0: all)",
      cxxopts::value<int>()->default_value("0"))(
      "device", "cpu, cpu_reference or cuda", cxxopts::value<std::string>()->default_value("cpu"))(
      "seed", "seed of the initial weights", cxxopts::value<unsigned>()->default_value("1"))(
      "h,help", "show this help");
  try {
    const auto args = options.parse(argc, argv);
    if (args.count("help")) {
      std::cout << options.help() << "\n";
      return 0;
    }
    auto test = examples::load_fashion_mnist(args["data-dir"].as<std::string>(), "t10k");
    if (const int limit = args["test-images"].as<int>(); limit > 0 && limit < test.count)
      test.count = limit;
    const std::string saved_graph = args["graph"].as<std::string>();
    std::filesystem::path weights = args["weights"].as<std::string>();
    if (!saved_graph.empty() && !weights.empty())
      throw InvalidArgument("--graph and --weights exclude each other");
    if (saved_graph.empty() && weights.empty()) {
      weights = std::filesystem::temp_directory_path() / "cnngraph_initial_weights.safetensors";
      examples::write_initial_weights(weights, args["seed"].as<unsigned>());
      std::cerr << "no --weights given: using untrained initial weights written to " << weights
                << " (expect chance-level accuracy)\n";
    }
    const Device device = parse_device(args["device"].as<std::string>());
    const int batch = std::max(1, args["batch-size"].as<int>());

    std::shared_ptr<ImageNode> result;
    if (saved_graph.empty()) {
      // The float network would read a --binary checkpoint's conv2 and fc1 as float
      // weights and get its batch norms wrong: that network runs from its saved graph.
      if (read_weights_file(weights).count("bn_conv2.gamma")) {
        throw InvalidArgument("--weights " + weights.string() +
                              " is a checkpoint of the binary network (fashion_mnist_train "
                              "--binary): run the graph it saved with --save-graph, by --graph");
      }
      result = examples::build_reference_network(weights).probabilities;
    } else {
      const SavedGraph loaded = load_graph(saved_graph);
      if (loaded.sources.size() != 1 || loaded.results.empty())
        throw InvalidArgument("the saved graph " + saved_graph + " has " +
                              std::to_string(loaded.sources.size()) +
                              " source images; a Fashion-MNIST classifier has one");
      result = loaded.results[0];
    }
    Graph graph(device, result);
    // A graph that does not take 28 x 28 x 1 images says so here, naming the node.
    graph.compile({{std::min(batch, test.count), test.rows, test.columns, 1}});
    const int pixels = test.rows * test.columns;
    examples::ProgressBar bar("inference", test.count);
    int correct = 0;
    double seconds = 0.0;
    for (int start = 0; start < test.count; start += batch) {
      const int n = std::min(batch, test.count - start);
      std::vector<float> input(static_cast<std::size_t>(n) * pixels);
      for (std::size_t i = 0; i < input.size(); ++i) {
        input[i] = test.pixels[static_cast<std::size_t>(start) * pixels + i] / 255.0f;
      }
      const Image images = Image::from_floats({n, test.rows, test.columns, 1}, input);
      const auto begin = std::chrono::steady_clock::now();
      const Image out = graph.run({images})[0];
      if (out.shape().elements_per_image() != 10)
        throw InvalidArgument("the graph's result is " + to_string(out.shape()) +
                              ", not 10 class scores per image");
      const auto probabilities = out.to_floats();
      seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
      for (int i = 0; i < n; ++i) {
        const float* p = probabilities.data() + i * 10;
        correct += std::max_element(p, p + 10) - p == test.labels[start + i];
      }
      char rate[64];
      std::snprintf(rate, sizeof rate, "%.0f img/s", (start + n) / seconds);
      bar.update(start + n, rate);
    }
    std::printf("device %s, batch %d: %.0f images/s, test accuracy %.2f%%\n", device.name().c_str(),
                batch, test.count / seconds, 100.0 * correct / test.count);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
