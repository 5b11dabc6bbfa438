// Checkpoints: a load that fails changes nothing, and a save killed at any moment leaves the
// old or the new file, never a broken one.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <thread>

#include "gradient_support.hpp"
#include "support.hpp"

using namespace cnngraph;
using namespace cnngraph::testing;
namespace fs = std::filesystem;

namespace {

fs::path test_folder() { return fresh_test_folder("checkpoint_test"); }

// conv (with bias) -> batch normalization -> fully connected (with bias), untrained.
struct Net {
  std::shared_ptr<AdamOptimizer> adam = std::make_shared<AdamOptimizer>();
  std::shared_ptr<TrainableDataSource> conv, fc;
  std::shared_ptr<BatchNormalizationDataSource> bn;
  std::unique_ptr<Graph> graph;

  Net(std::uint64_t seed, int channels = 4, int fc_outputs = 3) {
    conv = TrainableDataSource::uniform("conv", ConvolutionDescriptor(1, 1, 2, channels), 0.5f,
                                        0.1f, seed, adam);
    fc = TrainableDataSource::uniform("fc", ConvolutionDescriptor(2, 2, channels, fc_outputs), 0.5f,
                                      0.2f, seed + 1, adam);
    bn = BatchNormalizationDataSource::identity("bn", channels, adam);
    auto input = std::make_shared<ImageNode>("image");
    auto c = std::make_shared<ConvolutionNode>(input, conv);
    auto b = std::make_shared<BatchNormalizationNode>(c->result_image(), bn);
    auto f = std::make_shared<FullyConnectedNode>(b->result_image(), fc);
    graph = std::make_unique<Graph>(Device::cpu(), f->result_image());
  }

  struct Values {
    std::vector<float> conv_weights, conv_bias, fc_weights, fc_bias;
    BatchNormalizationParameters bn;
  };
  Values values() const {
    return {conv->current_weights(), conv->current_bias(), fc->current_weights(),
            fc->current_bias(), bn->parameters()};
  }
};

void expect_unchanged(const Net& net, const Net::Values& before) {
  const Net::Values now = net.values();
  EXPECT_EQ(now.conv_weights, before.conv_weights);
  EXPECT_EQ(now.conv_bias, before.conv_bias);
  EXPECT_EQ(now.fc_weights, before.fc_weights);
  EXPECT_EQ(now.fc_bias, before.fc_bias);
  EXPECT_EQ(now.bn.gamma, before.bn.gamma);
  EXPECT_EQ(now.bn.variance, before.bn.variance);
}

// Saves a checkpoint of another net's values, changes one tensor with `edit`, loads it into
// `net` and expects a DataSourceError naming `name` and no change.
template <typename Edit>
void expect_refused_without_change(const std::string& name, Edit edit) {
  SCOPED_TRACE(name);
  const fs::path path = test_folder() / "edited.safetensors";
  Net other(10);
  other.graph->save_checkpoint(path);
  auto tensors = read_weights_file(path);
  ASSERT_TRUE(tensors.count(name));
  edit(tensors.at(name));
  write_weights_file(path, tensors);
  Net net(20);
  const Net::Values before = net.values();
  try {
    net.graph->load_checkpoint(path);
    ADD_FAILURE() << "the edited checkpoint was accepted";
  } catch (const DataSourceError& e) {
    EXPECT_NE(std::string(e.what()).find("'" + name + "'"), std::string::npos) << e.what();
  }
  expect_unchanged(net, before);
}

Tensor with_value(const Tensor& t, std::size_t index, float value) {
  std::vector<float> values = t.to_floats();
  values.at(index) = value;
  return Tensor::from_floats(t.shape, values);
}

}  // namespace

TEST(CheckpointLoading, RoundTripsEveryTensor) {
  const fs::path path = test_folder() / "good.safetensors";
  Net a(1), b(2);
  a.graph->save_checkpoint(path);
  b.graph->load_checkpoint(path);
  EXPECT_EQ(b.fc->current_bias(), a.fc->current_bias());
  EXPECT_EQ(b.conv->current_weights(), a.conv->current_weights());
}

TEST(CheckpointLoading, AWrongLengthBiasOfALaterLayerChangesNothing) {
  expect_refused_without_change(
      "fc.bias", [](Tensor& t) { t = Tensor::from_floats({5}, std::vector<float>(5, 1.0f)); });
  expect_refused_without_change("fc.bias", [](Tensor& t) {
    t = Tensor::from_floats({1, 3}, std::vector<float>(3, 1.0f));
  });
}

TEST(CheckpointLoading, NonFiniteValuesAreRefusedAndChangeNothing) {
  expect_refused_without_change("fc.weight", [](Tensor& t) { t = with_value(t, 7, NAN); });
  expect_refused_without_change("fc.bias", [](Tensor& t) { t = with_value(t, 2, INFINITY); });
  expect_refused_without_change("conv.weight", [](Tensor& t) { t = with_value(t, 0, -INFINITY); });
  expect_refused_without_change("bn.running_variance",
                                [](Tensor& t) { t = with_value(t, 3, INFINITY); });
  expect_refused_without_change("bn.gamma", [](Tensor& t) { t = with_value(t, 1, NAN); });
}

