// An environment's hosts: list from an inventory (`meshdeploy hosts import`):
// reading `terraform output -json`, comparing it with meshdeploy.yml, and
// rewriting that one list in the file. Implemented in hosts_file.cc.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace md::config {

// One host as an inventory names it (`terraform output`, `hosts import`).
struct InventoryHost {
  std::string name;
  std::string address;   // ssh://user@host[:port]
  std::string host_key;  // "ssh-ed25519 AAAA..." ("" = known_hosts decides)
  bool operator==(const InventoryHost&) const = default;
};

// Reads the text of `terraform output -json` ({"<output>": {"sensitive",
// "type", "value"}, ...}): the output `output` must hold a non-empty list of
// objects {name, address, host_key?} with distinct names and ssh:// addresses.
// kInvalidArgument saying where ("tf.json: meshdeploy_hosts.value[1].address:
// expected a string, got a number"); `source` names the text. Never throws.
Result<std::vector<InventoryHost>> parse_terraform_hosts(
    std::string_view json_text, const std::string& source,
    const std::string& output = "meshdeploy_hosts");

// What differs between the hosts an environment has and the ones an
// inventory lists, one line per difference ("+ web-3 ssh://..." only in the
// inventory, "- web-2 ..." only in the file, "~ web-1: address A -> B", and
// an order change); empty when they are the same. Pure.
std::vector<std::string> diff_hosts(std::span<const InventoryHost> in_file,
                                    std::span<const InventoryHost> inventory);

// meshdeploy.yml text with environments.<env_name>.hosts replaced by `hosts`
// (added as the environment's first key when it has none); every other byte
// is kept: comments, order, other environments. The result is parsed again
// and must differ from `text` in that one list only. kNotFound for an
// unknown environment; kFailedPrecondition when the file cannot be edited
// safely (flow style, an anchor others use, a key the edit cannot place),
// saying what to change by hand. Pure; `file` names the text in messages.
Result<std::string> replace_hosts(std::string_view text, const std::string& file,
                                  const std::string& env_name,
                                  std::span<const InventoryHost> hosts);

}  // namespace md::config
