#include "config/reader.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <sstream>

namespace md::config::detail {
namespace {

std::string quote_value(std::string_view v) {
  std::string s(v.substr(0, 60));
  if (v.size() > 60) s += "...";
  return "'" + s + "'";
}

std::string format_number(double v) {
  std::ostringstream o;
  o << v;
  return o.str();
}

std::string list_text(const std::vector<std::string>& v) {
  if (v.empty()) return "[]";
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
  return s + "]";
}

// Keys people bring from Kamal and Argo Rollouts, mapped to ours.
std::string alias_for(std::string_view key) {
  static const std::pair<std::string_view, std::string_view> kAliases[] = {
      {"healthcheck", "health"},
      {"cmd", "command"},
      {"servers", "hosts"},
      {"setWeight", "weight"},
      {"replicas", "count"},
      {"retain_releases", "keep_releases"},
      {"retain_containers", "keep_releases"},
      {"type", "kind"},
      {"strategy_kind", "kind"},
      {"environment", "env"},
      {"image", "artifact"},
      {"webhook_url", "url_secret"},
      {"url", "url_secret"},
      {"recipients", "to"},
      {"sender", "from"},
  };
  for (const auto& [from, to] : kAliases)
    if (from == key) return std::string(to);
  return "";
}

}  // namespace

std::string join_key(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

void Diags::add(Mark m, std::string key, std::string message, std::string hint) {
  if (recording()) return;
  list.push_back(
      Diagnostic{file, m.line, m.col, std::move(key), std::move(message), std::move(hint)});
}

Reader::Reader(Diags& d, const Node* node, std::string path, std::string schema, Mark where)
    : d_(d),
      node_(node && node->type == Node::Type::kMap ? node : nullptr),
      path_(std::move(path)),
      schema_(std::move(schema)),
      mark_(where) {}

const Node* Reader::node(std::string_view key) const {
  if (!node_) return nullptr;
  const Node* n = node_->find(key);
  return n && !n->is_null() ? n : nullptr;
}

std::string Reader::path_of(std::string_view key) const {
  const Node* n = node(key);
  return n ? n->path : join_key(path_, key);
}

Mark Reader::mark_of(std::string_view key) const {
  const Node* n = node(key);
  return n ? n->mark : mark_;
}

void Reader::error(std::string_view key, std::string message, std::string hint) {
  d_.add(mark_of(key), path_of(key), std::move(message), std::move(hint));
}

const Node* Reader::get(std::string_view key, std::string_view type, std::string default_text) {
  known_.emplace_back(key);
  if (d_.recording()) {
    d_.keys->push_back(
        KeyInfo{join_key(schema_, key), std::string(type), std::move(default_text), false});
    return nullptr;
  }
  return node(key);
}

const Node* Reader::scalar(std::string_view key, std::string_view type, std::string default_text,
                           std::string_view expected) {
  const Node* n = get(key, type, std::move(default_text));
  if (!n) return nullptr;
  if (n->type != Node::Type::kScalar) {
    d_.add(n->mark, n->path,
           "expected " + std::string(expected) + ", got " + std::string(n->type_name()));
    return nullptr;
  }
  return n;
}

bool Reader::str(std::string_view key, std::string& out, Check check,
                 std::string_view doc_default) {
  std::string def = !doc_default.empty() ? std::string(doc_default) : out.empty() ? "\"\"" : out;
  const Node* n = scalar(key, "string", def, "a string");
  if (!n) return false;
  if (check) {
    if (auto p = check(n->scalar)) {
      d_.add(n->mark, n->path, p->message, p->hint);
      return false;
    }
  }
  out = n->scalar;
  return true;
}

bool Reader::integer(std::string_view key, int64_t& out, int64_t lo, int64_t hi,
                     std::string_view doc_default) {
  std::string def = doc_default.empty() ? std::to_string(out) : std::string(doc_default);
  const Node* n = scalar(key, "integer", def, "an integer");
  if (!n) return false;
  const std::string& s = n->scalar;
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec == std::errc::result_out_of_range ||
      (ec == std::errc() && end == s.data() + s.size() && (v < lo || v > hi))) {
    d_.add(n->mark, n->path, quote_value(s) + " is out of range",
           "use a whole number from " + std::to_string(lo) + " to " + std::to_string(hi));
    return false;
  }
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) {
    d_.add(n->mark, n->path, quote_value(s) + " is not a whole number",
           "use a whole number from " + std::to_string(lo) + " to " + std::to_string(hi));
    return false;
  }
  out = v;
  return true;
}

bool Reader::integer(std::string_view key, int& out, int lo, int hi, std::string_view doc_default) {
  int64_t v = out;
  if (!integer(key, v, lo, hi, doc_default)) return false;
  out = static_cast<int>(v);
  return true;
}

bool Reader::number(std::string_view key, double& out, double lo, double hi) {
  const Node* n = scalar(key, "number", format_number(out), "a number");
  if (!n) return false;
  const std::string& s = n->scalar;
  double v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  std::string range = "use a number from " + format_number(lo) + " to " + format_number(hi);
  if (ec != std::errc() || end != s.data() + s.size() || !std::isfinite(v)) {
    d_.add(n->mark, n->path, quote_value(s) + " is not a number", range);
    return false;
  }
  if (v < lo || v > hi) {
    d_.add(n->mark, n->path, quote_value(s) + " is out of range", range);
    return false;
  }
  out = v;
  return true;
}

