// One notation for an op problem, read by the op-case tests (tests/op_cases.cpp) and by the
// benchmarks' case files (bench/*_cases.txt; bench/problem_string.py is the Python twin).
// Standard library only, header-only: the library never depends on it. The notation is
// described in docs/testing.md:
//
//   [label:] op token token ...        (label: the first word, ending in ':')
//   token := <letter><int>[x<int>]   a dimension: n c h w k r s d g (r, s, d: height x width)
//          | name=value             an option (pad=same, alpha=1e-4, relu=0.1, type=xnor, ...;
//                                   a shape: src1=NxHxWxC)
//          | word                   a flag (relu, beta, nobias, ...)
//          | +word[=value]          a node that follows the op (+bn, +add, +relu)
#pragma once

#include <array>
#include <cctype>
#include <cstdlib>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace cnngraph::testing {

struct ProblemString {
  std::string label;  // a first word ending in ':', if any (the benchmarks' case names)
  std::string op;
  std::map<char, std::pair<int, int>> dims;  // letter -> (first, second); second = first if single
  std::vector<std::pair<std::string, std::string>> options;  // in order
  std::vector<std::string> flags;                            // in order
  std::vector<std::pair<std::string, std::string>> post;     // +word[=value], in order

  bool has(char dim) const { return dims.count(dim) != 0; }
  // The dimension's (first) value, or `fallback`; without a fallback a missing one throws.
  int dim(char letter, std::optional<int> fallback = std::nullopt) const {
    const auto it = dims.find(letter);
    if (it != dims.end()) return it->second.first;
    if (fallback) return *fallback;
    throw std::invalid_argument("problem '" + text() + "' has no '" + std::string(1, letter) +
                                "' dimension");
  }
  // Height x width (or y x x) of a two-part dimension: r3x5 -> {3, 5}; r3 -> {3, 3}.
  std::pair<int, int> dim2(char letter, std::pair<int, int> fallback) const {
    const auto it = dims.find(letter);
    return it == dims.end() ? fallback : it->second;
  }
  bool flag(const std::string& name) const {
    for (const auto& f : flags)
      if (f == name) return true;
    return false;
  }
  std::optional<std::string> option(const std::string& name) const {
    for (const auto& [key, value] : options)
      if (key == name) return value;
    return std::nullopt;
  }
  std::string option_or(const std::string& name, const std::string& fallback) const {
    return option(name).value_or(fallback);
  }
  double number_or(const std::string& name, double fallback) const {
    const auto v = option(name);
    return v ? std::stod(*v) : fallback;
  }
  // An image size option `name=NxHxWxC` (batch, height, width, channels: the library's NHWC
  // order), e.g. an arithmetic op's src1=2x1x1x8; nullopt when absent, std::invalid_argument
  // when it is not four positive numbers.
  std::optional<std::array<int, 4>> shape_option(const std::string& name) const {
    const auto v = option(name);
    if (!v) return std::nullopt;
    std::array<int, 4> shape{};
    std::size_t start = 0;
    for (std::size_t i = 0; i < 4; ++i) {
      const auto end = i < 3 ? v->find('x', start) : v->size();
      const std::string part = end == std::string::npos ? "" : v->substr(start, end - start);
      const bool digits = !part.empty() && part.size() <= 9 &&
                          part.find_first_not_of("0123456789") == std::string::npos;
      if (!digits || std::atoi(part.c_str()) <= 0 || (i == 3 && v->find('x', start) != v->npos))
        throw std::invalid_argument("problem '" + text() + "': " + name + "=" + *v +
                                    " is not NxHxWxC");
      shape[i] = std::atoi(part.c_str());
      start = end + 1;
    }
    return shape;
  }

  // The problem (without its label) in canonical order: op, dimensions (n c h w k r s d g, then any
  // others), options, flags, post nodes. Parsing text() gives the same problem.
  std::string text() const {
    std::string out = op;
    const std::string order = "nchwkrsdg";
    const auto put_dim = [&](char letter, const std::pair<int, int>& v) {
      out += " " + std::string(1, letter) + std::to_string(v.first);
      if (v.second != v.first) out += "x" + std::to_string(v.second);
    };
    for (char letter : order)
      if (has(letter)) put_dim(letter, dims.at(letter));
    for (const auto& [letter, v] : dims)
      if (order.find(letter) == std::string::npos) put_dim(letter, v);
    for (const auto& [key, value] : options) out += " " + key + "=" + value;
    for (const auto& f : flags) out += " " + f;
    for (const auto& [key, value] : post) out += " +" + key + (value.empty() ? "" : "=" + value);
    return out;
  }
};

namespace problem_string_detail {

inline bool is_int(const std::string& s) {
  if (s.empty()) return false;
  for (char ch : s)
    if (!std::isdigit(static_cast<unsigned char>(ch))) return false;
  return true;
}

inline int to_int(const std::string& s, const std::string& token) {
  if (!is_int(s) || s.size() > 9) throw std::invalid_argument("bad number in '" + token + "'");
  return std::atoi(s.c_str());
}

}  // namespace problem_string_detail

// Parses one problem; throws std::invalid_argument naming the token it cannot read.
inline ProblemString parse_problem(const std::string& line) {
  using namespace problem_string_detail;
  ProblemString p;
  std::string text = line;
  const auto hash = text.find('#');
  if (hash != std::string::npos) text.resize(hash);
  std::istringstream in(text);
  if (!(in >> p.op)) throw std::invalid_argument("empty problem string '" + line + "'");
  if (p.op.back() == ':') {  // a label first
    p.label = p.op.substr(0, p.op.size() - 1);
    if (!(in >> p.op)) throw std::invalid_argument("no op after the label in '" + line + "'");
  }
  for (std::string token; in >> token;) {
    if (token[0] == '+') {
      const auto eq = token.find('=');
      p.post.emplace_back(token.substr(1, eq == std::string::npos ? eq : eq - 1),
                          eq == std::string::npos ? "" : token.substr(eq + 1));
      if (p.post.back().first.empty()) throw std::invalid_argument("bad token '" + token + "'");
      continue;
    }
    const auto eq = token.find('=');
    if (eq != std::string::npos) {
      if (eq == 0) throw std::invalid_argument("bad token '" + token + "'");
      p.options.emplace_back(token.substr(0, eq), token.substr(eq + 1));
      continue;
    }
    // A dimension: one letter, then digits, optionally 'x' and digits.
    if (token.size() >= 2 && std::islower(static_cast<unsigned char>(token[0])) &&
        std::isdigit(static_cast<unsigned char>(token[1]))) {
      const std::string rest = token.substr(1);
      const auto x = rest.find('x');
      const int first = to_int(rest.substr(0, x), token);
      const int second = x == std::string::npos ? first : to_int(rest.substr(x + 1), token);
      if (!p.dims.emplace(token[0], std::pair{first, second}).second)
        throw std::invalid_argument("dimension '" + std::string(1, token[0]) +
                                    "' given twice in '" + line + "'");
      continue;
    }
    p.flags.push_back(token);
  }
  return p;
}

// The problems of a case file: one per line; blank lines and '#' comments skipped.
inline std::vector<ProblemString> read_problem_lines(std::istream& in) {
  std::vector<ProblemString> problems;
  for (std::string line; std::getline(in, line);) {
    const auto first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    problems.push_back(parse_problem(line));
  }
  return problems;
}

}  // namespace cnngraph::testing
