// Fuzzes the meshdeploy.yml loader from arbitrary bytes: YAML parsing,
// ${VAR} interpolation, validation, the overlay of every environment, and
// rendering for `config show`. Invariants: never a crash; a config comes
// back exactly when there is no diagnostic; every environment it names
// resolves; every diagnostic formats to one non-empty line.
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

std::optional<std::string> lookup(const std::string& name) {
  if (name == "HOME") return std::string("/home/deploy");
  if (name == "WEB_COUNT") return std::string("3");
  if (name == "EMPTY") return std::string();
  if (name == "PORTISH") return std::string("8080");
  return std::nullopt;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  md::config::LoadResult r = md::config::load_text(text, "fuzz/meshdeploy.yml", lookup);
  check(r.config.has_value() == r.diagnostics.empty());
  for (const md::config::Diagnostic& d : r.diagnostics) {
    std::string line = d.format();
    check(!line.empty() && line.rfind("fuzz/meshdeploy.yml", 0) == 0);
    check(d.line >= 0 && d.column >= 0);
  }
  if (!r.config) return 0;
  for (const std::string& env : r.config->environments) {
    auto e = md::config::resolve(*r.config, env);
    check(e.has_value());
    check(!e->services.empty() && !e->hosts.empty());
    if (e->strategy.kind == md::config::StrategyKind::kCanary) {
      check(!e->strategy.steps.empty() && e->strategy.steps.back().weight == 100);
    }
    for (const md::config::Service& s : e->services) {
      auto again = md::config::parse_duration(md::config::format_duration(s.stop_grace));
      check(again && *again == s.stop_grace);
    }
    check(!md::config::render_yaml(*e).empty());
    check(!md::config::render_json(*e).empty());
  }
  check(!md::config::resolve(*r.config, "no such environment name").has_value());
  return 0;
}