TEST(CheckpointLoading, AMissingBiasOrWeightChangesNothing) {
  const fs::path path = test_folder() / "partial.safetensors";
  Net other(10);
  other.graph->save_checkpoint(path);
  auto tensors = read_weights_file(path);
  for (const char* name : {"fc.bias", "fc.weight", "bn.beta"}) {
    auto edited = tensors;
    edited.erase(name);
    write_weights_file(path, edited);
    Net net(20);
    const Net::Values before = net.values();
    EXPECT_THROW(net.graph->load_checkpoint(path), DataSourceError) << name;
    expect_unchanged(net, before);
  }
}

namespace {

void train(Graph& graph, const std::vector<Batch>& batches, std::size_t from, std::size_t to) {
  for (std::size_t i = from; i < to; ++i) graph.run({batches[i].images}, {batches[i].labels});
}

// Trains 3 batches, saves, loads into a fresh net, trains 3 more, and expects the weights,
// biases, batch-norm parameters and moments of 6 batches in one go, bit for bit.
void expect_resumed_training_exact(const std::shared_ptr<const Optimizer>& optimizer) {
  std::mt19937 rng(11);
  std::vector<Batch> batches;
  for (int i = 0; i < 6; ++i) batches.push_back(synthetic_batch(4, rng));
  BatchNormNet whole(optimizer);
  {
    Graph graph = whole.training_graph();
    train(graph, batches, 0, 6);
  }
  const fs::path path = test_folder() / "resume.safetensors";
  {
    BatchNormNet first(optimizer);
    Graph graph = first.training_graph();
    train(graph, batches, 0, 3);
    graph.save_checkpoint(path);
  }
  BatchNormNet resumed(optimizer);
  Graph reader(Device::cpu_reference(), resumed.loss->source_images()[0]);
  reader.load_checkpoint(path);
  EXPECT_EQ(resumed.conv->optimizer_state().time_step, 3u);
  {
    Graph graph = resumed.training_graph();
    train(graph, batches, 3, 6);
  }
  EXPECT_EQ(resumed.conv->current_weights(), whole.conv->current_weights());
  EXPECT_EQ(resumed.conv->current_bias(), whole.conv->current_bias());
  EXPECT_EQ(resumed.fc->current_weights(), whole.fc->current_weights());
  EXPECT_EQ(resumed.fc->current_bias(), whole.fc->current_bias());
  EXPECT_EQ(resumed.bn->parameters().gamma, whole.bn->parameters().gamma);
  EXPECT_EQ(resumed.bn->parameters().beta, whole.bn->parameters().beta);
  EXPECT_EQ(resumed.bn->parameters().mean, whole.bn->parameters().mean);
  EXPECT_EQ(resumed.bn->parameters().variance, whole.bn->parameters().variance);
  const OptimizerState a = resumed.fc->optimizer_state(), b = whole.fc->optimizer_state();
  EXPECT_EQ(a.time_step, b.time_step);
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (std::size_t t = 0; t < a.tensors.size(); ++t) {
    EXPECT_EQ(a.tensors[t].momentum, b.tensors[t].momentum);
    EXPECT_EQ(a.tensors[t].velocity, b.tensors[t].velocity);
  }
  EXPECT_EQ(resumed.bn->optimizer_state().time_step, whole.bn->optimizer_state().time_step);
}

}  // namespace

TEST(CheckpointOptimizerState, AdamResumedFromACheckpointEqualsOneRunBitForBit) {
  expect_resumed_training_exact(std::make_shared<AdamOptimizer>(OptimizerDescriptor{0.01f}));
}

TEST(CheckpointOptimizerState, SgdWithMomentumResumedFromACheckpointEqualsOneRunBitForBit) {
  expect_resumed_training_exact(
      std::make_shared<SgdOptimizer>(OptimizerDescriptor{0.05f}, 0.9f, false));
}

TEST(CheckpointOptimizerState, AFileWithoutMomentsLoadsAndKeepsTheSourcesMoments) {
  const fs::path path = test_folder() / "old.safetensors";
  Net a(1), b(2);
  a.graph->save_checkpoint(path);
  auto tensors = read_weights_file(path);
  for (auto it = tensors.begin(); it != tensors.end();) {
    it = it->first.find("momentum") != std::string::npos ||
                 it->first.find("velocity") != std::string::npos
             ? tensors.erase(it)
             : std::next(it);
  }
  write_weights_file(path, tensors);  // no metadata: no time steps
  b.graph->load_checkpoint(path);
  EXPECT_EQ(b.fc->current_weights(), a.fc->current_weights());
  EXPECT_EQ(b.fc->optimizer_state().time_step, 0u);
}

