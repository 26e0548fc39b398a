// Fuzzes the dotenv parser (`meshdeploy secrets import`). Invariants: never a
// crash; errors name the source and a line; every parsed file, written back
// with double-quoted escaped values, parses to the same entries.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "config/config.h"

namespace {

void check(bool c) {
  if (!c) std::abort();
}

std::string quote(const std::string& v) {
  std::string out = "\"";
  for (char c : v) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        out += c;
    }
  }
  return out + "\"";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto r = md::config::parse_dotenv(text, ".env.fuzz");
  if (!r) {
    check(r.error().code() == md::Errc::kInvalidArgument);
    check(r.error().what().rfind(".env.fuzz:", 0) == 0);
    return 0;
  }
  std::string written;
  int prev_line = 0;
  for (const md::config::DotenvEntry& e : *r) {
    check(!e.key.empty());
    check(e.line > prev_line);
    prev_line = e.line;
    written += e.key + "=" + quote(e.value) + "\n";
  }
  auto again = md::config::parse_dotenv(written, "rewritten");
  check(again.has_value());
  check(again->size() == r->size());
  for (size_t i = 0; i < r->size(); ++i) {
    check((*again)[i].key == (*r)[i].key);
    check((*again)[i].value == (*r)[i].value);
  }
  return 0;
}
