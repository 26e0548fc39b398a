// Zero-copy HTTP/1.1 message head parser (RFC 9112) and chunked-body scanner.
//
// Used by the proxy's data path (every request and response head), by the
// blocking clients in http.h, and fuzzed by fuzz/http_parser_fuzzer.cc.
// Nothing here allocates: parsed fields are string_views into the caller's
// buffer, which must stay unchanged while they are in use.
//
// The parser is strict where leniency enables request smuggling or cache
// poisoning: only CRLF line ends, no obs-fold, no whitespace before ':',
// a single Content-Length, no Content-Length together with
// Transfer-Encoding, Transfer-Encoding only with "chunked" last.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace md::http {

// Why a head was rejected. The proxy answers 400 for all but the noted ones.
enum class HeadError : uint8_t {
  kNone = 0,
  kBadStartLine,      // request or status line malformed
  kBadVersion,        // not HTTP/1.0 or HTTP/1.1 (505)
  kBadHeader,         // header line malformed (bad name, CTL in value, obs-fold, bare CR/LF)
  kTooLarge,          // head longer than the limit (431)
  kTooManyHeaders,    // more header fields than the limit (431)
  kBadContentLength,  // not a decimal number, or too large
  kDuplicateContentLength,
  kBadTransferEncoding,  // unknown coding last, or "chunked" not last, or in HTTP/1.0
  kLengthAndChunked,     // both Content-Length and Transfer-Encoding
  kMissingHost,          // HTTP/1.1 request without Host
  kDuplicateHost,
  kBadMethod,  // CONNECT (this is not a forward proxy) (405)
};
std::string_view head_error_text(HeadError e);

// Status the proxy answers for a request head error: 400, 405, 431 or 505.
int head_error_status(HeadError e);

struct HeadLimits {
  size_t max_head_bytes = 16 * 1024;  // request/status line + headers + blank line
  size_t max_headers = 100;           // header fields
};

// One header field. name/value point into the parsed buffer; value has its
// surrounding whitespace removed. line_begin/line_end are byte offsets of the
// whole line (CRLF included) from the start of the head, for forwarding the
// original bytes with some lines cut out.
struct HeaderField {
  std::string_view name;
  std::string_view value;
  uint32_t line_begin = 0;
  uint32_t line_end = 0;
};

// How the message body is delimited.
enum class BodyKind : uint8_t {
  kNone,     // no body
  kLength,   // Content-Length bytes
  kChunked,  // chunked transfer coding
  kClose,    // until the connection closes (responses only)
};

// Bits for the well-known fields the proxy looks at. Set while parsing.
enum HeadFlags : uint32_t {
  kConnClose = 1u << 0,       // "Connection: close"
  kConnKeepAlive = 1u << 1,   // "Connection: keep-alive"
  kConnUpgrade = 1u << 2,     // "Connection: upgrade"
  kHasUpgrade = 1u << 3,      // an Upgrade header field exists
  kExpectContinue = 1u << 4,  // "Expect: 100-continue"
  kConnOther = 1u << 5,       // Connection names other fields (they are hop-by-hop too)
  kAbsoluteForm = 1u << 6,    // request target in absolute-form ("http://host/path")
};

// Maximum number of header fields a head can hold (hard cap on HeadLimits).
inline constexpr size_t kMaxHeaderFields = 128;

// Fields common to request and response heads.
struct Head {
  int version_minor = 1;  // HTTP/1.<minor>
  uint32_t flags = 0;     // HeadFlags
  BodyKind body = BodyKind::kNone;
  uint64_t content_length = 0;  // when body == kLength
  size_t head_len = 0;          // bytes of the head, final CRLF included
  size_t num_headers = 0;
  HeaderField headers[kMaxHeaderFields];

  // The first field named `name` (case-insensitive), or nullptr.
  const HeaderField* find(std::string_view name) const;
  // True when the connection may stay open after this message, from the
  // version and the Connection field.
  bool keep_alive() const;
  // True when `name` is hop-by-hop for this message: the fixed RFC 9110 list
  // (Connection, Keep-Alive, Proxy-Connection, TE, Trailer, Upgrade,
  // Transfer-Encoding is NOT in it: the proxy forwards chunked framing as is)
  // or a field listed in this message's Connection header.
  bool is_hop_by_hop(std::string_view name) const;
};

struct RequestHead : Head {
  std::string_view method;
  std::string_view target;     // as sent: origin-form, absolute-form or "*"
  std::string_view path;       // target without query (absolute-form: the path part)
  std::string_view authority;  // Host field value, or the absolute-form authority
};

struct ResponseHead : Head {
  int status = 0;
  std::string_view reason;
};

// Returned by find_head_end() for a head with a bare LF (an LF not after a
// CR): it can never end well, so the caller answers 400 (or 502) at once
// instead of waiting for a CRLFCRLF that will not come.
inline constexpr size_t kHeadBareLf = static_cast<size_t>(-1);

// Finds the end of a head in data[0, len). `scan_from` carries the position
// already scanned between calls (start at 0), so a head that arrives in many
// pieces is scanned once. Returns the head length (final CRLF included), 0
// when more bytes are needed, or kHeadBareLf. Does not validate otherwise.
size_t find_head_end(const char* data, size_t len, size_t* scan_from);

// Parses a complete request head (data[0, head_len), as found by
// find_head_end). Returns kNone on success and fills `out`; otherwise the
// reason. Checks the limits on the count of fields; the caller checks
// max_head_bytes before the head is complete.
HeadError parse_request_head(const char* data, size_t head_len, const HeadLimits& limits,
                             RequestHead* out);

