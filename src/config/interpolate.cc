// ${VAR} interpolation from the process environment. Never reads the vault:
// secrets reach processes by name, at spawn time, not through the file.
#include <cctype>

#include "config/tree.h"

namespace md::config::detail {
namespace {

bool name_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

const char* kUndefinedHint =
    "export it before running meshdeploy, give a default with ${NAME:-value}, or write "
    "$${NAME} to pass it to the process's shell unexpanded";

}  // namespace

Interpolated interpolate(std::string_view text, const EnvLookup& lookup) {
  Interpolated r;
  std::string& out = r.value;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (text.compare(i, 3, "$${") == 0) {  // escape: a literal ${
      out += "${";
      i += 3;
      continue;
    }
    if (text.compare(i, 2, "${") != 0) {
      out += text[i++];
      continue;
    }
    size_t close = text.find('}', i + 2);
    if (close == std::string_view::npos) {
      r.errors.push_back(
          {i, "unterminated '${'", "close it with '}', or write '$${' for a literal '${'"});
      out.append(text.substr(i));
      break;
    }
    std::string_view body = text.substr(i + 2, close - i - 2);
    size_t n = 0;
    while (n < body.size() && name_char(body[n])) ++n;
    std::string name(body.substr(0, n));
    std::string_view rest = body.substr(n);
    bool has_default = false, default_if_empty = false;
    std::string_view word;
    if (rest.substr(0, 2) == ":-") {
      has_default = default_if_empty = true;
      word = rest.substr(2);
    } else if (rest.substr(0, 1) == "-") {
      has_default = true;
      word = rest.substr(1);
    } else if (!rest.empty()) {
      n = std::string_view::npos;  // invalid
    }
    if (name.empty() || !name_start(name[0]) || n == std::string_view::npos) {
      r.errors.push_back({i, "invalid variable reference '${" + std::string(body) + "}'",
                          "a name is letters, digits and '_', not starting with a digit; "
                          "defaults are written ${NAME:-value}"});
      i = close + 1;
      continue;
    }
    std::optional<std::string> v = lookup(name);
    if (v && !(default_if_empty && v->empty()))
      out += *v;
    else if (has_default)
      out += word;
    else {
      std::string hint = kUndefinedHint;
      // Search on after each replacement: the name may itself contain "NAME".
      for (size_t at = 0; (at = hint.find("NAME", at)) != std::string::npos; at += name.size())
        hint.replace(at, 4, name);
      r.errors.push_back({i, "undefined environment variable '" + name + "'", hint});
    }
    i = close + 1;
  }
  return r;
}

void interpolate_tree(Node& node, const EnvLookup& lookup, const std::string& file,
                      std::vector<Diagnostic>& out) {
  switch (node.type) {
    case Node::Type::kNull:
      return;
    case Node::Type::kMap:
      for (Entry& e : node.map) interpolate_tree(e.value, lookup, file, out);
      return;
    case Node::Type::kSeq:
      for (Node& n : node.seq) interpolate_tree(n, lookup, file, out);
      return;
    case Node::Type::kScalar:
      break;
  }
  if (node.scalar.find("${") == std::string::npos) return;
  Interpolated r = interpolate(node.scalar, lookup);
  // In a one-line plain scalar the offset maps to a column exactly; quoted or
  // folded text does not, so those point at the value's start.
  bool exact = node.plain && node.scalar.find('\n') == std::string::npos;
  for (const InterpolationError& e : r.errors) {
    int col = node.mark.col + (exact ? static_cast<int>(e.offset) : 0);
    out.push_back(Diagnostic{file, node.mark.line, col, node.path, e.message, e.hint});
  }
  node.scalar = std::move(r.value);
}

}  // namespace md::config::detail
