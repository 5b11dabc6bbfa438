// Image-classification networks built from cnngraph nodes, with torchvision's layer names
// so that its trained (or seeded) weights load as they are: ResNet-50 and -18, MobileNetV2,
// EfficientNet-B0, and a binary ResNet-18.
// bench/export_torchvision.py writes a torchvision model's state_dict in our weights format
// (docs/models.md).
#pragma once

#include <cnngraph/cnngraph.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace cnngraph::models {

// Hands the builder each tensor by torchvision's name and the shape the layer expects
// (convolution weights OHWI; batch-norm vectors; the classifier as a 1x1 convolution,
// [classes, 1, 1, features]). Throws DataSourceError naming the tensor when it cannot.
using TensorProvider =
    std::function<Tensor(const std::string& name, const std::vector<std::int64_t>& shape)>;

// Tensors from a weights file's map; a missing tensor or a shape mismatch is an error.
TensorProvider tensors_from(std::map<std::string, Tensor> tensors);
// Seeded random tensors (He-scaled weights, batch-norm statistics near identity): a
// network that runs with realistic value ranges and no file.
TensorProvider random_tensors(unsigned seed);

// How a network's layers get their parameters. Without an optimizer they are fixed (an
// inference graph: batch norm folds into the convolution). With one, each convolution gets
// a TrainableDataSource and each batch norm a BatchNormalizationDataSource, all sharing
// it, and the convolutions train with `style`: a network for training graphs.
struct Parameters {
  TensorProvider tensors;
  std::shared_ptr<const Optimizer> optimizer;
  TrainingStyle style = TrainingStyle::device;
};

struct Network {
  std::shared_ptr<ImageNode> input;   // NHWC, 3 channels, normalized as torchvision's are
  std::shared_ptr<ImageNode> logits;  // 1 x 1 x classes
};

// torchvision's resnet50 (v1.5: the stride in the 3x3 convolution) for square inputs of
// `image_size` pixels (224 for ImageNet).
Network resnet50(const TensorProvider& tensors, int image_size = 224, int classes = 1000);
Network resnet50(const Parameters& parameters, int image_size = 224, int classes = 1000);
// torchvision's resnet18 (basic blocks 2, 2, 2, 2).
Network resnet18(const Parameters& parameters, int image_size = 224, int classes = 1000);
// A binary ResNet-18 (XNOR-Net / Bi-Real style), with resnet18's layer names so that its
// weights load (a float ResNet-18 is the usual start): every 3x3 convolution of the basic
// blocks is an XNOR BinaryConvolutionNode (scale 1) followed by a batch norm, block
// x -> binconv1 -> bn1 -> binconv2 -> bn2 -> + shortcut(x), no relu in the block; the stem
// (conv 7x7 + batch norm + max pool, without relu: the first block binarizes its output),
// the shortcuts (identity, or the float 1x1 downsample + batch norm) and the classifier stay
// full precision. With an optimizer the binary layers train their float shadow weights
// through the straight-through estimator. `width` is the stem's and the first stage's
// channels (64 as in ResNet-18; the stages have 1, 2, 4, 8 times it): a narrower network
// for quick training tests.
Network binary_resnet18(const TensorProvider& tensors, int image_size = 224, int classes = 1000,
                        int width = 64);
Network binary_resnet18(const Parameters& parameters, int image_size = 224, int classes = 1000,
                        int width = 64);
// torchvision's mobilenet_v2 (width 1.0); dropout is left out (inference).
Network mobilenet_v2(const TensorProvider& tensors, int image_size = 224, int classes = 1000);
Network mobilenet_v2(const Parameters& parameters, int image_size = 224, int classes = 1000);
// torchvision's efficientnet_b0 (SiLU, squeeze-and-excitation); stochastic depth and
// dropout are left out (inference).
Network efficientnet_b0(const TensorProvider& tensors, int image_size = 224, int classes = 1000);
Network efficientnet_b0(const Parameters& parameters, int image_size = 224, int classes = 1000);

// Symmetric zero padding of `pad` pixels on every side, as torch.nn.Conv2d and MaxPool2d
// place their windows (result = (in + 2 pad - window) / stride + 1).
PaddingPolicy torch_padding(int pad);

}  // namespace cnngraph::models
