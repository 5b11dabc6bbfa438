// Kernel selection (src/backends/candidates.hpp): every backend's table covers every op kind
// or says why not, and a declining candidate's reason reaches the verbose log. Reads the
// tables directly, so the CUDA table is checked wherever it is built, without a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>

#include "backends/candidates.hpp"
#include "cnngraph/errors.hpp"
#include "env_knobs.hpp"
#include "support.hpp"

using namespace cnngraph;
using namespace cnngraph::detail;

namespace {

// OpKind's last enumerator: a new kind goes before it or moves this along.
constexpr int op_kind_count = static_cast<int>(OpKind::arithmetic_gradient) + 1;

bool has_row(const DispatchTable& table, OpKind kind) {
  return std::find(table.rows.begin(), table.rows.end(), kind) != table.rows.end();
}

bool has_gap(const DispatchTable& table, OpKind kind) {
  return std::any_of(table.unsupported.begin(), table.unsupported.end(),
                     [kind](const UnsupportedOpKind& gap) { return gap.kind == kind; });
}

TEST(Dispatch, EveryOpKindHasAReferenceRow) {
  const std::vector<DispatchTable> tables = dispatch_tables();
  ASSERT_FALSE(tables.empty());
  ASSERT_EQ(tables.front().backend, "reference");
  EXPECT_TRUE(tables.front().unsupported.empty());
  for (int k = 0; k < op_kind_count; ++k)
    EXPECT_TRUE(has_row(tables.front(), static_cast<OpKind>(k))) << "op kind " << k;
}

TEST(Dispatch, EveryOtherBackendHasARowOrAStatedGapForEveryOpKind) {
  for (const DispatchTable& table : dispatch_tables()) {
    for (int k = 0; k < op_kind_count; ++k) {
      const auto kind = static_cast<OpKind>(k);
      EXPECT_NE(has_row(table, kind), has_gap(table, kind))
          << table.backend << ": op kind " << k << " needs exactly one of a row or a gap";
    }
    for (const UnsupportedOpKind& gap : table.unsupported)
      EXPECT_FALSE(std::string(gap.reason).empty()) << table.backend;
  }
}

std::unique_ptr<Kernel> declines(const Op&, const GraphOptions&) {
  return decline("stride 3 is not implemented");
}
std::unique_ptr<Kernel> declines_silently(const Op&, const GraphOptions&) { return nullptr; }

const KernelCandidate<> declining_table[] = {
    {OpKind::neuron, "test:fast", declines},
    {OpKind::neuron, "test:other", declines_silently},
};
const UnsupportedOpKind test_gaps[] = {{OpKind::loss, "no loss in this test table"}};

TEST(Dispatch, VerbosePrintsEveryDecliningCandidateWithItsReason) {
  Op op(OpKind::neuron);
  op.name = "relu1";
  GraphOptions options;
  options.verbose = true;
  ::testing::internal::CaptureStderr();
  EXPECT_THROW(pick_kernel<>(declining_table, test_gaps, op, options, "test", "see the docs"),
               Unsupported);
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("relu1"), std::string::npos) << log;
  EXPECT_NE(log.find("test:fast declined: stride 3 is not implemented"), std::string::npos) << log;
  EXPECT_NE(log.find("test:other declined\n"), std::string::npos) << log;
}

// The real tables' factories give their reasons too: in f32, oneDNN's bf16 convolution
// declines every convolution before its f32 one takes it.
TEST(Dispatch, VerboseCompileOfARealGraphNamesWhyACandidateDeclined) {
  const std::vector<DispatchTable> tables = dispatch_tables();
  if (std::none_of(tables.begin(), tables.end(),
                   [](const DispatchTable& t) { return t.backend == "onednn"; }))
    GTEST_SKIP() << "built without oneDNN";
  std::mt19937 rng(5);
  auto conv = std::make_shared<ConvolutionNode>(
      std::make_shared<ImageNode>(),
      cnngraph::testing::random_source(ConvolutionDescriptor(3, 3, 2, 3), rng));
  conv->label = "conv1";
  GraphOptions options;
  options.verbose = true;
  Graph graph(Device::cpu(), conv->result_image(), true, options);
  ::testing::internal::CaptureStderr();
  graph.compile({{1, 5, 5, 2}});
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("conv1"), std::string::npos) << log;
  EXPECT_NE(log.find("onednn:convolution_bf16 declined: precision is not bf16"), std::string::npos)
      << log;
}

TEST(Dispatch, AnOpKindInTheGapListIsRefusedWithTheBackendsReason) {
  Op op(OpKind::loss);
  op.name = "loss1";
  try {
    pick_kernel<>(declining_table, test_gaps, op, GraphOptions{}, "test", "see the docs");
    FAIL() << "no kernel expected";
  } catch (const Unsupported& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("loss1: no test kernel accepts"), std::string::npos) << message;
    EXPECT_NE(message.find("no loss in this test table"), std::string::npos) << message;
    EXPECT_NE(message.find("see the docs"), std::string::npos) << message;
  }
}

TEST(Dispatch, EveryEnvironmentKnobIsInTheDesignNotesTable) {
  std::ifstream file(std::string(CNNGRAPH_SOURCE_DIR) + "/docs/design.md");
  ASSERT_TRUE(file) << "docs/design.md";
  std::stringstream text;
  text << file.rdbuf();
  for (const knobs::Knob* knob : knobs::all) {
    EXPECT_NE(text.str().find("| `" + std::string(knob->name) + "` |"), std::string::npos)
        << knob->name;
  }
}

}  // namespace
