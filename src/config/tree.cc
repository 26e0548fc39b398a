// The yaml-cpp adapter: YAML text -> detail::Node. Every yaml-cpp exception
// is caught here and becomes a diagnostic.
#include "config/tree.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <sstream>

namespace md::config::detail {
namespace {

Mark to_mark(const YAML::Mark& m) {
  if (m.is_null() || m.line < 0) return {};
  return {m.line + 1, m.column + 1};
}

std::string join(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

class Converter {
 public:
  Converter(const std::string& file, std::vector<Diagnostic>& out) : file_(file), out_(out) {}

  bool failed() const { return failed_; }

  Node convert(const YAML::Node& y, const std::string& path, Mark fallback, int depth) {
    Node n;
    n.path = path;
    n.mark = to_mark(y.Mark());
    if (n.mark.line == 0) n.mark = fallback;
    n.key_mark = fallback;
    if (failed_) return n;
    if (++count_ > kMaxNodes) {
      fatal(n.mark, path, "the file expands to more than " + std::to_string(kMaxNodes) + " nodes",
            "check for aliases (*name) that repeat large parts of the file");
      return n;
    }
    if (depth > kMaxDepth) {
      fatal(n.mark, path, "nested deeper than " + std::to_string(kMaxDepth) + " levels",
            "check for an alias that refers to itself");
      return n;
    }
    switch (y.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null:
        n.type = Node::Type::kNull;
        break;
      case YAML::NodeType::Scalar:
        n.type = Node::Type::kScalar;
        n.scalar = y.Scalar();
        n.plain = y.Tag() == "?";
        break;
      case YAML::NodeType::Sequence: {
        n.type = Node::Type::kSeq;
        size_t i = 0;
        for (const YAML::Node& item : y) {
          n.seq.push_back(convert(item, path + "[" + std::to_string(i++) + "]", n.mark, depth + 1));
          n.seq.back().key_mark = n.seq.back().mark;
          if (failed_) break;
        }
        break;
      }
      case YAML::NodeType::Map:
        n.type = Node::Type::kMap;
        convert_map(y, n, depth);
        break;
    }
    return n;
  }

 private:
  void convert_map(const YAML::Node& y, Node& n, int depth) {
    std::vector<const YAML::Node*> merges;
    std::vector<YAML::Node> keep;  // iterator values are temporaries
    for (auto it = y.begin(); it != y.end() && !failed_; ++it) {
      const YAML::Node k = it->first;
      const YAML::Node v = it->second;
      Mark km = to_mark(k.Mark());
      if (km.line == 0) km = n.mark;
      if (!k.IsScalar()) {
        error(km, n.path,
              "a key must be a plain name, not " + std::string(k.IsMap()        ? "a map"
                                                               : k.IsSequence() ? "a list"
                                                                                : "null"));
        continue;
      }
      std::string key = k.Scalar();
      if (key == "<<" && k.Tag() == "?") {
        keep.push_back(v);
        continue;
      }
      auto dup =
          std::find_if(n.map.begin(), n.map.end(), [&](const Entry& e) { return e.key == key; });
      if (dup != n.map.end()) {
        error(km, join(n.path, key),
              "duplicate key (first at line " + std::to_string(dup->key_mark.line) + ")",
              "remove one of them");
        continue;
      }
      Entry e;
      e.key = key;
      e.key_mark = km;
      e.value = convert(v, join(n.path, key), km, depth + 1);
      n.map.push_back(std::move(e));
    }
    // Merge keys: entries of the merged map(s) that the map does not set itself.
    for (const YAML::Node& m : keep) {
      std::vector<YAML::Node> sources;
      if (m.IsMap())
        sources.push_back(m);
      else if (m.IsSequence())
        for (const YAML::Node& s : m) sources.push_back(s);
      for (const YAML::Node& src : sources) {
        if (failed_) return;
        if (!src.IsMap()) {
          error(to_mark(src.Mark()), join(n.path, "<<"),
                "a merge key ('<<') needs a map or a list of maps");
          continue;
        }
        Node merged = convert(src, n.path, n.mark, depth);
        for (Entry& e : merged.map) {
          bool present = std::any_of(n.map.begin(), n.map.end(),
                                     [&](const Entry& x) { return x.key == e.key; });
          if (!present) n.map.push_back(std::move(e));
        }
      }
    }
  }

  void error(Mark m, const std::string& key, std::string msg, std::string hint = "") {
    out_.push_back(Diagnostic{file_, m.line, m.col, key, std::move(msg), std::move(hint)});
  }
  // A limit was hit: stop converting (the rest would only repeat it).
  void fatal(Mark m, const std::string& key, std::string msg, std::string hint) {
    error(m, key, std::move(msg), std::move(hint));
    failed_ = true;
  }

  const std::string& file_;
  std::vector<Diagnostic>& out_;
  size_t count_ = 0;
  bool failed_ = false;
};

// yaml-cpp's messages are lower-case phrases; keep them, drop its position
// prefix (we print our own).
std::string yaml_message(const YAML::Exception& e) {
  std::string m = e.msg;
  if (m.empty()) m = e.what();
  return m;
}

size_t osa_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = std::tolower(static_cast<unsigned char>(a[i - 1])) ==
                            std::tolower(static_cast<unsigned char>(b[j - 1]))
                        ? 0
                        : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

}  // namespace

const Node* Node::find(std::string_view key) const {
  for (const Entry& e : map)
    if (e.key == key) return &e.value;
  return nullptr;
}

std::string_view Node::type_name() const {
  switch (type) {
    case Type::kNull:
      return "null";
    case Type::kScalar:
      return "a scalar";
    case Type::kMap:
      return "a map";
    case Type::kSeq:
      return "a list";
  }
  return "?";
}

// Finds where a second YAML document starts ("---" after the first one).
// yaml-cpp's Load() reads the first document only and ignores the rest.
class DocumentCounter : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& m) override {
    if (++count_ == 2) second_ = m;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
  int count() const { return count_; }
  const YAML::Mark& second() const { return second_; }

