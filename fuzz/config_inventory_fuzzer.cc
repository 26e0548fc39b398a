// Fuzzes `meshdeploy hosts import`'s two readers: `terraform output -json`
// (parse_terraform_hosts) and the in-place rewrite of an environment's
// hosts: list in meshdeploy.yml (replace_hosts). Invariants: never a crash;
// errors carry their documented codes and name the source; an inventory that
// parses is non-empty with distinct names and ssh:// addresses; a rewrite
// that succeeds is a fixed point (rewriting its result again changes
// nothing) and lists exactly the hosts given.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "config/inventory.h"

namespace {

void check(bool c) {
  if (!c) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);

  auto inv = md::config::parse_terraform_hosts(text, "tf.json");
  if (!inv) {
    check(inv.error().code() == md::Errc::kInvalidArgument);
    check(inv.error().what().rfind("tf.json", 0) == 0);
  } else {
    check(!inv->empty());
    std::set<std::string> names;
    for (const md::config::InventoryHost& h : *inv) {
      check(names.insert(h.name).second);
      check(h.address.rfind("ssh://", 0) == 0);
    }
  }

  // The same bytes as meshdeploy.yml: replace production's hosts.
  std::vector<md::config::InventoryHost> hosts = {
      {"web-1", "ssh://deploy@10.0.0.1", ""},
      {"web-2", "ssh://deploy@10.0.0.2:2222", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFuzz"},
  };
  auto edited = md::config::replace_hosts(text, "meshdeploy.yml", "production", hosts);
  if (!edited) {
    md::Errc c = edited.error().code();
    check(c == md::Errc::kInvalidArgument || c == md::Errc::kNotFound ||
          c == md::Errc::kFailedPrecondition);
    check(edited.error().what().rfind("meshdeploy.yml", 0) == 0);
    return 0;
  }
  auto again = md::config::replace_hosts(*edited, "meshdeploy.yml", "production", hosts);
  check(again.has_value());
  check(*again == *edited);
  return 0;
}
