#include "proxy/local_responses.h"

#include <map>
#include <string>

namespace md::proxy {
namespace {

struct Entry {
  int status;
  const char* reason;
  const char* body;
};

constexpr Entry kEntries[] = {
    {400, "Bad Request", "400 bad request: malformed HTTP request\n"},
    {404, "Not Found", "404 not found: no service matches this host and path\n"},
    {405, "Method Not Allowed", "405 method not allowed by this proxy\n"},
    {408, "Request Timeout", "408 request timeout\n"},
    {413, "Content Too Large", "413 request too large\n"},
    {431, "Request Header Fields Too Large", "431 request header fields too large\n"},
    {500, "Internal Server Error", "500 internal proxy error\n"},
    {502, "Bad Gateway", "502 bad gateway: the service did not answer properly\n"},
    {503, "Service Unavailable", "503 service unavailable: no healthy target\n"},
    {504, "Gateway Timeout", "504 gateway timeout: the service did not answer in time\n"},
    {505, "HTTP Version Not Supported", "505 HTTP version not supported\n"},
};

std::string build(const Entry& e, bool close) {
  std::string body = e.body;
  std::string r = "HTTP/1.1 " + std::to_string(e.status) + " " + e.reason +
                  "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " +
                  std::to_string(body.size()) + "\r\nCache-Control: no-store\r\n";
  if (e.status == 503) r += "Retry-After: 5\r\n";
  if (close) r += "Connection: close\r\n";
  r += "\r\n" + body;
  return r;
}

struct Table {
  std::map<int, std::string> keep, close;
  Table() {
    for (const Entry& e : kEntries) {
      keep[e.status] = build(e, false);
      close[e.status] = build(e, true);
    }
  }
};

}  // namespace

std::string_view local_response(int status, bool close) {
  static const Table t;
  const auto& m = close ? t.close : t.keep;
  auto it = m.find(status);
  if (it == m.end()) it = m.find(500);
  return it->second;
}

}  // namespace md::proxy