TEST(CheckpointOptimizerState, AMomentOfTheWrongLengthIsRefusedAndChangesNothing) {
  const fs::path path = test_folder() / "moments.safetensors";
  BatchNormNet trained(std::make_shared<AdamOptimizer>());
  std::mt19937 rng(5);
  const Batch batch = synthetic_batch(4, rng);
  Graph graph = trained.training_graph();
  graph.run({batch.images}, {batch.labels});
  graph.save_checkpoint(path);
  auto contents = read_weights_file_with_metadata(path);
  ASSERT_TRUE(contents.tensors.count("fc.weight.velocity"));
  contents.tensors["fc.weight.velocity"] = Tensor::from_floats({2}, {1.0f, 2.0f});
  write_weights_file(path, contents.tensors, contents.metadata);
  BatchNormNet fresh(std::make_shared<AdamOptimizer>());
  Graph reader(Device::cpu_reference(), fresh.loss->source_images()[0]);
  const std::vector<float> before = fresh.conv->current_weights();
  try {
    reader.load_checkpoint(path);
    ADD_FAILURE() << "the edited checkpoint was accepted";
  } catch (const DataSourceError& e) {
    EXPECT_NE(std::string(e.what()).find("'fc.weight.velocity'"), std::string::npos) << e.what();
  }
  EXPECT_EQ(fresh.conv->current_weights(), before);
  EXPECT_EQ(fresh.conv->optimizer_state().time_step, 0u);
  contents.tensors.erase("fc.weight.velocity");
  contents.metadata["fc.time_step"] = "-1";
  write_weights_file(path, contents.tensors, contents.metadata);
  EXPECT_THROW(reader.load_checkpoint(path), DataSourceError);
}

// A child saves checkpoints in a loop over a good one and is killed with SIGKILL at a random
// moment, 30 times. After every kill the checkpoint reads back as the old or the new
// content. A kill during a save may leave that save's temporary file (".<name>.partial-*");
// the next save of the same checkpoint removes it.
TEST(CheckpointDurability, ASaveKilledAtAnyMomentLeavesTheOldOrTheNewFile) {
  const fs::path folder = test_folder();
  const fs::path target = folder / "model.safetensors";
  // Large enough (about 256 KB) that a save takes a while.
  const auto save_all = [&](std::uint64_t seed, const fs::path& path) {
    Net net(seed, 64, 256);
    net.graph->save_checkpoint(path);
  };
  save_all(1, folder / "a.ref");
  save_all(2, folder / "b.ref");
  const std::string a = file_contents(folder / "a.ref"), b = file_contents(folder / "b.ref");
  ASSERT_NE(a, b);
  save_all(1, target);

  const auto started = std::chrono::steady_clock::now();
  save_all(2, target);
  const auto save_time = std::chrono::steady_clock::now() - started;

  std::mt19937 rng(7);
  int interrupted = 0;
  for (int trial = 0; trial < 30; ++trial) {
    int ready[2];
    ASSERT_EQ(::pipe(ready), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      ::close(ready[0]);
      Net one(1, 64, 256), two(2, 64, 256);
      one.graph->save_checkpoint(target);
      const char byte = 1;
      if (::write(ready[1], &byte, 1) != 1) ::_exit(3);
      for (;;) {
        two.graph->save_checkpoint(target);
        one.graph->save_checkpoint(target);
      }
    }
    ::close(ready[1]);
    char byte = 0;
    const bool started_saving = ::read(ready[0], &byte, 1) == 1;
    ::close(ready[0]);
    // Up to one and a half saves after the child's first save: most kills land inside one.
    const auto save_us = std::chrono::duration_cast<std::chrono::microseconds>(save_time).count();
    std::uniform_int_distribution<std::int64_t> delay(0, save_us * 3 / 2);
    std::this_thread::sleep_for(std::chrono::microseconds(delay(rng)));
    ::kill(child, SIGKILL);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(started_saving) << "the child did not start saving";
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "trial " << trial;

    const std::string now = file_contents(target);
    ASSERT_TRUE(now == a || now == b) << "trial " << trial << ": the checkpoint is neither the "
                                      << "old nor the new one (" << now.size() << " bytes)";
    EXPECT_NO_THROW(read_weights_file(target));
    int temporaries = 0;
    for (const auto& entry : fs::directory_iterator(folder)) {
      temporaries += entry.path().filename().string().find(".partial-") != std::string::npos;
    }
    EXPECT_LE(temporaries, 1) << "trial " << trial;
    interrupted += temporaries;
  }
  EXPECT_GT(interrupted, 0) << "no kill landed inside a save; the test proves nothing";
  save_all(1, target);
  for (const auto& entry : fs::directory_iterator(folder)) {
    EXPECT_EQ(entry.path().filename().string().find(".partial-"), std::string::npos)
        << entry.path() << " was not removed by the next save";
  }
  EXPECT_EQ(file_contents(target), a);
}
