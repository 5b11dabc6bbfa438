// The main job: trains the reference network (Apple's MPS training sample,
// reference_network.hpp) on Fashion-MNIST with cnngraph. One set of TrainableDataSources is
// shared by the training graph and the inference graph, so evaluation sees the trained
// weights after a reload.
// Prints a progress bar (progress_bar.hpp) and the test and training accuracy and loss after
// every epoch, writes the curves as a chart (PNG, where PLplot is built) and a CSV beside it
// (training_chart.hpp) after every epoch, saves a checkpoint, and with --save-graph the
// trained inference graph as a saved graph.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cxxopts.hpp>
#include <filesystem>
#include <iostream>
#include <numeric>
#include <optional>
#include <random>

#include "fashion_mnist.hpp"
#include "progress_bar.hpp"
#include "reference_network.hpp"
#include "training_chart.hpp"

using namespace cnngraph;

namespace {

std::shared_ptr<Optimizer> make_optimizer(const std::string& name, float learning_rate) {
  OptimizerDescriptor d;
  d.learning_rate = learning_rate;
  if (name == "adam") return std::make_shared<AdamOptimizer>(d);
  if (name == "amsgrad") return std::make_shared<AdamOptimizer>(d, 0.9, 0.999, 1e-8f, true);
  if (name == "sgd") return std::make_shared<SgdOptimizer>(d, 0.9f);
  if (name == "rmsprop") return std::make_shared<RmsPropOptimizer>(d);
  throw InvalidArgument("--optimizer must be adam, amsgrad, sgd or rmsprop, got '" + name + "'");
}

TrainingStyle parse_style(const std::string& name) {
  if (name == "device") return TrainingStyle::device;
  if (name == "cpu") return TrainingStyle::cpu;
  if (name == "none") return TrainingStyle::none;
  throw InvalidArgument("--training-style must be device, cpu or none, got '" + name + "'");
}

Device parse_device(const std::string& name) {
  if (name == "cpu") return Device::cpu();
  if (name == "cpu_reference") return Device::cpu_reference();
  if (name == "cuda") return Device::cuda(0);
  throw InvalidArgument("--device must be cpu, cpu_reference or cuda, got '" + name + "'");
}

// Images [first, first + count) of `order` as a batch, pixels scaled to [0, 1].
Image batch_images(const examples::Dataset& data, const std::vector<int>& order, int first,
                   int count) {
  const int pixels = data.rows * data.columns;
  std::vector<float> values(static_cast<std::size_t>(count) * pixels);
  for (int i = 0; i < count; ++i) {
    const std::uint8_t* image = &data.pixels[static_cast<std::size_t>(order[first + i]) * pixels];
    for (int p = 0; p < pixels; ++p)
      values[static_cast<std::size_t>(i) * pixels + p] = image[p] / 255.0f;
  }
  return Image::from_floats({count, data.rows, data.columns, 1}, values);
}

int predicted_class(const float* scores) { return std::max_element(scores, scores + 10) - scores; }

struct Evaluation {
  double loss = 0.0, accuracy = 0.0;  // mean cross-entropy, percent right
};

Evaluation evaluate(Graph& inference, const examples::Dataset& test, int batch) {
  std::vector<int> order(test.count);
  std::iota(order.begin(), order.end(), 0);
  int correct = 0;
  double loss = 0.0;
  for (int start = 0; start < test.count; start += batch) {
    const int n = std::min(batch, test.count - start);
    const auto probabilities = inference.run({batch_images(test, order, start, n)})[0].to_floats();
    for (int i = 0; i < n; ++i) {
      const float* p = probabilities.data() + i * 10;
      const int label = test.labels[start + i];
      correct += predicted_class(p) == label;
      // A probability that rounds to zero would make the mean infinite.
      loss -= std::log(std::max(static_cast<double>(p[label]), 1e-30));
    }
  }
  return {loss / test.count, 100.0 * correct / test.count};
}

}  // namespace

