#include "agent/state_file.h"

#include <charconv>
#include <nlohmann/json.hpp>

#include "agent/api.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/json.h"

namespace md::agent {
namespace {
using json = nlohmann::json;

constexpr std::string_view kMagic = "meshdeploy-agent-state";

json process_json(const SavedProcess& p) {
  json j = {{"service", p.service},
            {"index", p.index},
            {"port", p.port},
            {"pid", p.ref.pid},
            {"start_time", p.ref.start_time},
            {"log_pid", p.ref.log_pid},
            {"log_start_time", p.ref.log_start_time},
            {"state", p.state},
            {"error", p.error},
            {"restarts", p.restarts}};
  if (!p.ref.cgroup.empty()) j["cgroup"] = p.ref.cgroup;
  return j;
}

SavedProcess process_from(const json& j) {
  SavedProcess p;
  p.service = j.at("service").get<std::string>();
  p.index = j.at("index").get<int>();
  p.port = j.at("port").get<int>();
  p.ref.pid = j.at("pid").get<int>();
  p.ref.start_time = j.at("start_time").get<uint64_t>();
  p.ref.log_pid = j.at("log_pid").get<int>();
  p.ref.log_start_time = j.at("log_start_time").get<uint64_t>();
  p.ref.child = false;  // whoever reads this file is not its parent
  p.state = j.at("state").get<std::string>();
  p.error = j.at("error").get<std::string>();
  p.restarts = j.at("restarts").get<int>();
  p.ref.cgroup = j.value("cgroup", std::string());
  return p;
}

json release_json(const SavedRelease& r) {
  json services = json::array();
  for (const auto& s : r.services) services.push_back(to_json(s));
  json procs = json::array();
  for (const auto& p : r.processes) procs.push_back(process_json(p));
  return {{"version", r.version},
          {"sha256", r.sha256},
          {"environment", r.environment},
          {"deployment_id", r.deployment_id},
          {"services", services},
          {"env", r.env},
          {"secret_names", r.secret_names},
          {"sticky_cookie", r.sticky_cookie},
          {"sticky_header", r.sticky_header},
          {"drain_deadline_ms", r.drain_deadline_ms},
          {"running", r.running},
          {"warm_until_ms", r.warm_until_ms},
          {"processes", procs}};
}

Result<SavedRelease> release_from(const json& j, int version) {
  SavedRelease r;
  r.version = j.at("version").get<std::string>();
  r.sha256 = j.at("sha256").get<std::string>();
  r.environment = j.at("environment").get<std::string>();
  r.deployment_id = j.at("deployment_id").get<std::string>();
  for (const auto& s : j.at("services")) r.services.push_back(MD_TRY(decode<config::Service>(s)));
  r.env = j.at("env").get<std::map<std::string, std::string>>();
  r.secret_names = j.at("secret_names").get<std::vector<std::string>>();
  r.sticky_cookie = j.at("sticky_cookie").get<std::string>();
  r.sticky_header = j.at("sticky_header").get<std::string>();
  r.drain_deadline_ms = j.at("drain_deadline_ms").get<int64_t>();
  r.running = j.at("running").get<std::set<std::string>>();
  if (version >= 2) r.warm_until_ms = j.at("warm_until_ms").get<int64_t>();
  for (const auto& p : j.at("processes")) r.processes.push_back(process_from(p));
  return r;
}

Result<AgentState> body_from(const json& j, int version) {
  AgentState s;
  for (const auto& r : j.at("releases")) {
    SavedRelease rel = MD_TRY(release_from(r, version));
    std::string v = rel.version;
    s.releases.emplace(v, std::move(rel));
  }
  for (const auto& r : j.at("routes")) {
    SavedRoute x;
    x.service = r.at("service").get<std::string>();
    x.live = r.at("live").get<std::string>();
    x.canary = r.at("canary").get<std::string>();
    x.canary_weight = r.at("canary_weight").get<int>();
    x.maintenance = r.at("maintenance").get<bool>();
    s.routes.emplace(x.service, std::move(x));
  }
  for (const auto& a : j.at("artifacts")) {
    SavedArtifact x{a.at("version").get<std::string>(), a.at("sha256").get<std::string>(),
                    a.at("file").get<std::string>()};
    s.artifacts.emplace(x.version, std::move(x));
  }
  return s;
}

Error corrupt(std::string why) {
  return Error(Errc::kCorruption, "agent state: " + std::move(why));
}

}  // namespace

std::string encode_state(const AgentState& state) {
  json releases = json::array(), routes = json::array(), artifacts = json::array();
  for (const auto& [v, r] : state.releases) releases.push_back(release_json(r));
  for (const auto& [s, r] : state.routes)
    routes.push_back({{"service", r.service},
                      {"live", r.live},
                      {"canary", r.canary},
                      {"canary_weight", r.canary_weight},
                      {"maintenance", r.maintenance}});
  for (const auto& [v, a] : state.artifacts)
    artifacts.push_back({{"version", a.version}, {"sha256", a.sha256}, {"file", a.file}});
  std::string body =
      to_json_text(json{{"releases", releases}, {"routes", routes}, {"artifacts", artifacts}}, 1) +
      "\n";
  return std::string(kMagic) + " " + std::to_string(kStateFormatVersion) + " " + sha256_hex(body) +
         "\n" + body;
}

Result<AgentState> decode_state(std::string_view text) {
  size_t nl = text.find('\n');
  if (nl == std::string_view::npos) return fail(corrupt("no header line"));
  std::string_view header = text.substr(0, nl);
  std::string_view body = text.substr(nl + 1);
  if (!header.starts_with(kMagic) || header.size() < kMagic.size() + 1 ||
      header[kMagic.size()] != ' ')
    return fail(corrupt("not a meshdeploy agent state file (bad header)"));
  std::string_view rest = header.substr(kMagic.size() + 1);
  size_t sp = rest.find(' ');
  if (sp == std::string_view::npos) return fail(corrupt("header has no checksum"));
  int version = 0;
  auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + sp, version);
  if (ec != std::errc() || ptr != rest.data() + sp)
    return fail(corrupt("header has a bad format version"));
  if (version < kStateFormatOldest || version > kStateFormatVersion)
    return fail(corrupt(
        "format version " + std::to_string(version) + " is not supported (this agent reads " +
        std::to_string(kStateFormatOldest) + " to " + std::to_string(kStateFormatVersion) + ")"));
  std::string_view sum = rest.substr(sp + 1);
  if (sum != sha256_hex(body)) return fail(corrupt("checksum mismatch (file damaged or edited)"));
  try {
    auto state = body_from(json::parse(body), version);
    if (!state) return fail(corrupt("body: " + state.error().message()));
    return state;
  } catch (const json::exception& e) {
    return fail(corrupt(std::string("body: ") + e.what()));
  }
}

Status save_state(const std::filesystem::path& file, const AgentState& state) {
  return fs::atomic_write(file, encode_state(state), 0600);
}

Result<AgentState> load_state(const std::filesystem::path& file) {
  std::string text = MD_TRY(fs::read_file(file));
  return decode_state(text).map_error(
      [&](Error e) { return std::move(e).with_context(file.string()); });
}

}  // namespace md::agent
