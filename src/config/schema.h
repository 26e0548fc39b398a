// Internal: the environment settings (the keys under `defaults:` and
// `environments.<name>:`), read from one merged tree into an Environment.
#pragma once

#include <string>
#include <vector>

#include "config/reader.h"

namespace md::config::detail {

struct EnvContext {
  std::string name;                   // the environment ("" in record mode)
  std::vector<std::string> all_envs;  // every environment of the file, for references
};

// Reads every setting of one environment, reporting each problem to the
// reader's Diags, then fills in computed defaults (vault, socket, hosts'
// agent_root, canary steps). In record mode only registers the keys.
void read_environment(Reader& r, Environment& env, const EnvContext& ctx);

// Checks shared with load.cc.
std::optional<Problem> check_name(const std::string& v);     // app, environment, service names
std::optional<Problem> check_env_var(const std::string& v);  // NAME of a variable / secret

}  // namespace md::config::detail
