// The headers every test includes, compiled once (cnngraph_test_support) and reused by each
// test program (CNNGRAPH_PRECOMPILE_HEADERS): GoogleTest's and the library's headers were
// half of each test source's build time. Every test still includes what it uses.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cnngraph/cnngraph.hpp"
#include "support.hpp"
