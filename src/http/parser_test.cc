#include "http/parser.h"

#include <gtest/gtest.h>

#include <string>

namespace md::http {
namespace {

// The parsed views point into this buffer: it outlives each test's checks.
std::string g_buf;

HeadError parse_req(const std::string& in, RequestHead* h, HeadLimits lim = {}) {
  g_buf = in;
  const std::string& s = g_buf;
  size_t scan = 0;
  size_t n = find_head_end(s.data(), s.size(), &scan);
  if (n == 0) return HeadError::kTooLarge;             // test helper: incomplete
  if (n == kHeadBareLf) return HeadError::kBadHeader;  // as the proxy treats it
  return parse_request_head(s.data(), n, lim, h);
}

// Regression (issue 11): a head with bare LF line ends waited for a CRLFCRLF
// that never came (408 after the header timeout) instead of a 400 at once.
TEST(FindHeadEnd, BareLfIsReportedAtOnce) {
  std::string s = "GET / HTTP/1.1\nHost: a\n\n";
  size_t scan = 0;
  EXPECT_EQ(find_head_end(s.data(), s.size(), &scan), kHeadBareLf);
  scan = 0;
  EXPECT_EQ(find_head_end(s.data(), 15, &scan), kHeadBareLf);  // the first line is enough
  std::string mixed = "GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n";
  scan = 0;
  EXPECT_EQ(find_head_end(mixed.data(), mixed.size(), &scan), kHeadBareLf);
  std::string fine = "GET / HTTP/1.1\r\nHost: a\r\n\r\nbody\n";
  scan = 0;
  EXPECT_EQ(find_head_end(fine.data(), fine.size(), &scan),
            27u);  // bytes after the head are not looked at
}

TEST(FindHeadEnd, FindsTerminatorAcrossPieces) {
  std::string s = "GET / HTTP/1.1\r\nHost: a\r\n\r\nrest";
  size_t scan = 0;
  for (size_t len = 1; len < 27; ++len) {
    EXPECT_EQ(find_head_end(s.data(), len, &scan), 0u) << len;
  }
  EXPECT_EQ(find_head_end(s.data(), s.size(), &scan), 27u);
}

TEST(RequestHead, ParsesSimpleGet) {
  RequestHead h;
  ASSERT_EQ(parse_req("GET /a/b?x=1 HTTP/1.1\r\nHost: example.com\r\nX-A:  v  \r\n\r\n", &h),
            HeadError::kNone);
  EXPECT_EQ(h.method, "GET");
  EXPECT_EQ(h.target, "/a/b?x=1");
  EXPECT_EQ(h.path, "/a/b");
  EXPECT_EQ(h.authority, "example.com");
  EXPECT_EQ(h.version_minor, 1);
  EXPECT_EQ(h.body, BodyKind::kNone);
  ASSERT_EQ(h.num_headers, 2u);
  EXPECT_EQ(h.headers[1].name, "X-A");
  EXPECT_EQ(h.headers[1].value, "v");
  EXPECT_TRUE(h.keep_alive());
  // Line offsets cover the whole line, CRLF included.
  std::string_view all("GET /a/b?x=1 HTTP/1.1\r\nHost: example.com\r\nX-A:  v  \r\n\r\n");
  EXPECT_EQ(all.substr(h.headers[1].line_begin, h.headers[1].line_end - h.headers[1].line_begin),
            "X-A:  v  \r\n");
}

TEST(RequestHead, BodyFraming) {
  RequestHead h;
  ASSERT_EQ(parse_req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n", &h),
            HeadError::kNone);
  EXPECT_EQ(h.body, BodyKind::kLength);
  EXPECT_EQ(h.content_length, 12u);
  ASSERT_EQ(parse_req("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", &h),
            HeadError::kNone);
  EXPECT_EQ(h.body, BodyKind::kChunked);
  ASSERT_EQ(parse_req("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n", &h),
            HeadError::kNone);
  EXPECT_EQ(h.body, BodyKind::kChunked);
  ASSERT_EQ(parse_req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", &h),
            HeadError::kNone);
  EXPECT_EQ(h.body, BodyKind::kNone);
}

TEST(RequestHead, SmugglingGuards) {
  RequestHead h;
  EXPECT_EQ(
      parse_req(
          "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
          &h),
      HeadError::kLengthAndChunked);
  EXPECT_EQ(
      parse_req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", &h),
      HeadError::kDuplicateContentLength);
  EXPECT_EQ(parse_req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", &h),
            HeadError::kBadContentLength);
  EXPECT_EQ(parse_req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", &h),
            HeadError::kBadContentLength);
  EXPECT_EQ(parse_req("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", &h),
            HeadError::kBadTransferEncoding);
  EXPECT_EQ(parse_req("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: "
                      "chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
                      &h),
            HeadError::kBadTransferEncoding);
  EXPECT_EQ(parse_req("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", &h),
            HeadError::kBadTransferEncoding);
  EXPECT_EQ(parse_req("GET / HTTP/1.1\r\nHost : a\r\n\r\n", &h), HeadError::kBadHeader);
  EXPECT_EQ(parse_req("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", &h), HeadError::kBadHeader);
  EXPECT_EQ(parse_req("GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n", &h), HeadError::kBadHeader);
  EXPECT_EQ(parse_req(std::string("GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", 36), &h),
            HeadError::kBadHeader);
  EXPECT_EQ(parse_req("GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", &h), HeadError::kBadHeader);
}

TEST(RequestHead, HostRules) {
  RequestHead h;
  EXPECT_EQ(parse_req("GET / HTTP/1.1\r\nX: y\r\n\r\n", &h), HeadError::kMissingHost);
  EXPECT_EQ(parse_req("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", &h),
            HeadError::kDuplicateHost);
  EXPECT_EQ(parse_req("GET / HTTP/1.0\r\n\r\n", &h), HeadError::kNone);
  EXPECT_FALSE(h.keep_alive());
  EXPECT_EQ(parse_req("GET http://b.example/x?q HTTP/1.1\r\nHost: a\r\n\r\n", &h),
            HeadError::kNone);
  EXPECT_EQ(h.authority, "b.example");
  EXPECT_EQ(h.path, "/x");
}

TEST(RequestHead, StartLineErrors) {
  RequestHead h;
  EXPECT_EQ(parse_req("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", &h), HeadError::kBadStartLine);
  EXPECT_EQ(parse_req("GET / HTTP/2.0\r\nHost: a\r\n\r\n", &h), HeadError::kBadVersion);
  EXPECT_EQ(parse_req("GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n", &h), HeadError::kBadStartLine);
  EXPECT_EQ(parse_req("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", &h), HeadError::kBadStartLine);
  EXPECT_EQ(parse_req("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", &h), HeadError::kBadMethod);
  EXPECT_EQ(parse_req("GET * HTTP/1.1\r\nHost: a\r\n\r\n", &h), HeadError::kBadStartLine);
  EXPECT_EQ(head_error_status(HeadError::kBadMethod), 405);
}

TEST(RequestHead, Limits) {
  RequestHead h;
  std::string many = "GET / HTTP/1.1\r\nHost: a\r\n";
  for (int i = 0; i < 10; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
  many += "\r\n";
  HeadLimits lim;
  lim.max_headers = 5;
  EXPECT_EQ(parse_req(many, &h, lim), HeadError::kTooManyHeaders);
  lim = {};
  lim.max_head_bytes = 40;
  EXPECT_EQ(parse_req(many, &h, lim), HeadError::kTooLarge);
  EXPECT_EQ(head_error_status(HeadError::kTooManyHeaders), 431);
}

TEST(RequestHead, ConnectionTokensAreHopByHop) {
  RequestHead h;
  ASSERT_EQ(parse_req("GET / HTTP/1.1\r\nHost: a\r\nConnection: close, X-Secret\r\nX-Secret: 1\r\n"
                      "Keep-Alive: 5\r\nUpgrade: websocket\r\n\r\n",
                      &h),
            HeadError::kNone);
  EXPECT_FALSE(h.keep_alive());
  EXPECT_TRUE(h.is_hop_by_hop("x-secret"));
  EXPECT_TRUE(h.is_hop_by_hop("Keep-Alive"));
  EXPECT_TRUE(h.is_hop_by_hop("Upgrade"));
  EXPECT_FALSE(h.is_hop_by_hop("Host"));
  EXPECT_TRUE(h.flags & kHasUpgrade);
}

TEST(ResponseHead, Framing) {
  auto parse = [](const std::string& in, std::string_view method, ResponseHead* h) {
    g_buf = in;
    const std::string& s = g_buf;
    size_t scan = 0;
    size_t n = find_head_end(s.data(), s.size(), &scan);
    EXPECT_GT(n, 0u);
    return parse_response_head(s.data(), n, method, HeadLimits{}, h);
  };
  ResponseHead h;
  ASSERT_EQ(parse("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n", "GET", &h), HeadError::kNone);
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.reason, "OK");
  EXPECT_EQ(h.body, BodyKind::kLength);
  ASSERT_EQ(parse("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n", "HEAD", &h), HeadError::kNone);
  EXPECT_EQ(h.body, BodyKind::kNone);
  ASSERT_EQ(parse("HTTP/1.1 204\r\n\r\n", "GET", &h), HeadError::kNone);
  EXPECT_EQ(h.body, BodyKind::kNone);
  ASSERT_EQ(parse("HTTP/1.0 200 OK\r\n\r\n", "GET", &h), HeadError::kNone);
  EXPECT_EQ(h.body, BodyKind::kClose);
  EXPECT_FALSE(h.keep_alive());
  ASSERT_EQ(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", &h),
            HeadError::kNone);
  EXPECT_EQ(h.body, BodyKind::kChunked);
  EXPECT_EQ(parse("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "GET", &h),
            HeadError::kDuplicateContentLength);
  EXPECT_EQ(parse("HTTP/1.1 20x OK\r\n\r\n", "GET", &h), HeadError::kBadStartLine);
  EXPECT_EQ(
      parse("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
            "GET", &h),
      HeadError::kNone);
  EXPECT_EQ(h.body, BodyKind::kNone);
}

TEST(Chunked, ScansAndDecodes) {
  std::string body =
      "4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-T: 1\r\n\r\nNEXT";
  for (size_t split = 0; split <= body.size(); ++split) {
    ChunkedScanner s;
    std::string data;
    size_t used = 0, total = 0;
    auto sink = [&](const char* p, size_t n) { data.append(p, n); };
    auto st = s.feed(body.data(), split, &used, sink);
    total += used;
    if (st != ChunkedScanner::Status::kDone) {
      ASSERT_EQ(st, ChunkedScanner::Status::kMore);
      st = s.feed(body.data() + split, body.size() - split, &used, sink);
      total += used;
    }
    ASSERT_EQ(st, ChunkedScanner::Status::kDone) << split;
    EXPECT_EQ(total, body.size() - 4) << split;
    EXPECT_EQ(data, "Wikipedia in\r\n\r\nchunks.");
  }
}

TEST(Chunked, RejectsMalformed) {
  for (std::string bad :
       {"x\r\n", "4\r\nWikiXX", "4\nWiki\r\n", "ffffffffffffffff0\r\n", "0\r\n\n"}) {
    ChunkedScanner s;
    size_t used = 0;
    EXPECT_EQ(s.feed(bad.data(), bad.size(), &used), ChunkedScanner::Status::kError) << bad;
  }
}

TEST(Methods, Idempotent) {
  EXPECT_TRUE(is_idempotent("GET"));
  EXPECT_TRUE(is_idempotent("PUT"));
  EXPECT_FALSE(is_idempotent("POST"));
  EXPECT_FALSE(is_idempotent("PATCH"));
}

}  // namespace
}  // namespace md::http
