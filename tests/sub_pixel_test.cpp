// Sub-pixel convolution: both channel orders against their defining formulas (MPS's
// depth-to-space and PyTorch's pixel_shuffle), on the reference and oneDNN devices, and
// their gradients against finite differences.
#include "gradient_support.hpp"

using namespace cnngraph;
using namespace cnngraph::testing;

namespace {

std::shared_ptr<ConvolutionNode> convolution(const std::shared_ptr<ImageNode>& src,
                                             const ConvolutionDescriptor& d,
                                             const std::vector<float>& weights,
                                             const std::vector<float>& bias) {
  return std::make_shared<ConvolutionNode>(
      src, std::make_shared<ArrayDataSource>("w", d, weights, bias));
}

// The convolution channel feeding result channel c at result pixel (X, Y) (X the column),
// written as the frameworks document it, with C result channels and factor r.
int mps_channel(int X, int Y, int c, int r, int C) {
  // MPSCNNSubPixelConvolutionDescriptor: Dst[x][y][c] = Io[x/r][y/r][(N/r^2) * (r*(y mod r)
  // + (x mod r)) + c], N/r^2 = C.
  return C * (r * (Y % r) + (X % r)) + c;
}
int pytorch_channel(int X, int Y, int c, int r, int) {
  // nn.PixelShuffle: out[c][h*r + i][w*r + j] = in[c*r*r + i*r + j][h][w].
  return c * r * r + (Y % r) * r + (X % r);
}

}  // namespace

TEST(SubPixelConvolution, DefaultsToMpsDepthToSpaceOrder) {
  ConvolutionDescriptor d(3, 3, 2, 8);
  EXPECT_EQ(d.sub_pixel_order, SubPixelOrder::depth_to_space);
  d.set_sub_pixel(2);
  EXPECT_EQ(d.sub_pixel_scale_factor, 2);
  EXPECT_EQ(d.sub_pixel_order, SubPixelOrder::depth_to_space);
  d.set_sub_pixel(3, SubPixelOrder::pixel_shuffle);
  EXPECT_EQ(d.sub_pixel_scale_factor, 3);
  EXPECT_EQ(d.sub_pixel_order, SubPixelOrder::pixel_shuffle);
}

TEST(SubPixelConvolution, BothOrdersFollowTheirFormulasOnBothCpuDevices) {
  std::mt19937 rng(23);
  const int N = 2, H = 4, W = 3, C = 2;
  const Image input = random_image({N, H, W, 3}, rng);
  for (const int r : {2, 3}) {
    const int K = C * r * r;
    ConvolutionDescriptor plain(3, 3, 3, K);
    const auto w = random_floats(static_cast<std::size_t>(K) * 9 * 3, rng);
    const auto bias = random_floats(K, rng);
    auto src = std::make_shared<ImageNode>();
    const std::vector<float> conv =
        run_on(Device::cpu_reference(), convolution(src, plain, w, bias)->result_image(), {input})
            .to_floats();
    for (const SubPixelOrder order :
         {SubPixelOrder::depth_to_space, SubPixelOrder::pixel_shuffle}) {
      const auto channel = order == SubPixelOrder::depth_to_space ? mps_channel : pytorch_channel;
      ConvolutionDescriptor d = plain;
      d.set_sub_pixel(r, order);
      for (const Device& device : {Device::cpu_reference(), Device::cpu()}) {
        SCOPED_TRACE(to_string(order) + " r=" + std::to_string(r) + " on " + device.name());
        const Image out = run_on(device, convolution(src, d, w, bias)->result_image(), {input});
        ASSERT_EQ(out.shape(), (ImageShape{N, H * r, W * r, C}));
        const std::vector<float> v = out.to_floats();
        for (int n = 0; n < N; ++n)
          for (int Y = 0; Y < H * r; ++Y)
            for (int X = 0; X < W * r; ++X)
              for (int c = 0; c < C; ++c) {
                const float expected =
                    conv[((n * H + Y / r) * W + X / r) * K + channel(X, Y, c, r, C)];
                ASSERT_NEAR(v[((n * H * r + Y) * W * r + X) * C + c], expected, 1e-5)
                    << "n " << n << " Y " << Y << " X " << X << " c " << c;
              }
      }
    }
  }
}

TEST(SubPixelConvolution, BothOrdersGradientsMatchFiniteDifferences) {
  for (const SubPixelOrder order : {SubPixelOrder::depth_to_space, SubPixelOrder::pixel_shuffle}) {
    SCOPED_TRACE(to_string(order));
    std::mt19937 rng(5);
    ConvolutionDescriptor d(3, 3, 2, 8);
    d.set_sub_pixel(2, order);
    auto weights = RecordingSource::random(d, rng);
    check_input_gradients(
        [&](std::vector<std::shared_ptr<ImageNode>> x) {
          auto node = std::make_shared<ConvolutionNode>(x[0], weights);
          node->training_style = TrainingStyle::none;
          return node;
        },
        {{1, 4, 3, 2}}, 17);
  }
}
