// The process-wide cache of chosen cuDNN plans, keyed by the problem (operation graph,
// shapes, types, options, GPU model and cuDNN version). An entry records which of the
// heuristics' configurations won (mode, place in the list, engine index), and cuDNN's JSON
// form of the plan where the engine offers one (runtime-compiled engines do: loading it
// skips their compilation). The cache can be
// loaded from and saved to a file, so that a second process skips heuristics, autotuning
// and kernel compilation (GraphOptions::plan_cache_file).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace cnngraph::detail::cuda {

struct PlanRecord {
  std::int64_t engine = -1;  // CUDNN_ATTR_ENGINE_GLOBAL_INDEX
  int heuristics_mode = -1;  // 0: CUDNN_HEUR_MODE_A, 1: CUDNN_HEUR_MODE_FALLBACK
  int position = -1;         // the configuration's place in that mode's list
  std::string json;          // empty: the engine has none
  double milliseconds = 0;   // measured when autotuned, else 0
  bool autotuned = false;
};

std::optional<PlanRecord> cached_plan(const std::string& key);
void store_plan(const std::string& key, PlanRecord record);
// Merges a file written by save_plan_cache into the cache. A missing file is no error (it
// is created by the first save); a file that is not a plan cache throws InvalidArgument.
void load_plan_cache(const std::string& path);
// Writes every entry (atomically: a temporary file renamed over `path`) when the cache has
// entries the file lacks. Throws DeviceError when the file cannot be written.
void save_plan_cache(const std::string& path);

}  // namespace cnngraph::detail::cuda
