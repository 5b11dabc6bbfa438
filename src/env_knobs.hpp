// Every CNNGRAPH_* environment variable the library reads, in one list (docs/design.md has
// the same table). They are for measurements, tests and experiments; GraphOptions is the
// interface. Code reads a knob only through read(), so a grep for a knob's name finds it here.
#pragma once

#include <cstdlib>

namespace cnngraph::detail::knobs {

struct Knob {
  const char* name;
  const char* values;
  const char* effect;
};

inline constexpr Knob profile{"CNNGRAPH_PROFILE", "set (any value)",
                              "every run logs each step's time to stderr (device graphs time "
                              "each step on its own, without CUDA-graph recording)"};
inline constexpr Knob popcount{"CNNGRAPH_POPCOUNT", "avx512, popcnt, portable",
                               "forces the CPU binary-convolution popcount kernel (refused when "
                               "the CPU lacks it)"};
inline constexpr Knob cuda_f32_layout{"CNNGRAPH_CUDA_F32_LAYOUT", "nchw, nhwc",
                                      "forces the layout of strict-f32 CUDA convolutions (else "
                                      "autotune times both)"};
inline constexpr Knob cuda_stem_padding{"CNNGRAPH_CUDA_STEM_PADDING", "always, never",
                                        "forces or forbids padding a CUDA convolution of fewer "
                                        "than 4 input channels to 4 (the stem4 kernel)"};
inline constexpr Knob cuda_autotune_candidates{"CNNGRAPH_CUDA_AUTOTUNE_CANDIDATES", "1..64 (8)",
                                               "how many cuDNN engine configurations autotune "
                                               "times per convolution"};

inline constexpr Knob cuda_depthwise{"CNNGRAPH_CUDA_DEPTHWISE",
                                     "untiled, tiled-r4-t256, tiled-r2-t256, tiled-r4-t128, "
                                     "tiled-r2-t128, regs-r4-c4, regs-r2-c4",
                                     "forces the CUDA depthwise kernel's variant (a layer it does "
                                     "not take goes to cuDNN); else autotune times them"};
inline constexpr Knob cuda_pointwise{"CNNGRAPH_CUDA_POINTWISE", "cublaslt, cudnn",
                                     "forces the CUDA 1x1 convolutions (stride 1, no padding) to "
                                     "cuBLASLt's matrix product or to cuDNN; else autotune times "
                                     "both"};
inline constexpr Knob cuda_binary{"CNNGRAPH_CUDA_BINARY", "mma, popc",
                                  "forces the CUDA xnor / and convolution kernel: the 1-bit "
                                  "tensor cores where they take the layer, or CUDA-core popcounts "
                                  "(which also keeps images between binary layers in floats); "
                                  "else autotune times both"};
inline constexpr Knob cuda_symmetric_padding{"CNNGRAPH_CUDA_SYMMETRIC_PADDING", "on, off (off)",
                                             "on gives cuDNN a convolution's end padding equal "
                                             "to its start padding where no window reaches the "
                                             "added rows (an experiment: measured, then made "
                                             "the default or dropped)"};
inline constexpr Knob training_fusion{"CNNGRAPH_TRAINING_FUSION", "on, off",
                                      "overrides GraphOptions::training_fusion for every graph "
                                      "(fused against unfused training steps)"};

inline constexpr Knob bit_packing{"CNNGRAPH_BIT_PACKING", "on, off",
                                  "off stores every image between binary convolutions as "
                                  "floats (packed against unpacked binary networks)"};

inline constexpr const Knob* all[] = {&profile,
                                      &popcount,
                                      &cuda_f32_layout,
                                      &cuda_stem_padding,
                                      &cuda_autotune_candidates,
                                      &cuda_depthwise,
                                      &cuda_pointwise,
                                      &cuda_binary,
                                      &cuda_symmetric_padding,
                                      &training_fusion,
                                      &bit_packing};

// The knob's value, or null when it is not set.
inline const char* read(const Knob& knob) { return std::getenv(knob.name); }

}  // namespace cnngraph::detail::knobs
