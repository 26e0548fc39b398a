// Test helpers for config/: load YAML text with a fixed environment.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "config/config.h"

namespace md::config::testing {

inline EnvLookup fixed_env(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

// Loads text that must be valid; fails the test with every diagnostic otherwise.
inline Config load_ok(const std::string& yaml, std::map<std::string, std::string> vars = {}) {
  LoadResult r = load_text(yaml, "meshdeploy.yml", fixed_env(std::move(vars)));
  std::string all;
  for (const Diagnostic& d : r.diagnostics) all += d.format() + "\n";
  EXPECT_TRUE(r.config.has_value()) << all;
  return r.config ? *r.config : Config{};
}

// Loads text that must be invalid; returns every diagnostic, formatted.
inline std::vector<std::string> load_errors(const std::string& yaml,
                                            std::map<std::string, std::string> vars = {}) {
  LoadResult r = load_text(yaml, "meshdeploy.yml", fixed_env(std::move(vars)));
  EXPECT_FALSE(r.config.has_value());
  std::vector<std::string> out;
  for (const Diagnostic& d : r.diagnostics) out.push_back(d.format());
  return out;
}

}  // namespace md::config::testing