// Parses a complete response head. `request_method` decides whether a body
// follows (HEAD, and CONNECT 2xx, have none), as do 1xx/204/304.
HeadError parse_response_head(const char* data, size_t head_len, std::string_view request_method,
                              const HeadLimits& limits, ResponseHead* out);

// True when a request with this method may be sent again after a failure
// (RFC 9110 9.2.2: GET, HEAD, OPTIONS, TRACE, PUT, DELETE).
bool is_idempotent(std::string_view method);

// Case-insensitive ASCII comparison.
bool iequals(std::string_view a, std::string_view b);

// Walks a chunked body without changing it, to find where it ends (the proxy
// forwards chunked bytes unchanged) and, optionally, the data pieces inside
// (for clients that decode). Trailer fields are skipped. Not thread-safe; one
// per message.
class ChunkedScanner {
 public:
  enum class Status { kMore, kDone, kError };

  // Consumes up to `len` bytes. Sets *consumed to the bytes that belong to
  // the body (less than len only when the body ended inside the input: the
  // rest belongs to the next message). For each piece of chunk data, calls
  // on_data(ptr, n) if given. kError on malformed framing (bad size, missing
  // CRLF, chunk size over 2^60, oversized extension or trailer).
  template <class OnData>
  Status feed(const char* data, size_t len, size_t* consumed, OnData&& on_data);
  Status feed(const char* data, size_t len, size_t* consumed) {
    return feed(data, len, consumed, [](const char*, size_t) {});
  }
  bool done() const { return state_ == kStDone; }
  // True between chunks (nothing of a chunk, its size line or CRLF pending).
  bool at_boundary() const { return state_ == kStSize && size_digits_ == 0; }
  void reset() { *this = ChunkedScanner(); }

 private:
  enum State : uint8_t {
    kStSize,
    kStSizeLws,
    kStExt,
    kStSizeLf,
    kStData,
    kStDataCr,
    kStDataLf,
    kStTrailerStart,
    kStTrailerLine,
    kStTrailerLf,
    kStFinalLf,
    kStDone,
    kStError,
  };
  State state_ = kStSize;
  uint8_t size_digits_ = 0;
  uint64_t remaining_ = 0;   // chunk-size being read, then data bytes left
  uint32_t line_bytes_ = 0;  // bytes of the current extension / trailer line
};

// ---- implementation of the template (the scanner is on the hot path)

template <class OnData>
ChunkedScanner::Status ChunkedScanner::feed(const char* data, size_t len, size_t* consumed,
                                            OnData&& on_data) {
  constexpr uint32_t kMaxLine = 4096;
  size_t i = 0;
  auto fail = [&] {
    state_ = kStError;
    *consumed = i;
    return Status::kError;
  };
  while (i < len) {
    char c = data[i];
    switch (state_) {
      case kStSize: {
        int v = (c >= '0' && c <= '9')   ? c - '0'
                : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                         : -1;
        if (v >= 0) {
          if (++size_digits_ > 15) return fail();
          remaining_ = remaining_ * 16 + static_cast<uint64_t>(v);
          ++i;
          break;
        }
        if (size_digits_ == 0) return fail();
        if (c == ';') {
          state_ = kStExt;
          line_bytes_ = 0;
        } else if (c == ' ' || c == '\t') {
          state_ = kStSizeLws;
        } else if (c == '\r') {
          state_ = kStSizeLf;
        } else {
          return fail();
        }
        ++i;
        break;
      }
      case kStSizeLws:
        if (c == ';') {
          state_ = kStExt;
          line_bytes_ = 0;
        } else if (c == '\r') {
          state_ = kStSizeLf;
        } else if (c != ' ' && c != '\t') {
          return fail();
        }
        ++i;
        break;
      case kStExt:
        if (c == '\r') {
          state_ = kStSizeLf;
        } else if (c == '\n' || ++line_bytes_ > kMaxLine) {
          return fail();
        }
        ++i;
        break;
      case kStSizeLf:
        if (c != '\n') return fail();
        ++i;
        size_digits_ = 0;
        state_ = remaining_ == 0 ? kStTrailerStart : kStData;
        break;
      case kStData: {
        size_t n = len - i;
        if (n > remaining_) n = static_cast<size_t>(remaining_);
        on_data(data + i, n);
        i += n;
        remaining_ -= n;
        if (remaining_ == 0) state_ = kStDataCr;
        break;
      }
      case kStDataCr:
        if (c != '\r') return fail();
        state_ = kStDataLf;
        ++i;
        break;
      case kStDataLf:
        if (c != '\n') return fail();
        state_ = kStSize;
        ++i;
        break;
      case kStTrailerStart:
        if (c == '\r') {
          state_ = kStFinalLf;
        } else if (c == '\n') {
          return fail();
        } else {
          state_ = kStTrailerLine;
          line_bytes_ = 1;
        }
        ++i;
        break;
      case kStTrailerLine:
        if (c == '\r') {
          state_ = kStTrailerLf;
        } else if (c == '\n' || ++line_bytes_ > kMaxLine) {
          return fail();
        }
        ++i;
        break;
      case kStTrailerLf:
        if (c != '\n') return fail();
        state_ = kStTrailerStart;
        ++i;
        break;
      case kStFinalLf:
        if (c != '\n') return fail();
        ++i;
        state_ = kStDone;
        *consumed = i;
        return Status::kDone;
      case kStDone:
        *consumed = i;
        return Status::kDone;
      case kStError:
        return fail();
    }
  }
  *consumed = i;
  if (state_ == kStDone) return Status::kDone;
  if (state_ == kStError) return Status::kError;
  return Status::kMore;
}

}  // namespace md::http
