// Fuzzes the HTTP/1.1 head parser and the chunked scanner (src/http/parser.h),
// the code every proxied request and response goes through. The first byte
// picks the mode; the rest is the input, fed in pieces as a socket would.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "http/parser.h"

using namespace md::http;

namespace {

void check(bool c) {
  if (!c) std::abort();
}

void check_fields(const Head& h, const char* data, size_t head_len) {
  check(h.num_headers <= kMaxHeaderFields);
  for (size_t i = 0; i < h.num_headers; ++i) {
    const HeaderField& f = h.headers[i];
    check(f.line_begin < f.line_end && f.line_end <= head_len);
    check(f.name.data() >= data && f.name.data() + f.name.size() <= data + head_len);
    check(f.value.data() >= data && f.value.data() + f.value.size() <= data + head_len);
    check(!f.name.empty());
  }
  check(h.head_len == head_len);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* raw, size_t size) {
  if (size < 2) return 0;
  uint8_t mode = raw[0];
  const char* data = reinterpret_cast<const char*>(raw + 1);
  size_t len = size - 1;
  size_t step = 1 + (mode >> 3);  // piece size for incremental feeding

  if ((mode & 3) == 2) {
    ChunkedScanner s;
    size_t off = 0;
    while (off < len) {
      size_t n = len - off < step ? len - off : step;
      size_t used = 0;
      size_t seen = 0;
      auto st = s.feed(data + off, n, &used, [&](const char* p, size_t k) {
        check(p >= data + off && p + k <= data + off + n);
        seen += k;
      });
      check(used <= n && seen <= used);
      off += used;
      if (st != ChunkedScanner::Status::kMore) break;
    }
    return 0;
  }

  // Incremental head search must agree with a one-shot search.
  size_t scan = 0, head_len = 0;
  for (size_t have = step < len ? step : len;; have = have + step < len ? have + step : len) {
    head_len = find_head_end(data, have, &scan);
    check(scan <= have);
    if (head_len || have == len) break;
  }
  size_t scan2 = 0;
  check(find_head_end(data, len, &scan2) == head_len);
  if (head_len == 0 || head_len == kHeadBareLf) return 0;
  check(head_len <= len);

  HeadLimits lim;
  lim.max_headers = (mode & 4) ? 8 : 100;
  if ((mode & 3) == 0 || (mode & 3) == 3) {
    static RequestHead h;
    HeadError e = parse_request_head(data, head_len, lim, &h);
    if (e == HeadError::kNone) {
      check_fields(h, data, head_len);
      check(!h.method.empty() && !h.target.empty());
      check(h.body != BodyKind::kClose);
      for (size_t i = 0; i < h.num_headers; ++i) (void)h.is_hop_by_hop(h.headers[i].name);
      (void)h.keep_alive();
    } else {
      check(head_error_status(e) >= 400);
      check(!head_error_text(e).empty());
    }
  } else {
    static ResponseHead h;
    HeadError e = parse_response_head(data, head_len, (mode & 8) ? "HEAD" : "GET", lim, &h);
    if (e == HeadError::kNone) {
      check_fields(h, data, head_len);
      check(h.status >= 100 && h.status <= 999);
    }
  }
  return 0;
}
