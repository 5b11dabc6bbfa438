// The plan cache (see plan_cache.hpp): a map behind a mutex, and its JSON file.
#include "backends/cuda/cudnn/plan_cache.hpp"

#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include <unistd.h>

#include "cnngraph/errors.hpp"

namespace cnngraph::detail::cuda {

namespace {

constexpr const char* kFormat = "cnngraph cuda plan cache 2";

struct Cache {
  std::mutex mutex;
  std::map<std::string, PlanRecord> entries;
  // Per file: the keys it held when last loaded or saved (to know when a save is needed).
  std::map<std::string, std::set<std::string>> file_keys;
};

Cache& cache() {
  static Cache instance;
  return instance;
}

nlohmann::json to_json(const PlanRecord& r) {
  return {{"engine", r.engine}, {"heuristics_mode", r.heuristics_mode}, {"position", r.position},
          {"json", r.json},     {"milliseconds", r.milliseconds},       {"autotuned", r.autotuned}};
}

PlanRecord from_json(const nlohmann::json& j) {
  PlanRecord r;
  r.engine = j.at("engine").get<std::int64_t>();
  r.heuristics_mode = j.at("heuristics_mode").get<int>();
  r.position = j.at("position").get<int>();
  r.json = j.at("json").get<std::string>();
  r.milliseconds = j.value("milliseconds", -1.0);
  r.autotuned = j.value("autotuned", false);
  return r;
}

}  // namespace

std::optional<PlanRecord> cached_plan(const std::string& key) {
  Cache& c = cache();
  std::lock_guard lock(c.mutex);
  auto it = c.entries.find(key);
  if (it == c.entries.end()) return std::nullopt;
  return it->second;
}

void store_plan(const std::string& key, PlanRecord record) {
  Cache& c = cache();
  std::lock_guard lock(c.mutex);
  c.entries[key] = std::move(record);
}

void load_plan_cache(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return;
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json file;
  std::map<std::string, PlanRecord> loaded;
  try {
    file = nlohmann::json::parse(text.str());
    if (file.value("format", std::string()) != kFormat) {
      throw InvalidArgument("plan cache '" + path + "' is not a cnngraph plan cache (format '" +
                            file.value("format", std::string()) + "', expected '" + kFormat + "')");
    }
    for (const auto& [key, value] : file.at("plans").items()) loaded[key] = from_json(value);
  } catch (const nlohmann::json::exception& e) {
    throw InvalidArgument("plan cache '" + path + "' is not readable JSON: " + e.what());
  }
  Cache& c = cache();
  std::lock_guard lock(c.mutex);
  auto& keys = c.file_keys[path];
  for (auto& [key, record] : loaded) {
    keys.insert(key);
    c.entries.try_emplace(key, std::move(record));
  }
}

void save_plan_cache(const std::string& path) {
  Cache& c = cache();
  std::lock_guard lock(c.mutex);
  auto& keys = c.file_keys[path];
  bool news = false;
  for (const auto& entry : c.entries) news |= !keys.count(entry.first);
  if (!news) return;
  nlohmann::json plans = nlohmann::json::object();
  for (const auto& [key, record] : c.entries) plans[key] = to_json(record);
  const nlohmann::json file = {{"format", kFormat}, {"plans", plans}};
  const std::string temporary = path + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out << file.dump(1);
    if (!out) throw DeviceError("cannot write the plan cache '" + temporary + "'");
  }
  std::error_code error;
  std::filesystem::rename(temporary, path, error);
  if (error) {
    std::filesystem::remove(temporary, error);
    throw DeviceError("cannot write the plan cache '" + path + "': " + error.message());
  }
  for (const auto& entry : c.entries) keys.insert(entry.first);
}

}  // namespace cnngraph::detail::cuda
