// The views of a text the redactor searches besides the text itself: line
// breaks removed (a secret split by "\n" or "\r\n"), and escapes decoded once
// and twice (JSON in any escaping style, JSON in JSON, percent-encoding of
// any subset of the characters, XML/HTML entities, and their mixtures).
#include <cstring>

#include "secrets/redact_impl.h"

namespace md::secrets::internal {
namespace {

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Parses `n` hex digits at s[i]; -1 if they are not all hex.
long hex_at(std::string_view s, size_t i, size_t n) {
  if (i + n > s.size()) return -1;
  long v = 0;
  for (size_t k = 0; k < n; ++k) {
    int h = hex(s[i + k]);
    if (h < 0) return -1;
    v = v * 16 + h;
  }
  return v;
}

void put_utf8(std::string& out, unsigned long cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Decodes the escape at s[i] into `out`; returns its length, 0 if none.
size_t decode_one(std::string_view s, size_t i, bool backslash, std::string& out) {
  char c = s[i];
  if (c == '%') {
    long v = hex_at(s, i + 1, 2);
    if (v < 0) return 0;
    out += static_cast<char>(v);
    return 3;
  }
  if (c == '\\') {
    if (!backslash || i + 1 >= s.size()) return 0;
    switch (s[i + 1]) {
      case '"':
      case '\\':
      case '/':
      case '\'':
        out += s[i + 1];
        return 2;
      case 'b':
        out += '\b';
        return 2;
      case 'f':
        out += '\f';
        return 2;
      case 'n':
        out += '\n';
        return 2;
      case 'r':
        out += '\r';
        return 2;
      case 't':
        out += '\t';
        return 2;
      case 'x': {
        long v = hex_at(s, i + 2, 2);
        if (v < 0) return 0;
        out += static_cast<char>(v);
        return 4;
      }
      case 'u': {
        long v = hex_at(s, i + 2, 4);
        if (v < 0) return 0;
        if (v >= 0xD800 && v < 0xDC00 && s.substr(i + 6, 2) == "\\u") {
          long lo = hex_at(s, i + 8, 4);
          if (lo >= 0xDC00 && lo < 0xE000) {
            put_utf8(out, 0x10000 + ((static_cast<unsigned long>(v) - 0xD800) << 10) +
                              (static_cast<unsigned long>(lo) - 0xDC00));
            return 12;
          }
        }
        put_utf8(out, static_cast<unsigned long>(v));
        return 6;
      }
      default:
        return 0;
    }
  }
  // '&': named or numeric entity, at most 10 bytes ("&#x10FFFF;").
  size_t semi = s.substr(i, 11).find(';');
  if (semi == std::string_view::npos) return 0;
  std::string_view name = s.substr(i + 1, semi - 1);
  static constexpr std::pair<std::string_view, char> kNamed[] = {
      {"lt", '<'}, {"gt", '>'}, {"amp", '&'}, {"quot", '"'}, {"apos", '\''}};
  for (const auto& [n, ch] : kNamed) {
    if (name == n) {
      out += ch;
      return semi + 1;
    }
  }
  if (name.size() >= 2 && name[0] == '#') {
    unsigned long cp = 0;
    bool hexa = name[1] == 'x' || name[1] == 'X';
    size_t k = hexa ? 2 : 1;
    if (k >= name.size()) return 0;
    for (; k < name.size(); ++k) {
      int d = hexa ? hex(name[k]) : (name[k] >= '0' && name[k] <= '9' ? name[k] - '0' : -1);
      if (d < 0) return 0;
      cp = cp * (hexa ? 16 : 10) + static_cast<unsigned long>(d);
    }
    if (cp > 0x10FFFF) return 0;
    put_utf8(out, cp);
    return semi + 1;
  }
  return 0;
}

}  // namespace

bool escape_at(std::string_view t, size_t i) {
  std::string scratch;
  return escape_byte(t[i]) && decode_one(t, i, true, scratch) > 0;
}

View joined_view(std::string_view in) {
  View v;
  v.text.reserve(in.size());
  v.begin.reserve(in.size());
  v.end.reserve(in.size());
  for (size_t i = 0; i < in.size();) {
    const void* hit = std::memchr(in.data() + i, '\n', in.size() - i);
    size_t nl = hit ? static_cast<size_t>(static_cast<const char*>(hit) - in.data()) : in.size();
    size_t keep_end = nl > i && nl < in.size() && in[nl - 1] == '\r' ? nl - 1 : nl;
    v.text.append(in.substr(i, keep_end - i));
    for (size_t k = i; k < keep_end; ++k) {
      v.begin.push_back(static_cast<uint32_t>(k));
      v.end.push_back(static_cast<uint32_t>(k + 1));
    }
    i = nl + 1;
  }
  return v;
}

bool decode_pass(std::string_view in, const View* in_map, bool backslash, View& out) {
  out = View{};
  out.text.reserve(in.size());
  out.begin.reserve(in.size());
  out.end.reserve(in.size());
  bool changed = false;
  auto src_begin = [&](size_t k) { return in_map ? in_map->begin[k] : static_cast<uint32_t>(k); };
  auto src_end = [&](size_t k) { return in_map ? in_map->end[k] : static_cast<uint32_t>(k + 1); };
  for (size_t i = 0; i < in.size();) {
    size_t before = out.text.size();
    size_t n = escape_byte(in[i]) ? decode_one(in, i, backslash, out.text) : 0;
    if (n == 0) {  // a literal run up to the next escape byte
      size_t j = i + 1;
      while (j < in.size() && !escape_byte(in[j])) ++j;
      out.text.append(in.substr(i, j - i));
      for (size_t k = i; k < j; ++k) {
        out.begin.push_back(src_begin(k));
        out.end.push_back(src_end(k));
      }
      i = j;
      continue;
    }
    changed = true;
    for (size_t k = before; k < out.text.size(); ++k) {
      out.begin.push_back(src_begin(i));
      out.end.push_back(src_end(i + n - 1));
    }
    i += n;
  }
  return changed;
}

}  // namespace md::secrets::internal