bool Reader::boolean(std::string_view key, bool& out) {
  const Node* n = scalar(key, "boolean", out ? "true" : "false", "true or false");
  if (!n) return false;
  if (n->scalar == "true" || n->scalar == "false") {
    out = n->scalar == "true";
    return true;
  }
  std::string hint = "write true or false";
  if (n->scalar == "yes" || n->scalar == "on" || n->scalar == "True" || n->scalar == "TRUE")
    hint = "write true (only true and false are booleans here)";
  else if (n->scalar == "no" || n->scalar == "off" || n->scalar == "False" || n->scalar == "FALSE")
    hint = "write false (only true and false are booleans here)";
  d_.add(n->mark, n->path, quote_value(n->scalar) + " is not a boolean", hint);
  return false;
}

bool Reader::duration(std::string_view key, Millis& out, Millis lo, Millis hi) {
  const Node* n = scalar(key, "duration", format_duration(out), "a duration like 30s");
  if (!n) return false;
  auto d = parse_duration(n->scalar);
  if (!d) {
    d_.add(n->mark, n->path, d.error().message(),
           "write a number and a unit: 500ms, 30s, 5m, 1h, 1h30m");
    return false;
  }
  if (*d < lo || *d > hi) {
    std::string range = hi.count() == std::numeric_limits<int64_t>::max()
                            ? "use at least " + format_duration(lo)
                            : "use " + format_duration(lo) + " to " + format_duration(hi);
    d_.add(n->mark, n->path, quote_value(n->scalar) + " is out of range", range);
    return false;
  }
  out = *d;
  return true;
}

bool Reader::choice_impl(std::string_view key, const std::vector<std::string_view>& names,
                         size_t& index, std::string default_text) {
  const Node* n = scalar(key, "enum", std::move(default_text), "one of the listed values");
  if (!n) return false;
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == n->scalar) {
      index = i;
      return true;
    }
  }
  std::vector<std::string> all(names.begin(), names.end());
  std::string hint = "valid values: ";
  for (size_t i = 0; i < all.size(); ++i) hint += (i ? ", " : "") + all[i];
  std::string near = closest(n->scalar, all);
  if (!near.empty()) hint = "did you mean '" + near + "'? " + hint;
  d_.add(n->mark, n->path, "unknown value " + quote_value(n->scalar), hint);
  return false;
}

bool Reader::strings(std::string_view key, std::vector<std::string>& out, Check each,
                     std::string_view doc_default) {
  std::string def = doc_default.empty() ? list_text(out) : std::string(doc_default);
  const Node* n = get(key, "list of strings", def);
  if (!n) return false;
  if (n->type != Node::Type::kSeq) {
    std::string hint = n->type == Node::Type::kScalar ? "write a list: [" + n->scalar + "]" : "";
    d_.add(n->mark, n->path, "expected a list of strings, got " + std::string(n->type_name()),
           hint);
    return false;
  }
  std::vector<std::string> v;
  bool good = true;
  for (const Node& item : n->seq) {
    if (item.type != Node::Type::kScalar) {
      d_.add(item.mark, item.path, "expected a string, got " + std::string(item.type_name()));
      good = false;
      continue;
    }
    if (each) {
      if (auto p = each(item.scalar)) {
        d_.add(item.mark, item.path, p->message, p->hint);
        good = false;
        continue;
      }
    }
    v.push_back(item.scalar);
  }
  if (good) out = std::move(v);
  return good;
}

bool Reader::string_map(std::string_view key, std::map<std::string, std::string>& out,
                        Check key_check) {
  const Node* n = get(key, "map of strings", "{}");
  if (!n) return false;
  if (n->type != Node::Type::kMap) {
    d_.add(n->mark, n->path, "expected a map of NAME: value, got " + std::string(n->type_name()));
    return false;
  }
  bool good = true;
  for (const Entry& e : n->map) {
    if (key_check) {
      if (auto p = key_check(e.key)) {
        d_.add(e.key_mark, e.value.path, p->message, p->hint);
        good = false;
        continue;
      }
    }
    if (e.value.type == Node::Type::kMap || e.value.type == Node::Type::kSeq) {
      d_.add(e.value.mark, e.value.path,
             "expected a string, got " + std::string(e.value.type_name()));
      good = false;
      continue;
    }
    out[e.key] = e.value.scalar;  // null -> ""
  }
  return good;
}

void Reader::finish(std::string (*extra_hint)(const std::string& key)) {
  if (!node_ || d_.recording()) return;
  for (const Entry& e : node_->map) {
    if (std::find(known_.begin(), known_.end(), e.key) != known_.end()) continue;
    std::string hint = extra_hint ? extra_hint(e.key) : "";
    if (hint.empty()) {
      std::string near = closest(e.key, known_);
      std::string alias = alias_for(e.key);
      if (near.empty() && !alias.empty() &&
          std::find(known_.begin(), known_.end(), alias) != known_.end())
        near = alias;
      if (!near.empty())
        hint = "did you mean '" + near + "'?";
      else {
        std::vector<std::string> sorted = known_;
        std::sort(sorted.begin(), sorted.end());
        hint = "valid keys here: ";
        for (size_t i = 0; i < sorted.size(); ++i) hint += (i ? ", " : "") + sorted[i];
      }
    }
    d_.add(e.key_mark, e.value.path, "unknown key '" + e.key + "'", hint);
  }
}

}  // namespace md::config::detail
