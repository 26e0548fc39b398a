#include "http/parser.h"

#include <cstring>

namespace md::http {
namespace {

// tchar (RFC 9110 5.6.2): the characters of a token (method, field name).
constexpr bool is_tchar_c(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

struct Tables {
  bool tchar[256];
  bool value[256];   // field-value octets: VCHAR, SP, HTAB, obs-text
  bool target[256];  // request-target octets: VCHAR (no SP, no CTL), obs-text
  constexpr Tables() : tchar(), value(), target() {
    for (int c = 0; c < 256; ++c) {
      tchar[c] = is_tchar_c(static_cast<unsigned char>(c));
      value[c] = c == '\t' || (c >= 0x20 && c != 0x7f);
      target[c] = c > 0x20 && c != 0x7f;
    }
  }
};
constexpr Tables kT;

inline unsigned char lower(unsigned char c) { return (c >= 'A' && c <= 'Z') ? c | 0x20 : c; }

std::string_view trim_ows(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

// Calls fn(token) for each comma-separated element of a list value, trimmed,
// empty elements skipped.
template <class Fn>
void for_each_token(std::string_view v, Fn&& fn) {
  while (!v.empty()) {
    size_t comma = v.find(',');
    std::string_view t = trim_ows(v.substr(0, comma));
    if (!t.empty()) fn(t);
    if (comma == std::string_view::npos) break;
    v.remove_prefix(comma + 1);
  }
}

// Parses "HTTP/1.x" at p (8 bytes available). Returns the minor version or -1.
int parse_version(const char* p, size_t n) {
  if (n != 8 || std::memcmp(p, "HTTP/1.", 7) != 0) return -1;
  if (p[7] == '0') return 0;
  if (p[7] == '1') return 1;
  return -1;
}

// Parses header lines from data[pos, head_len - 2) into out. Also applies the
// framing rules shared by requests and responses. `request` selects the
// request rules (Host required, TE in 1.0 rejected).
HeadError parse_fields(const char* data, size_t pos, size_t head_len, const HeadLimits& limits,
                       Head* out, bool* saw_te, bool* saw_cl, int* host_count,
                       std::string_view* host) {
  size_t max_fields = limits.max_headers < kMaxHeaderFields ? limits.max_headers : kMaxHeaderFields;
  size_t end = head_len - 2;  // the final CRLF
  bool te_chunked_last = false;
  bool te_bad = false;
  while (pos < end) {
    size_t line_begin = pos;
    const char* line = data + pos;
    const char* nl = static_cast<const char*>(std::memchr(line, '\n', end + 2 - pos));
    if (!nl || nl == line || nl[-1] != '\r') return HeadError::kBadHeader;
    size_t line_len = static_cast<size_t>(nl - line) - 1;  // without CRLF
    // name
    size_t i = 0;
    while (i < line_len && kT.tchar[static_cast<unsigned char>(line[i])]) ++i;
    if (i == 0 || i >= line_len || line[i] != ':') return HeadError::kBadHeader;
    std::string_view name(line, i);
    ++i;
    for (size_t k = i; k < line_len; ++k)
      if (!kT.value[static_cast<unsigned char>(line[k])]) return HeadError::kBadHeader;
    std::string_view value = trim_ows(std::string_view(line + i, line_len - i));
    if (out->num_headers >= max_fields) return HeadError::kTooManyHeaders;
    HeaderField& f = out->headers[out->num_headers++];
    f.name = name;
    f.value = value;
    f.line_begin = static_cast<uint32_t>(line_begin);
    pos = static_cast<size_t>(nl - data) + 1;
    f.line_end = static_cast<uint32_t>(pos);

    // The fields that decide framing and connection handling.
    switch (lower(static_cast<unsigned char>(name[0]))) {
      case 'c':
        if (iequals(name, "content-length")) {
          if (*saw_cl) return HeadError::kDuplicateContentLength;
          *saw_cl = true;
          if (value.empty() || value.size() > 18) return HeadError::kBadContentLength;
          uint64_t n = 0;
          for (char c : value) {
            if (c < '0' || c > '9') return HeadError::kBadContentLength;
            n = n * 10 + static_cast<uint64_t>(c - '0');
          }
          out->content_length = n;
        } else if (iequals(name, "connection")) {
          for_each_token(value, [&](std::string_view t) {
            if (iequals(t, "close"))
              out->flags |= kConnClose;
            else if (iequals(t, "keep-alive"))
              out->flags |= kConnKeepAlive;
            else if (iequals(t, "upgrade"))
              out->flags |= kConnUpgrade;
            else
              out->flags |= kConnOther;
          });
        }
        break;
      case 't':
        if (iequals(name, "transfer-encoding")) {
          *saw_te = true;
          for_each_token(value, [&](std::string_view t) {
            if (te_chunked_last) te_bad = true;  // chunked must be the last coding, once
            te_chunked_last = iequals(t, "chunked");
          });
          if (value.empty()) te_bad = true;
        }
        break;
      case 'h':
        if (host && iequals(name, "host")) {
          ++*host_count;
          *host = value;
        }
        break;
      case 'u':
        if (iequals(name, "upgrade")) out->flags |= kHasUpgrade;
        break;
      case 'e':
        if (iequals(name, "expect") && iequals(value, "100-continue"))
          out->flags |= kExpectContinue;
        break;
      default:
        break;
    }
  }
  if (*saw_te) {
    if (te_bad) return HeadError::kBadTransferEncoding;
    out->body = te_chunked_last ? BodyKind::kChunked : BodyKind::kClose;
  } else if (*saw_cl) {
    out->body = BodyKind::kLength;
  }
  return HeadError::kNone;
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(static_cast<unsigned char>(a[i])) != lower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

std::string_view head_error_text(HeadError e) {
  switch (e) {
    case HeadError::kNone:
      return "ok";
    case HeadError::kBadStartLine:
      return "malformed start line";
    case HeadError::kBadVersion:
      return "unsupported HTTP version";
    case HeadError::kBadHeader:
      return "malformed header field";
    case HeadError::kTooLarge:
      return "header section too large";
    case HeadError::kTooManyHeaders:
      return "too many header fields";
    case HeadError::kBadContentLength:
      return "invalid Content-Length";
    case HeadError::kDuplicateContentLength:
      return "more than one Content-Length";
    case HeadError::kBadTransferEncoding:
      return "invalid Transfer-Encoding";
    case HeadError::kLengthAndChunked:
      return "both Content-Length and Transfer-Encoding";
    case HeadError::kMissingHost:
      return "missing Host header";
    case HeadError::kDuplicateHost:
      return "more than one Host header";
    case HeadError::kBadMethod:
      return "method not supported by this proxy";
  }
  return "unknown error";
}

int head_error_status(HeadError e) {
  switch (e) {
    case HeadError::kTooLarge:
    case HeadError::kTooManyHeaders:
      return 431;
    case HeadError::kBadVersion:
      return 505;
    case HeadError::kBadMethod:
      return 405;
    default:
      return 400;
  }
}

size_t find_head_end(const char* data, size_t len, size_t* scan_from) {
  size_t i = *scan_from;
  // A head ends at CRLFCRLF. Look for each LF and check the 3 bytes before it.
  while (i < len) {
    const void* p = std::memchr(data + i, '\n', len - i);
    if (!p) {
      i = len;
      break;
    }
    size_t at = static_cast<size_t>(static_cast<const char*>(p) - data);
    if (at == 0 || data[at - 1] != '\r') {
      *scan_from = at;
      return kHeadBareLf;
    }
    if (at >= 3 && data[at - 1] == '\r' && data[at - 2] == '\n' && data[at - 3] == '\r') {
      *scan_from = at + 1;
      return at + 1;
    }
    i = at + 1;
  }
  // Keep the last 3 bytes to rescan: the terminator may straddle reads.
  *scan_from = i >= 3 ? i - 3 : 0;
  return 0;
}

const HeaderField* Head::find(std::string_view name) const {
  for (size_t i = 0; i < num_headers; ++i)
    if (iequals(headers[i].name, name)) return &headers[i];
  return nullptr;
}

bool Head::keep_alive() const {
  if (flags & kConnClose) return false;
  if (version_minor >= 1) return true;
  return (flags & kConnKeepAlive) != 0;
}

bool Head::is_hop_by_hop(std::string_view name) const {
  if (name.empty()) return false;
  switch (lower(static_cast<unsigned char>(name[0]))) {
    case 'c':
      if (iequals(name, "connection")) return true;
      break;
    case 'k':
      if (iequals(name, "keep-alive")) return true;
      break;
    case 'p':
      if (iequals(name, "proxy-connection")) return true;
      break;
    case 't':
      if (iequals(name, "te") || iequals(name, "trailer")) return true;
      break;
    case 'u':
      if (iequals(name, "upgrade")) return true;
      break;
    default:
      break;
  }
  if (!(flags & kConnOther)) return false;
  const HeaderField* conn = nullptr;
  for (size_t i = 0; i < num_headers; ++i) {
    if (!iequals(headers[i].name, "connection")) continue;
    conn = &headers[i];
    bool hit = false;
    for_each_token(conn->value, [&](std::string_view t) { hit = hit || iequals(t, name); });
    if (hit) return true;
  }
  return false;
}

HeadError parse_request_head(const char* data, size_t head_len, const HeadLimits& limits,
                             RequestHead* out) {
  out->flags = 0;
  out->body = BodyKind::kNone;
  out->content_length = 0;
  out->num_headers = 0;
  out->head_len = head_len;
  if (head_len > limits.max_head_bytes) return HeadError::kTooLarge;
  if (head_len < 4) return HeadError::kBadStartLine;
  const char* nl = static_cast<const char*>(std::memchr(data, '\n', head_len));
  if (!nl || nl == data || nl[-1] != '\r') return HeadError::kBadStartLine;
  size_t line_len = static_cast<size_t>(nl - data) - 1;
  // method SP target SP version
  size_t i = 0;
  while (i < line_len && kT.tchar[static_cast<unsigned char>(data[i])]) ++i;
  if (i == 0 || i >= line_len || data[i] != ' ') return HeadError::kBadStartLine;
  out->method = std::string_view(data, i);
  size_t t0 = ++i;
  while (i < line_len && kT.target[static_cast<unsigned char>(data[i])]) ++i;
  if (i == t0 || i >= line_len || data[i] != ' ') return HeadError::kBadStartLine;
  out->target = std::string_view(data + t0, i - t0);
  ++i;
  int minor = parse_version(data + i, line_len - i);
  if (minor < 0) {
    if (line_len - i >= 5 && std::memcmp(data + i, "HTTP/", 5) == 0) return HeadError::kBadVersion;
    return HeadError::kBadStartLine;
  }
  out->version_minor = minor;

  if (out->method == "CONNECT") return HeadError::kBadMethod;
  // Target forms (RFC 9112 3.2).
  std::string_view target = out->target;
  std::string_view abs_authority;
  if (target[0] == '/') {
    out->path = target.substr(0, target.find('?'));
  } else if (target == "*") {
    if (out->method != "OPTIONS") return HeadError::kBadStartLine;
    out->path = target;
  } else {
    size_t scheme_end = target.find("://");
    if (scheme_end == std::string_view::npos || !(iequals(target.substr(0, scheme_end), "http") ||
                                                  iequals(target.substr(0, scheme_end), "https")))
      return HeadError::kBadStartLine;
    std::string_view rest = target.substr(scheme_end + 3);
    size_t slash = rest.find_first_of("/?");
    abs_authority = rest.substr(0, slash);
    if (abs_authority.empty() || abs_authority.find('@') != std::string_view::npos)
      return HeadError::kBadStartLine;
    std::string_view path =
        slash == std::string_view::npos ? std::string_view("/") : rest.substr(slash);
    out->path = path[0] == '/' ? path.substr(0, path.find('?')) : std::string_view("/");
  }

  bool saw_te = false, saw_cl = false;
  int host_count = 0;
  std::string_view host;
  HeadError e =
      parse_fields(data, line_len + 2, head_len, limits, out, &saw_te, &saw_cl, &host_count, &host);
  if (e != HeadError::kNone) return e;
  if (saw_te && saw_cl) return HeadError::kLengthAndChunked;
  if (saw_te && (minor == 0 || out->body != BodyKind::kChunked))
    return HeadError::kBadTransferEncoding;  // a request body must be length-delimited
  if (host_count > 1) return HeadError::kDuplicateHost;
  if (host_count == 0 && minor == 1) return HeadError::kMissingHost;
  if (out->body == BodyKind::kLength && out->content_length == 0) out->body = BodyKind::kNone;
  out->authority = abs_authority.empty() ? host : abs_authority;
  if (!abs_authority.empty()) out->flags |= kAbsoluteForm;
  return HeadError::kNone;
}

HeadError parse_response_head(const char* data, size_t head_len, std::string_view request_method,
                              const HeadLimits& limits, ResponseHead* out) {
  out->flags = 0;
  out->body = BodyKind::kNone;
  out->content_length = 0;
  out->num_headers = 0;
  out->head_len = head_len;
  if (head_len > limits.max_head_bytes) return HeadError::kTooLarge;
  const char* nl = static_cast<const char*>(std::memchr(data, '\n', head_len));
  if (!nl || nl == data || nl[-1] != '\r') return HeadError::kBadStartLine;
  size_t line_len = static_cast<size_t>(nl - data) - 1;
  // HTTP/1.x SP 3DIGIT [SP reason]
  if (line_len < 12) return HeadError::kBadStartLine;
  int minor = parse_version(data, 8);
  if (minor < 0) return HeadError::kBadVersion;
  out->version_minor = minor;
  if (data[8] != ' ') return HeadError::kBadStartLine;
  int status = 0;
  for (int k = 9; k < 12; ++k) {
    if (data[k] < '0' || data[k] > '9') return HeadError::kBadStartLine;
    status = status * 10 + (data[k] - '0');
  }
  if (status < 100) return HeadError::kBadStartLine;
  out->status = status;
  if (line_len > 12) {
    if (data[12] != ' ') return HeadError::kBadStartLine;
    for (size_t k = 13; k < line_len; ++k)
      if (!kT.value[static_cast<unsigned char>(data[k])]) return HeadError::kBadStartLine;
    out->reason = std::string_view(data + 13, line_len - 13);
  } else {
    out->reason = {};
  }
  bool saw_te = false, saw_cl = false;
  HeadError e =
      parse_fields(data, line_len + 2, head_len, limits, out, &saw_te, &saw_cl, nullptr, nullptr);
  if (e != HeadError::kNone) return e;
  // RFC 9112 6.3: Transfer-Encoding overrides Content-Length in a response;
  // a proxy must not forward both. We refuse such a response (502).
  if (saw_te && saw_cl) return HeadError::kLengthAndChunked;
  if (!saw_te && !saw_cl) out->body = BodyKind::kClose;
  if ((status >= 100 && status < 200) || status == 204 || status == 304 ||
      request_method == "HEAD" || (request_method == "CONNECT" && status / 100 == 2))
    out->body = BodyKind::kNone;
  if (out->body == BodyKind::kLength && out->content_length == 0) out->body = BodyKind::kNone;
  return HeadError::kNone;
}

bool is_idempotent(std::string_view m) {
  return m == "GET" || m == "HEAD" || m == "OPTIONS" || m == "TRACE" || m == "PUT" || m == "DELETE";
}

}  // namespace md::http
