// Several threads at once: graphs built, run and destroyed on shared data sources, training
// while other graphs reload from the same sources and users read them, results handed to
// other threads, run_async. Run under ThreadSanitizer too (the tsan preset), which checks
// that every shared access has a happens-before.
#include <atomic>
#include <thread>

#include "gradient_support.hpp"
#include "support.hpp"

using namespace cnngraph;
using namespace cnngraph::testing;

namespace {

// Threads a test runs (ThreadSanitizer makes each about ten times slower).
#if defined(__SANITIZE_THREAD__)
constexpr int kRepeats = 4;
#else
constexpr int kRepeats = 20;
#endif

template <typename Body>
void on_threads(int count, Body body) {
  std::vector<std::thread> threads;
  for (int t = 0; t < count; ++t) threads.emplace_back([&body, t] { body(t); });
  for (auto& thread : threads) thread.join();
}

}  // namespace

TEST(Concurrency, GraphsOnSharedSourcesBuiltRunAndDestroyedOnEightThreads) {
  std::mt19937 rng(1);
  auto src = std::make_shared<ImageNode>();
  auto weights = random_source(ConvolutionDescriptor(3, 3, 3, 4), rng);
  auto conv = std::make_shared<ConvolutionNode>(src, weights);
  auto relu =
      std::make_shared<NeuronNode>(conv->result_image(), NeuronDescriptor::make(NeuronType::relu));
  const Image x = random_image({2, 7, 7, 3}, rng);
  const std::vector<float> want =
      run_on(Device::cpu_reference(), relu->result_image(), {x}).to_floats();
  std::atomic<int> wrong{0};
  on_threads(8, [&](int t) {
    for (int cycle = 0; cycle < kRepeats; ++cycle) {
      Graph graph(t % 2 ? Device::cpu() : Device::cpu_reference(), relu->result_image());
      for (int run = 0; run < 3; ++run) {
        if (max_relative_error(graph.run({x})[0].to_floats(), want) > 1e-5) ++wrong;
      }
    }
  });
  EXPECT_EQ(wrong.load(), 0);
}

// One thread trains (device style: the source's host copy follows each step), others
// compile inference graphs from the same sources, reload them, and read the source's
// weights and optimizer state, all at once.
TEST(Concurrency, TrainingWhileOtherGraphsReloadAndUsersReadTheSameSources) {
  auto adam = std::make_shared<AdamOptimizer>();
  auto conv_source =
      TrainableDataSource::uniform("conv", SmallNet::conv_descriptor(), 0.3f, 0.05f, 1, adam);
  auto fc_source =
      TrainableDataSource::uniform("fc", SmallNet::fc_descriptor(), 0.3f, 0.05f, 2, adam);
  SmallNet net(conv_source, fc_source);
  net.conv->training_style = TrainingStyle::device;
  net.fc->training_style = TrainingStyle::cpu;
  std::atomic<bool> training{true};
  std::atomic<int> bad{0};
  std::mt19937 rng(3);
  const Image probe = random_image({1, 6, 6, 2}, rng);
  on_threads(4, [&](int t) {
    if (t == 0) {
      Graph graph = net.training_graph(Device::cpu());
      std::mt19937 batches(4);
      for (int step = 0; step < 6 * kRepeats; ++step) {
        const Batch batch = synthetic_batch(8, batches);
        graph.run({batch.images}, {batch.labels});
      }
      training = false;
      return;
    }
    Graph inference(t == 1 ? Device::cpu() : Device::cpu_reference(), net.fc->result_image());
    while (training) {
      if (t == 3) {
        const auto weights = conv_source->current_weights();
        const auto state = conv_source->optimizer_state();
        if (weights.size() != SmallNet::conv_descriptor().weight_count() ||
            state.tensors.size() > 2)
          ++bad;
        continue;
      }
      inference.reload_from_data_sources();
      for (float v : inference.run({probe})[0].to_floats()) {
        if (!std::isfinite(v)) ++bad;
      }
    }
  });
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(conv_source->update_count(), std::uint64_t(6 * kRepeats));
  EXPECT_EQ(fc_source->update_count(), std::uint64_t(6 * kRepeats));
}

// Results let go of on other threads: the graph reuses their buffers only after those
// threads' last reads (ThreadSanitizer checks the happens-before), and kept ones stay intact.
TEST(Concurrency, ResultsReadAndReleasedOnOtherThreadsAreReusedSafely) {
  std::mt19937 rng(5);
  auto src = std::make_shared<ImageNode>();
  auto conv =
      std::make_shared<ConvolutionNode>(src, random_source(ConvolutionDescriptor(3, 3, 2, 2), rng));
  for (Device device : {Device::cpu(), Device::cpu_reference()}) {
    Graph graph(device, conv->result_image());
    const Image a = random_image({1, 5, 5, 2}, rng), b = random_image({1, 5, 5, 2}, rng);
    const std::vector<float> want_a = graph.run({a})[0].to_floats();
    const std::vector<float> want_b = graph.run({b})[0].to_floats();
    std::atomic<int> wrong{0};
    for (int round = 0; round < 5 * kRepeats; ++round) {
      Image result = graph.run({round % 2 ? b : a})[0];
      std::thread reader([&wrong, &want_a, &want_b, round, image = std::move(result)]() mutable {
        if (image.to_floats() != (round % 2 ? want_b : want_a)) ++wrong;
        image = Image();  // the last copy goes here, on this thread
      });
      Image next = graph.run({round % 2 ? a : b})[0];  // may reuse the buffer once it is free
      if (next.to_floats() != (round % 2 ? want_a : want_b)) ++wrong;
      reader.join();
    }
    EXPECT_EQ(wrong.load(), 0) << device.name();
  }
}

TEST(Concurrency, RunAsyncFromManyThreadsOnOneGraph) {
  std::mt19937 rng(6);
  auto src = std::make_shared<ImageNode>();
  auto conv =
      std::make_shared<ConvolutionNode>(src, random_source(ConvolutionDescriptor(3, 3, 2, 3), rng));
  Graph graph(Device::cpu(), conv->result_image());
  std::vector<Image> inputs;
  std::vector<std::vector<float>> want;
  for (int i = 0; i < 4; ++i) {
    inputs.push_back(random_image({i + 1, 6, 6, 2}, rng));
    want.push_back(run_on(Device::cpu_reference(), conv->result_image(), {inputs[i]}).to_floats());
  }
  std::atomic<int> wrong{0};
  on_threads(4, [&](int t) {
    for (int k = 0; k < kRepeats; ++k) {
      const int i = (t + k) % 4;
      auto result = graph.run_async({inputs[i]});
      if (max_relative_error(result.get()[0].to_floats(), want[i]) > 1e-5) ++wrong;
    }
  });
  EXPECT_EQ(wrong.load(), 0);
}
