// The headers nearly every library source includes, compiled once per target
// (CNNGRAPH_PRECOMPILE_HEADERS): on CI's two cores, parsing them again in each of the
// library's hundred sources was half of its build time. Every source still includes what
// it uses, so a build without precompiled headers compiles alike.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cnngraph/cnngraph.hpp"
#include "ops/op.hpp"
