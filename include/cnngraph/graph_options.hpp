// The options a Graph is compiled with (GraphOptions), the arithmetic it asks for
// (Precision), and where the loss scaling they set up stands (LossScaleStatus).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace cnngraph {

// Arithmetic of intermediates and filters. CPU backends: f32 everywhere; with bf16 the
// oneDNN backend runs convolutions and fully connected layers in bf16 (f32 accumulation)
// where the CPU has AVX-512 BF16; f16 and tf32_allowed compute in f32 there.
enum class Precision { f32, tf32_allowed, f16, bf16 };

struct GraphOptions {
  Precision precision = Precision::f32;
  bool deterministic = false;
  std::size_t workspace_limit_bytes = 0;  // 0: no limit
  bool cuda_graphs = true;
  // CUDA: at compile time, time up to 8 of cuDNN's candidate engines for each convolution
  // (at most 2 of them runtime-compiled) and keep the fastest, as PyTorch's
  // cudnn.benchmark does. Off: cuDNN's heuristic first choice, untimed. Autotuning makes
  // the first compile slower (seconds for a ResNet-50); plan_cache_file keeps its choices
  // for later processes.
  bool autotune = false;
  // CUDA: a file of chosen cuDNN plans. It is read when the graph is made (a missing file
  // is created), its plans are reused for the problems they match (same shapes, types,
  // options, GPU model and cuDNN version), and plans chosen anew are written back after
  // each compile. Empty: plans live in a cache of the process only.
  std::string plan_cache_file;
  // Log the kernel chosen for each step to stderr (like ONEDNN_VERBOSE).
  bool verbose = false;
  // Run the CPU kernels with denormal floats flushed to zero (x86 FTZ/DAZ) on every thread
  // they use; each thread gets its own setting back after the run. Values below 1.2e-38
  // become 0. Training drives gradients and optimizer moments there, and each denormal
  // costs a slow microcode assist.
  bool flush_denormals = true;
  // Training in Precision::f16 on CUDA: dynamic loss scaling, as PyTorch's GradScaler. The
  // loss's gradient is multiplied by the scale and the weight, bias and gamma/beta
  // gradients divided by it before any update. A step whose gradients overflow (not
  // finite) is skipped -- no weights, moments or running averages change -- and the scale
  // halved; after loss_scale_growth_interval good steps in a row it doubles. 0: no scaling
  // (a non-finite gradient then throws NumericalError, as in the other precisions).
  float initial_loss_scale = 65536.0f;
  int loss_scale_growth_interval = 2000;
  // How many sets of source sizes keep their compiled program (kernels, arena, result
  // buffers, CUDA graphs) at once. Compiling one more evicts the least recently run, which
  // is compiled again if its sizes come back. A server that sees many batch sizes holds at
  // most this many programs; 0 counts as 1.
  std::size_t max_compiled_sizes = 16;
  // Training graphs on the reference and CUDA backends: merge memory-bound neighbours into
  // one step each (batch norm + relu, addition + relu, and their gradients; a max pooling's
  // gradient with the relu's before it; docs/training.md lists the patterns). Results,
  // gradients and updates are those of the unfused graph up to rounding. The CPU (oneDNN)
  // backend runs every step on its own either way.
  bool training_fusion = true;
};

// Where a training graph's dynamic loss scaling stands (GraphOptions::initial_loss_scale).
struct LossScaleStatus {
  bool active = false;              // a Precision::f16 training graph on CUDA with a scale
  float scale = 1.0f;               // the scale the next step uses
  std::uint64_t skipped_steps = 0;  // steps skipped for overflowing gradients
};

}  // namespace cnngraph
