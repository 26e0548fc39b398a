// Internal: the configuration file as a plain tree with source positions.
// yaml-cpp is used only by tree.cc (parse) and render.cc (output); every other
// file of config/ works on this tree. Not part of the contract.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace md::config::detail {

struct Mark {
  int line = 0;  // 1-based; 0 = unknown
  int col = 0;   // 1-based
};

struct Entry;

// One YAML node. Aliases are expanded (bounded, see parse_yaml); merge keys
// (`<<: *anchor`) are applied.
struct Node {
  enum class Type { kNull, kScalar, kMap, kSeq };
  Type type = Type::kNull;
  std::string scalar;      // kScalar
  bool plain = false;      // kScalar written without quotes or block style
  std::vector<Entry> map;  // kMap, in file order
  std::vector<Node> seq;   // kSeq
  Mark mark;               // where the value starts
  Mark key_mark;           // where the key that holds it starts (= mark for list items)
  std::string path;        // dotted key of the value in the file, e.g. "defaults.hosts[0].name"

  bool is_null() const { return type == Type::kNull; }
  const Node* find(std::string_view key) const;  // nullptr when absent
  std::string_view type_name() const;            // "a map", "a list", "a scalar", "null"
};

struct Entry {
  std::string key;
  Mark key_mark;
  Node value;
};

// Parses YAML text into a tree. Syntax errors, non-scalar or duplicate keys,
// more than kMaxNodes nodes after alias expansion and nesting deeper than
// kMaxDepth become diagnostics (and no tree).
inline constexpr size_t kMaxNodes = 100000;
inline constexpr int kMaxDepth = 64;
struct Parsed {
  std::optional<Node> root;
  std::vector<Diagnostic> diagnostics;
};
Parsed parse_yaml(std::string_view text, const std::string& file);

// Looks up one process environment variable (nullopt = undefined).
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

// ${VAR} interpolation of one string. `$${` is a literal `${`; `${VAR:-word}`
// uses word when VAR is unset or empty, `${VAR-word}` only when unset.
// A lone `$` (e.g. `$PORT` for the process's shell) is left alone.
struct InterpolationError {
  size_t offset = 0;  // byte offset of the `${` in the input
  std::string message;
  std::string hint;
};
struct Interpolated {
  std::string value;
  std::vector<InterpolationError> errors;  // every problem in the string
};
Interpolated interpolate(std::string_view text, const EnvLookup& lookup);

// Interpolates every scalar value (never a key) of the tree in place, adding
// a diagnostic per undefined variable or malformed reference.
void interpolate_tree(Node& root, const EnvLookup& lookup, const std::string& file,
                      std::vector<Diagnostic>& out);

// Overlay semantics: maps merge key by key, a null in the overlay removes the
// inherited key, anything else (scalars, lists) replaces.
Node merge(const Node& base, const Node& overlay);

// The closest of `candidates` to `word` (case-insensitive optimal string
// alignment distance, at most max(2, |word|/3)), or "" if none is close.
std::string closest(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace md::config::detail