 private:
  int count_ = 0;
  YAML::Mark second_;
};

// The mark of a second document in `text`, if there is one.
std::optional<Mark> second_document(std::string_view text) {
  std::istringstream in{std::string(text)};
  DocumentCounter c;
  try {
    YAML::Parser parser(in);
    while (c.count() < 2 && parser.HandleNextDocument(c)) {
    }
  } catch (const std::exception&) {
    // A syntax error inside a later document: its start is still known.
  }
  if (c.count() < 2) return std::nullopt;
  Mark m = to_mark(c.second());
  if (m.line == 0) m = Mark{1, 1};
  return m;
}

Parsed parse_yaml(std::string_view text, const std::string& file) {
  Parsed p;
  YAML::Node y;
  try {
    y = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    Mark m = to_mark(e.mark);
    p.diagnostics.push_back(Diagnostic{file, m.line, m.col, "", "YAML syntax: " + yaml_message(e),
                                       "check the indentation and quoting around this place"});
    return p;
  } catch (const std::exception& e) {
    p.diagnostics.push_back(Diagnostic{file, 0, 0, "", std::string("YAML: ") + e.what(), ""});
    return p;
  }
  if (auto m = second_document(text)) {
    p.diagnostics.push_back(
        Diagnostic{file, m->line, m->col, "",
                   "a second YAML document starts here; meshdeploy.yml holds one "
                   "document",
                   "remove the '---' line and what follows, or merge it into the "
                   "first document"});
    return p;
  }
  try {
    Converter c(file, p.diagnostics);
    size_t before = p.diagnostics.size();
    Node root = c.convert(y, "", Mark{1, 1}, 0);
    if (p.diagnostics.size() == before) p.root = std::move(root);
  } catch (const std::exception& e) {
    // WHY: yaml-cpp throws from iterators and accessors on malformed trees.
    p.diagnostics.push_back(Diagnostic{file, 0, 0, "", std::string("YAML: ") + e.what(), ""});
  }
  return p;
}

Node merge(const Node& base, const Node& overlay) {
  if (overlay.type != Node::Type::kMap || base.type != Node::Type::kMap) return overlay;
  Node out = base;
  out.mark = overlay.mark;
  out.key_mark = overlay.key_mark;
  out.path = overlay.path;
  for (const Entry& e : overlay.map) {
    auto it = std::find_if(out.map.begin(), out.map.end(),
                           [&](const Entry& x) { return x.key == e.key; });
    if (e.value.is_null()) {
      if (it != out.map.end()) out.map.erase(it);
      continue;
    }
    if (it == out.map.end())
      out.map.push_back(e);
    else {
      it->value = merge(it->value, e.value);
      it->key_mark = e.key_mark;
    }
  }
  return out;
}

std::string closest(std::string_view word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = std::max<size_t>(2, word.size() / 3) + 1;
  for (const std::string& c : candidates) {
    size_t d = osa_distance(word, c);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  // "prod" for "production": a prefix of at least 3 characters also counts.
  if (best.empty() && word.size() >= 3) {
    for (const std::string& c : candidates)
      if (c.size() > word.size() && osa_distance(word, c.substr(0, word.size())) == 0) return c;
  }
  return best;
}

}  // namespace md::config::detail
