// Internal: typed, located reads from one map of the tree. Every accessor
// registers its key (so finish() can name unknown keys and suggest the
// closest valid one) and, in record mode, describes it for schema_keys().
#pragma once

#include <initializer_list>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "config/tree.h"

namespace md::config::detail {

// Diagnostics of one conversion, plus the key catalogue in record mode.
struct Diags {
  std::string file;
  std::vector<Diagnostic> list;
  std::vector<KeyInfo>* keys = nullptr;  // set: record mode (no diagnostics)
  bool recording() const { return keys != nullptr; }
  void add(Mark m, std::string key, std::string message, std::string hint = "");
};

// A problem with one value: what is wrong and how to fix it ("" = no hint).
struct Problem {
  std::string message;
  std::string hint;
};
// Returns a Problem for a bad value, or nullopt.
using Check = std::optional<Problem> (*)(const std::string& value);

class Reader {
 public:
  // `node` is the map to read (nullptr or null: every key absent). `path` is
  // its dotted key in the file, `schema` its key in schema_keys(), `where`
  // the place to report keys that are missing.
  Reader(Diags& d, const Node* node, std::string path, std::string schema, Mark where);

  Diags& diags() { return d_; }
  const std::string& path() const { return path_; }
  Mark mark() const { return mark_; }

  // Each returns true when the key is present (not null) and valid; `out`
  // keeps its value (the default) otherwise.
  bool str(std::string_view key, std::string& out, Check check = nullptr,
           std::string_view doc_default = {});
  bool integer(std::string_view key, int64_t& out, int64_t lo, int64_t hi,
               std::string_view doc_default = {});
  bool integer(std::string_view key, int& out, int lo, int hi, std::string_view doc_default = {});
  bool number(std::string_view key, double& out, double lo, double hi);
  bool boolean(std::string_view key, bool& out);
  bool duration(std::string_view key, Millis& out, Millis lo = Millis(0),
                Millis hi = Millis(std::numeric_limits<int64_t>::max()));
  template <class E>
  bool choice(std::string_view key, E& out,
              std::initializer_list<std::pair<std::string_view, E>> values,
              std::string_view doc_default = {});
  bool strings(std::string_view key, std::vector<std::string>& out, Check each = nullptr,
               std::string_view doc_default = {});
  bool string_map(std::string_view key, std::map<std::string, std::string>& out, Check key_check);

  // A nested map; `fn` always runs (with every key absent when it is).
  template <class F>
  void object(std::string_view key, F fn);
  // A map of user-chosen names to maps: fn(name, reader) per entry.
  template <class F>
  bool named(std::string_view key, Check name_check, F fn);
  // A list of maps: fn(index, reader) per item.
  template <class F>
  bool list(std::string_view key, F fn, std::string_view doc_default = {});

  // Registers `key` and returns its node (nullptr when absent or null),
  // for keys whose content the caller reads itself.
  const Node* raw(std::string_view key, std::string_view type, std::string default_text) {
    return get(key, type, std::move(default_text));
  }
  // The value node of a key (nullptr when absent or null). Does not register.
  const Node* node(std::string_view key) const;
  // Dotted key and place of `key`: its value when present, else this map.
  std::string path_of(std::string_view key) const;
  Mark mark_of(std::string_view key) const;
  void error(std::string_view key, std::string message, std::string hint = "");
  // Reports every key of the map that no accessor asked for. `extra_hint`
  // maps an unknown key to a custom hint ("" = use "did you mean").
  void finish(std::string (*extra_hint)(const std::string& key) = nullptr);

 private:
  // Registers `key`; returns its node when present and not null.
  const Node* get(std::string_view key, std::string_view type, std::string default_text);
  const Node* scalar(std::string_view key, std::string_view type, std::string default_text,
                     std::string_view expected);
  bool choice_impl(std::string_view key, const std::vector<std::string_view>& names, size_t& index,
                   std::string default_text);

  Diags& d_;
  const Node* node_;
  std::string path_, schema_;
  Mark mark_;
  std::vector<std::string> known_;
};

std::string join_key(const std::string& path, std::string_view key);

template <class E>
bool Reader::choice(std::string_view key, E& out,
                    std::initializer_list<std::pair<std::string_view, E>> values,
                    std::string_view doc_default) {
  std::vector<std::string_view> names;
  std::string current(doc_default);
  for (const auto& [name, v] : values) {
    names.push_back(name);
    if (v == out && current.empty()) current = std::string(name);
  }
  size_t index = 0;
  if (!choice_impl(key, names, index, current)) return false;
  out = (values.begin() + index)->second;
  return true;
}

template <class F>
void Reader::object(std::string_view key, F fn) {
  const Node* n = get(key, "map", "");
  std::string k(key);
  if (n && n->type != Node::Type::kMap) {
    d_.add(n->mark, n->path, "expected a map of settings, got " + std::string(n->type_name()));
    n = nullptr;
  }
  Reader sub(d_, n, path_of(key), join_key(schema_, key), n ? n->key_mark : mark_of(key));
  fn(sub);
  sub.finish();
}

template <class F>
bool Reader::named(std::string_view key, Check name_check, F fn) {
  const Node* n = get(key, "map", "{}");
  if (d_.recording()) {
    Reader sub(d_, nullptr, "", join_key(schema_, key) + ".<name>", {});
    fn(std::string("<name>"), sub);
    return false;
  }
  if (!n) return false;
  if (n->type != Node::Type::kMap) {
    d_.add(n->mark, n->path,
           "expected a map of names to settings, got " + std::string(n->type_name()));
    return false;
  }
  for (const Entry& e : n->map) {
    if (name_check) {
      if (auto p = name_check(e.key)) {
        d_.add(e.key_mark, e.value.path, p->message, p->hint);
        continue;
      }
    }
    const Node* v = &e.value;
    if (v->type != Node::Type::kMap && !v->is_null()) {
      d_.add(v->mark, v->path, "expected a map of settings, got " + std::string(v->type_name()));
      continue;
    }
    Reader sub(d_, v->is_null() ? nullptr : v, v->path, join_key(schema_, key) + ".<name>",
               e.key_mark);
    fn(e.key, sub);
    sub.finish();
  }
  return true;
}

template <class F>
bool Reader::list(std::string_view key, F fn, std::string_view doc_default) {
  const Node* n = get(key, "list", doc_default.empty() ? "[]" : std::string(doc_default));
  if (d_.recording()) {
    Reader sub(d_, nullptr, "", join_key(schema_, key) + "[]", {});
    fn(size_t{0}, sub);
    return false;
  }
  if (!n) return false;
  if (n->type != Node::Type::kSeq) {
    d_.add(n->mark, n->path, "expected a list, got " + std::string(n->type_name()));
    return false;
  }
  for (size_t i = 0; i < n->seq.size(); ++i) {
    const Node& item = n->seq[i];
    if (item.type != Node::Type::kMap) {
      d_.add(item.mark, item.path,
             "expected a map of settings, got " + std::string(item.type_name()));
      continue;
    }
    Reader sub(d_, &item, item.path, join_key(schema_, key) + "[]", item.mark);
    fn(i, sub);
    sub.finish();
  }
  return true;
}

}  // namespace md::config::detail