int main(int argc, char** argv) {
  cxxopts::Options options("fashion_mnist_train",
                           "Train the reference CNN on Fashion-MNIST with cnngraph");
  options.add_options()(
      "data-dir", "directory of the idx .gz files (Debian package dataset-fashion-mnist)",
      cxxopts::value<std::string>()->default_value(examples::kDefaultFashionMnistDir))(
      "epochs", "passes over the training set", cxxopts::value<int>()->default_value("7"))(
      "batch-size", "images per training step", cxxopts::value<int>()->default_value("64"))(
      "optimizer", "adam, amsgrad, sgd (momentum 0.9) or rmsprop",
      cxxopts::value<std::string>()->default_value("adam"))(
      "learning-rate", "learning rate", cxxopts::value<float>()->default_value("0.001"))(
      "lr-decay", "learning-rate factor applied after every epoch",
      cxxopts::value<float>()->default_value("0.7"))(
      "training-style", "device, cpu or none",
      cxxopts::value<std::string>()->default_value("device"))(
      "device", "cpu, cpu_reference or cuda", cxxopts::value<std::string>()->default_value("cpu"))(
      "seed", "seed of the initial weights, shuffling and dropout",
      cxxopts::value<unsigned>()->default_value("1"))(
      "train-images", "use only the first N training images (0: all)",
      cxxopts::value<int>()->default_value("0"))(
      "test-images", "evaluate on only the first N test images (0: all)",
      cxxopts::value<int>()->default_value("0"))(
      "binary",
      "make conv2 and fc1 XNOR binary layers (each after a batch norm), trained by the "
      "straight-through estimator; conv1 and fc2 stay full precision")(
      "checkpoint", "where to save the trained weights (safetensors)",
      cxxopts::value<std::string>()->default_value("fashion_mnist_checkpoint.safetensors"))(
      "save-graph",
      "also save the trained inference graph (no dropout) as a saved graph "
      "(docs/saved-graphs.md) that fashion_mnist_inference --graph and cnngraph run read",
      cxxopts::value<std::string>()->default_value(""))(
      "plot",
      "where to write the chart of the loss and accuracy curves (PNG); the curves also go "
      "to a CSV beside it (the same name ending .csv)",
      cxxopts::value<std::string>()->default_value("fashion_mnist_training.png"))("h,help",
                                                                                  "show this help");
  try {
    const auto args = options.parse(argc, argv);
    if (args.count("help")) {
      std::cout << options.help() << "\n";
      return 0;
    }
    const std::string data_dir = args["data-dir"].as<std::string>();
    auto train = examples::load_fashion_mnist(data_dir, "train");
    auto test = examples::load_fashion_mnist(data_dir, "t10k");
    if (const int limit = args["train-images"].as<int>(); limit > 0 && limit < train.count)
      train.count = limit;
    if (const int limit = args["test-images"].as<int>(); limit > 0 && limit < test.count)
      test.count = limit;
    const int batch = args["batch-size"].as<int>();
    const int epochs = args["epochs"].as<int>();
    if (batch <= 0 || epochs <= 0)
      throw InvalidArgument("--batch-size and --epochs must be positive");
    const unsigned seed = args["seed"].as<unsigned>();
    const Device device = parse_device(args["device"].as<std::string>());
    const TrainingStyle style = parse_style(args["training-style"].as<std::string>());

    const auto optimizer =
        make_optimizer(args["optimizer"].as<std::string>(), args["learning-rate"].as<float>());
    const auto sources = examples::make_trainable_sources(seed, optimizer);
    const bool binary = args["binary"].as<bool>();
    std::optional<examples::BinaryNorms> norms;
    if (binary) norms = examples::make_binary_norms(optimizer);
    const examples::BinaryNorms* binary_norms = norms ? &*norms : nullptr;

    // Training graph: dropout 0.5, softmax cross-entropy summed with weight 1 / batch.
    const auto net = examples::build_reference_network(sources, 0.5f, seed, binary_norms);
    net.logits->export_from_graph = true;  // the training accuracy
    for (const auto& layer : net.layers) layer->training_style = style;
    LossDescriptor loss_descriptor(LossType::softmax_cross_entropy, ReductionType::sum);
    loss_descriptor.weight = 1.0f / batch;
    auto loss = std::make_shared<LossNode>(net.logits, loss_descriptor);
    const auto terminals = loss->training_graph(
        nullptr, [](FilterNode& gradient, const FilterNode&, const ImageNode&, const ImageNode&) {
          gradient.result_image()->format = DataType::f32;  // as Apple's sample: f32 gradients
        });
    Graph training(device, terminals, std::vector<bool>(terminals.size(), false));

    // Inference graph on the same data sources, without dropout.
    const auto inference_net = examples::build_reference_network(sources, 1.0f, 1, binary_norms);
    Graph inference(device, inference_net.probabilities);

    std::printf(
        "training the %sreference network on %d Fashion-MNIST images, %d epoch(s), batch %d, "
        "%s, %s training style, device %s\n",
        binary ? "binary " : "", train.count, epochs, batch, optimizer->name().c_str(),
        args["training-style"].as<std::string>().c_str(), device.name().c_str());
    std::mt19937 shuffle(seed);
    std::vector<int> order(train.count);
    std::iota(order.begin(), order.end(), 0);
    const int steps = train.count / batch;  // full batches only: the loss weight is 1 / batch
    const std::string plot = args["plot"].as<std::string>();
    const std::filesystem::path curves = examples::csv_beside(plot);
    if (curves == std::filesystem::path(plot))
      throw InvalidArgument("--plot '" + plot + "' ends in .csv, the name of the CSV beside it");
    const std::string chart_title =
        "Fashion-MNIST, reference network: " + std::to_string(train.count) + " training images, " +
        optimizer->name() + ", batch " + std::to_string(batch);
    examples::TrainingHistory history;
    double last_accuracy = 0.0, train_seconds = 0.0;
    for (int epoch = 1; epoch <= epochs; ++epoch) {
      std::shuffle(order.begin(), order.end(), shuffle);
      examples::ProgressBar bar("epoch " + std::to_string(epoch), steps);
      examples::EpochRecord record;
      record.epoch = epoch;
      record.learning_rate = optimizer->learning_rate();
      double running = 0.0, epoch_loss = 0.0;
      int running_count = 0, epoch_correct = 0;
      const auto begin = std::chrono::steady_clock::now();
      for (int step = 0; step < steps; ++step) {
        const Image images = batch_images(train, order, step * batch, batch);
        std::vector<int> classes(batch);
        for (int i = 0; i < batch; ++i) classes[i] = train.labels[order[step * batch + i]];
        const Results results = training.run({images}, {LossLabels::from_classes(classes, 10)});
        running += results.loss();
        epoch_loss += results.loss();
        ++running_count;
        const auto logits = results.exported_image(*net.logits).to_floats();
        for (int i = 0; i < batch; ++i)
          epoch_correct += predicted_class(logits.data() + i * 10) == classes[i];
        if (running_count == 50 || step + 1 == steps) {
          history.batch_epoch.push_back(epoch - 1 + (step + 1.0) / steps);
          history.batch_loss.push_back(running / running_count);
          const double seconds =
              std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
          char text[96];
          std::snprintf(text, sizeof text, "loss %.4f  %.0f img/s", running / running_count,
                        (step + 1.0) * batch / seconds);
          bar.update(step + 1, text);
          running = 0.0;
          running_count = 0;
        }
      }
      record.seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
      train_seconds += record.seconds;
      record.images_per_second = record.seconds > 0 ? steps * batch / record.seconds : 0.0;
      record.train_loss = steps > 0 ? epoch_loss / steps : 0.0;
      record.train_accuracy = steps > 0 ? 100.0 * epoch_correct / (steps * batch) : 0.0;
      optimizer->set_learning_rate(optimizer->learning_rate() * args["lr-decay"].as<float>());
      inference.reload_from_data_sources();
      const Evaluation evaluation = evaluate(inference, test, 1000);
      record.test_loss = evaluation.loss;
      record.test_accuracy = last_accuracy = evaluation.accuracy;
      history.epochs.push_back(record);
      std::printf(
          "epoch %d: test accuracy %.2f%%, test loss %.4f; training accuracy %.2f%%, "
          "loss %.4f\n",
          epoch, record.test_accuracy, record.test_loss, record.train_accuracy, record.train_loss);
      // After every epoch, so that an interrupted run keeps its curves so far.
      examples::write_training_csv(curves, history);
      if (examples::chart_supported()) examples::write_training_chart(plot, history, chart_title);
      std::fflush(stdout);
    }
    const std::string checkpoint = args["checkpoint"].as<std::string>();
    training.save_checkpoint(checkpoint);
    if (const std::string saved = args["save-graph"].as<std::string>(); !saved.empty()) {
      // The inference graph reads the trained weights from the shared sources.
      inference.reload_from_data_sources();
      inference.save(saved);
      std::printf("saved the inference graph %s\n", saved.c_str());
    }
    std::printf("saved checkpoint %s and the curves %s\n", checkpoint.c_str(), curves.c_str());
    if (examples::chart_supported()) {
      std::printf("saved the chart %s (loss and accuracy per epoch)\n", plot.c_str());
    } else {
      std::printf(
          "no chart written: this build has no PLplot (install libplplot-dev and "
          "plplot-driver-cairo, then configure again)\n");
    }
    std::printf("training throughput %.0f images/s\n", epochs * steps * batch / train_seconds);
    std::printf("final test accuracy: %.2f%%\n", last_accuracy);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
