// Does the agent on a host serve what the environment's config says? The
// listener, TLS and root of meshdeploy.yml are expectations the deploy
// checks at preflight: the agent binds its public sockets (or takes them
// from systemd) when it starts, never at a deploy's request (docs/deploy.md,
// "The agent serves what the config says").
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "deploy/seams.h"

namespace md::deploy {

// One sentence per difference between `env` and the agent `hv` of host
// `host`, naming both values and the two ways out (restart the agent, or
// change the config); empty when the agent serves what the config says:
// - proxy.listen is one of the agent's listeners (host names resolved, so
//   localhost:8080 matches 127.0.0.1:8080; the agent may listen on more);
// - HTTPS on both sides from the same certificate (same file, or a file
//   with the same sha256: copies at other paths match), or plain on both.
//   The key is not compared: the agent loaded it as the certificate's pair;
// - agent.root is the agent's root (after resolving symlinks).
// Relative config paths are taken from meshdeploy.yml's folder. A value the
// agent does not report ("" / empty: an older agent) is not compared.
// Reads the config's certificate file and resolves names; no other I/O.
std::vector<std::string> config_mismatches(const config::Environment& env, const HostView& hv,
                                           std::string_view host);

}  // namespace md::deploy
