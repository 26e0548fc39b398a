// The derived forms of a secret: how its value looks after the encodings
// that logs, URLs, HTTP headers and JSON bodies put it through.
#include <sodium.h>

#include <algorithm>
#include <set>

#include "secrets/redact_impl.h"
#include "secrets/secrets.h"

namespace md::secrets::internal {
namespace {

constexpr char kHexUpper[] = "0123456789ABCDEF";
constexpr char kHexLower[] = "0123456789abcdef";

bool unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

// Percent-encodes every byte that is not unreserved and not in `keep`.
std::string percent_encode(std::string_view v, std::string_view keep, bool lower, bool plus) {
  const char* hex = lower ? kHexLower : kHexUpper;
  std::string out;
  for (unsigned char c : v) {
    if (unreserved(c) || keep.find(static_cast<char>(c)) != std::string_view::npos) {
      out += static_cast<char>(c);
    } else if (c == ' ' && plus) {
      out += '+';
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

void append_u(std::string& out, unsigned cp, bool upper) {
  const char* hex = upper ? kHexUpper : kHexLower;
  out += "\\u";
  for (int shift = 12; shift >= 0; shift -= 4) out += hex[(cp >> shift) & 15];
}

// Decodes one UTF-8 sequence at v[i]; 0 on invalid input.
size_t utf8_seq(std::string_view v, size_t i, unsigned& cp) {
  auto c = static_cast<unsigned char>(v[i]);
  size_t n = c >= 0xF0 && c < 0xF5 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
  if (n == 0 || i + n > v.size()) return 0;
  cp = c & (0xFF >> (n + 1));
  for (size_t k = 1; k < n; ++k) {
    auto cc = static_cast<unsigned char>(v[i + k]);
    if ((cc & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3F);
  }
  return n;
}

std::string replace_all(std::string_view v, std::string_view from, std::string_view to) {
  std::string out;
  for (size_t i = 0; i < v.size();) {
    if (v.compare(i, from.size(), from) == 0) {
      out += to;
      i += from.size();
    } else {
      out += v[i++];
    }
  }
  return out;
}

// XML character data as .NET's SecurityElement.Escape writes it.
std::string xml_escape(std::string_view v) {
  std::string out;
  for (char c : v) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// PowerShell may print a value with '&' in two sections (16+ bytes each kept) (GitHub's runner,
// PowerShellPre/PostAmpersandEscape): up to the "&+" or last '&', and after it.
std::pair<std::string, std::string> ampersand_sections(std::string_view v) {
  size_t plus = v.find("&+");
  size_t amp = v.rfind('&');
  if (amp == std::string_view::npos) return {};
  std::string pre, post;
  if (plus != std::string_view::npos) {
    pre = std::string(v.substr(0, plus + 2));
    if (plus + 3 <= v.size()) post = std::string(v.substr(plus + 3));  // skips the coloured letter
  } else {
    pre = std::string(v.substr(0, amp + 1));
    post = std::string(v.substr(amp + 1));
  }
  // WHY 16 and not GitHub's 6: sections under 16 bytes would put every
  // secret with a '&' into the short-pattern tiers, which scan 3-5x slower.
  if (pre.size() < 16) pre.clear();
  if (post.size() < 16) post.clear();
  return {pre, post};
}

struct JsonStyle {
  bool escape_slash = false;  // "\/" (PHP, some Java encoders)
  bool ascii_only = false;    // non-ASCII as \uXXXX (Python's default)
  bool html_safe = false;     // < > & as \u003c... (Go's default)
  bool upper_hex = false;     // \u001B rather than \u001b
};

std::string json_escape(std::string_view v, const JsonStyle& s) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    auto c = static_cast<unsigned char>(v[i]);
    switch (c) {
      case '"':
        out += "\\\"";
        continue;
      case '\\':
        out += "\\\\";
        continue;
      case '\b':
        out += "\\b";
        continue;
      case '\f':
        out += "\\f";
        continue;
      case '\n':
        out += "\\n";
        continue;
      case '\r':
        out += "\\r";
        continue;
      case '\t':
        out += "\\t";
        continue;
      default:
        break;
    }
    if (c == '/' && s.escape_slash) {
      out += "\\/";
    } else if (c < 0x20 || (s.html_safe && (c == '<' || c == '>' || c == '&'))) {
      append_u(out, c, s.upper_hex);
    } else if (s.html_safe && c == 0xE2 && i + 2 < v.size() && v[i + 1] == '\x80' &&
               (v[i + 2] == '\xA8' || v[i + 2] == '\xA9')) {
      append_u(out, v[i + 2] == '\xA8' ? 0x2028 : 0x2029, s.upper_hex);  // Go, Rails
      i += 2;
    } else if (c >= 0x80 && s.ascii_only) {
      unsigned cp = 0;
      size_t n = utf8_seq(v, i, cp);
      if (n == 0) {
        out += static_cast<char>(c);  // not UTF-8: encoders pass or reject it
        continue;
      }
      if (cp >= 0x10000) {
        cp -= 0x10000;
        append_u(out, 0xD800 + (cp >> 10), s.upper_hex);
        append_u(out, 0xDC00 + (cp & 0x3FF), s.upper_hex);
      } else {
        append_u(out, cp, s.upper_hex);
      }
      i += n - 1;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

}  // namespace

std::string base64_core(std::string_view value, int offset, bool url_alphabet) {
  std::string bin(static_cast<size_t>(offset), '\0');
  bin.append(value);
  std::string enc(sodium_base64_encoded_len(bin.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(enc.data(), enc.size(), reinterpret_cast<const unsigned char*>(bin.data()),
                    bin.size(),
                    url_alphabet ? sodium_base64_VARIANT_URLSAFE_NO_PADDING
                                 : sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
  enc.resize(std::char_traits<char>::length(enc.c_str()));
  // Character i covers bits [6i, 6i + 6) of the input: keep those that lie
  // entirely inside the value's bits [8 * offset, 8 * (offset + n)).
  size_t first = (8 * static_cast<size_t>(offset) + 5) / 6;
  size_t last = 8 * (static_cast<size_t>(offset) + value.size()) / 6;  // exclusive
  if (last <= first) return {};
  return enc.substr(first, last - first);
}

std::string strip_line_breaks(std::string_view p) {
  std::string out;
  out.reserve(p.size());
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == '\n') continue;
    if (p[i] == '\r' && i + 1 < p.size() && p[i + 1] == '\n') continue;
    out += p[i];
  }
  return out;
}

std::vector<std::string> raw_forms(std::string_view value) {
  std::vector<std::string> out;
  auto add = [&](std::string_view f) {
    std::string j = strip_line_breaks(f);
    if (j.size() >= kMinSecretBytes && std::find(out.begin(), out.end(), j) == out.end())
      out.push_back(std::move(j));
  };
  add(value);
  for (size_t pos = 0; value.find('\n') != std::string_view::npos && pos <= value.size();) {
    size_t nl = std::min(value.find('\n', pos), value.size());
    std::string_view line = value.substr(pos, nl - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    add(line);
    pos = nl + 1;
  }
  return out;
}

std::vector<std::string> derived_forms(std::string_view value) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  auto add = [&](std::string f) {
    f = strip_line_breaks(f);
    if (f.size() >= kMinSecretBytes && seen.insert(f).second) out.push_back(std::move(f));
  };
  add(std::string(value));
  if (value.find('\n') != std::string_view::npos) {
    size_t pos = 0;
    while (pos <= value.size()) {
      size_t nl = std::min(value.find('\n', pos), value.size());
      std::string_view line = value.substr(pos, nl - pos);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      add(std::string(line));
      pos = nl + 1;
    }
  }
  for (int offset = 0; offset < 3; ++offset)
    for (bool url : {false, true}) add(base64_core(value, offset, url));
  for (std::string_view keep :
       {std::string_view(), std::string_view("/"), std::string_view("!'()*")})
    for (bool lower : {false, true})
      for (bool plus : {false, true}) add(percent_encode(value, keep, lower, plus));
  for (int bits = 0; bits < 16; ++bits)
    add(json_escape(value, {.escape_slash = (bits & 1) != 0,
                            .ascii_only = (bits & 2) != 0,
                            .html_safe = (bits & 4) != 0,
                            .upper_hex = (bits & 8) != 0}));
  // GitHub's runner list: CommandLineArgumentEscape, ExpressionStringEscape,
  // JsonStringEscape inside JSON, XmlDataEscape, TrimDoubleQuotes, the two
  // PowerShell ampersand sections. (Mixed escapes are found by decoding.)
  add(replace_all(value, "\"", "\\\""));
  add(replace_all(value, "'", "''"));
  add(json_escape(json_escape(value, {}), {}));
  add(xml_escape(value));
  if (value.size() > 2 && (value.front() == '"' || value.front() == '\'') &&
      value.back() == value.front())
    add(std::string(value.substr(1, value.size() - 2)));
  auto [pre, post] = ampersand_sections(value);
  add(pre);
  add(post);
  return out;
}

std::string naive_redact(const std::vector<std::string>& patterns,
                         const std::vector<std::string>& raw, size_t reach, std::string_view text) {
  std::vector<bool> covered(text.size(), false);
  auto mark = [&](const View& v, const std::vector<std::string>& pats, size_t max_span) {
    for (const std::string& p : pats) {
      if (p.empty()) continue;
      for (size_t at = v.text.find(p); at != std::string::npos; at = v.text.find(p, at + 1)) {
        size_t b = v.begin[at], e = v.end[at + p.size() - 1];
        if (e - b <= max_span)
          std::fill(covered.begin() + static_cast<ptrdiff_t>(b),
                    covered.begin() + static_cast<ptrdiff_t>(e), true);
      }
    }
  };
  View joined = joined_view(text);
  mark(joined, patterns, SIZE_MAX);
  for_each_decoded(joined.text, &joined, [&](const View& v) { mark(v, raw, reach); });
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (!covered[i]) {
      out += text[i];
    } else if (i == 0 || !covered[i - 1]) {
      out += kMask;
    }
  }
  return out;
}

}  // namespace md::secrets::internal
