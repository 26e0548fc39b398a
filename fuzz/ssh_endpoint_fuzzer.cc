// Fuzzes the reader of hosts[].address, ssh::Endpoint::parse. Invariants:
// never a crash; a refusal is kInvalidArgument; an address that parses has a
// host ssh cannot take for an option (not empty, no leading '-') and a port
// in 0..65535, and its describe() parses back to the same endpoint.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "ssh/ssh.h"

namespace {

void check(bool c) {
  if (!c) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto ep = md::ssh::Endpoint::parse(text);
  if (!ep) {
    check(ep.error().code() == md::Errc::kInvalidArgument);
    return 0;
  }
  check(!ep->host.empty() && ep->host.front() != '-');
  check(ep->user.empty() || ep->user.front() != '-');
  check(ep->port >= 0 && ep->port <= 65535);
  check(!ep->known_hosts_name().empty());
  auto again = md::ssh::Endpoint::parse(ep->describe());
  check(again.has_value());
  check(again->user == ep->user && again->host == ep->host && again->port == ep->port);
  return 0;
}
