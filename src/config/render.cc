// `config show`: the resolved environment as YAML or JSON, keyed like the
// file, durations spelled like the file, secrets by name only.
#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>
#include <set>

#include "config/config.h"
#include "core/json.h"

namespace md::config {
namespace {

using Json = nlohmann::ordered_json;

Json strings(const std::vector<std::string>& v) {
  Json a = Json::array();
  for (const auto& s : v) a.push_back(s);
  return a;
}

Json string_map(const std::map<std::string, std::string>& m) {
  Json o = Json::object();
  for (const auto& [k, v] : m) o[k] = v;
  return o;
}

Json service_json(const Service& s) {
  Json j;
  j["kind"] = service_kind_name(s.kind);
  j["command"] = s.command;
  j["count"] = s.count;
  if (s.kind == ServiceKind::kWeb) {
    j["health"] = {{"path", s.health.path},
                   {"interval", format_duration(s.health.interval)},
                   {"timeout", format_duration(s.health.timeout)},
                   {"healthy_threshold", s.health.healthy_threshold},
                   {"unhealthy_threshold", s.health.unhealthy_threshold},
                   {"start_timeout", format_duration(s.health.start_timeout)}};
    j["host"] = s.host;
    j["path_prefix"] = s.path_prefix;
  }
  j["stop_grace"] = format_duration(s.stop_grace);
  j["env"] = string_map(s.env);
  return j;
}

Json strategy_json(const Strategy& s) {
  Json j;
  j["kind"] = strategy_kind_name(s.kind);
  if (s.kind == StrategyKind::kCanary) {
    Json steps = Json::array();
    for (const CanaryStep& st : s.steps)
      steps.push_back(
          {{"weight", st.weight}, {"pause", format_duration(st.pause)}, {"approval", st.approval}});
    j["steps"] = steps;
  }
  const Analysis& a = s.analysis;
  j["analysis"] = {{"max_error_ratio", a.max_error_ratio},
                   {"severe_error_ratio", a.severe_error_ratio},
                   {"max_p99_ms", a.max_p99_ms},
                   {"significance", a.significance},
                   {"max_median_ratio", a.max_median_ratio},
                   {"max_p99_ratio", a.max_p99_ratio},
                   {"min_latency_delta_ms", a.min_latency_delta_ms},
                   {"min_requests", a.min_requests},
                   {"consecutive_windows", a.consecutive_windows},
                   {"warmup", format_duration(a.warmup)},
                   {"on_inconclusive", inconclusive_name(a.on_inconclusive)},
                   {"interval", format_duration(a.interval)},
                   {"max_inconclusive", format_duration(a.max_inconclusive)}};
  j["watch_window"] = format_duration(s.watch_window);
  j["hosts"] = {{"unreachable_after", format_duration(s.hosts.unreachable_after)},
                {"rollback_wait", format_duration(s.hosts.rollback_wait)}};
  if (s.kind == StrategyKind::kCanary) {
    j["sticky_cookie"] = s.sticky_cookie;
    j["sticky_header"] = s.sticky_header;
  }
  return j;
}

Json channel_json(const Channel& c) {
  Json j;
  j["kind"] = channel_kind_name(c.kind);
  j["events"] = strings(c.events);
  j["environments"] = strings(c.environments);
  if (c.kind == ChannelKind::kEmail) {
    j["smtp_url"] = c.smtp_url;
    j["smtp_user"] = c.smtp_user;
    j["smtp_password_secret"] = c.smtp_password_secret;
    j["starttls"] = c.starttls;
    j["from"] = c.from;
    j["to"] = strings(c.to);
  } else {
    j["url_secret"] = c.url_secret;
    if (c.kind == ChannelKind::kWebhook) j["signing_secrets"] = strings(c.signing_secrets);
  }
  j["timeout"] = format_duration(c.timeout);
  j["retry_horizon"] = format_duration(c.retry_horizon);
  return j;
}

Json environment_json(const Environment& e, std::span<const std::string> secret_names) {
  Json j;
  j["environment"] = e.name;
  j["app"] = e.app;
  j["base_dir"] = e.base_dir.string();
  Json services = Json::object();
  for (const Service& s : e.services) services[s.name] = service_json(s);
  j["services"] = services;
  j["artifact"] = {{"dir", e.artifact.dir}, {"name_template", e.artifact.name_template}};
  Json hosts = Json::array();
  for (const Host& h : e.hosts)
    hosts.push_back({{"name", h.name},
                     {"address", h.address},
                     {"agent_root", h.agent_root},
                     {"host_key", h.host_key},
                     {"listen", h.listen},
                     {"binary", h.binary},
                     {"unit_dir", h.unit_dir},
                     {"unit", h.unit}});
  j["hosts"] = hosts;
  j["ssh"] = {{"known_hosts", e.ssh.known_hosts},
              {"known_hosts_secret", e.ssh.known_hosts_secret},
              {"user", e.ssh.user},
              {"port", e.ssh.port},
              {"key_secret", e.ssh.key_secret},
              {"connect_timeout", format_duration(e.ssh.connect_timeout)}};
  j["strategy"] = strategy_json(e.strategy);
  const Migrations& m = e.migrations;
  j["migrations"] = {{"enabled", m.enabled},
                     {"dir", m.dir},
                     {"database_url_secret", m.database_url_secret},
                     {"lock_timeout", format_duration(m.lock_timeout)},
                     {"statement_timeout", format_duration(m.statement_timeout)},
                     {"lock_retries", m.lock_retries},
                     {"include_all", m.include_all},
                     {"backup", m.backup},
                     {"backup_dir", m.backup_dir},
                     {"require_lint_clean", m.require_lint_clean}};
  Json channels = Json::object();
  for (const Channel& c : e.notifications.channels) channels[c.name] = channel_json(c);
  j["notifications"] = {{"dashboard_url", e.notifications.dashboard_url}, {"channels", channels}};
  j["hooks"] = {{"pre_deploy", e.hooks.pre_deploy},
                {"post_deploy", e.hooks.post_deploy},
                {"on_failure", e.hooks.on_failure},
                {"on_rollback", e.hooks.on_rollback},
                {"timeout", format_duration(e.hooks.timeout)}};
  j["proxy"] = {{"listen", e.proxy.listen},
                {"drain_timeout", format_duration(e.proxy.drain_timeout)},
                {"stream_drain_timeout", format_duration(e.proxy.stream_drain_timeout)},
                {"tls_cert", e.proxy.tls_cert},
                {"tls_key", e.proxy.tls_key},
                {"max_connections", e.proxy.max_connections}};
  j["agent"] = {{"root", e.agent.root}, {"socket", e.agent.socket}};
  j["rollback_window"] = format_duration(e.rollback_window);
  j["keep_releases"] = e.keep_releases;
  j["env"] = string_map(e.env);
  j["secrets"] = strings(e.secrets);
  // WHY only names: this section says which secrets the environment uses;
  // no value is read to print it.
  std::set<std::string> names(secret_names.begin(), secret_names.end());
  for (const SecretRef& r : secret_references(e))
    if (r.name != "*") names.insert(r.name);
  Json values = Json::object();
  for (const std::string& n : names) values[n] = "[REDACTED]";
  j["secret_values"] = values;
  j["vault"] = e.vault;
  j["key_file"] = e.key_file;
  j["state"] = e.state;
  // WHY null for an absent rule: it means "everyone", which is not the same
  // as a list (an empty list means nobody); null also reads back as absent.
  Json access = Json::object();
  for (Operation op : {Operation::kDeploy, Operation::kRollback, Operation::kPromote}) {
    const auto& rule = e.access.rule(op);
    access[std::string(operation_name(op))] = rule ? strings(rule->allow) : Json(nullptr);
  }
  j["access"] = access;
  return j;
}

void emit_yaml(YAML::Emitter& out, const Json& j) {
  switch (j.type()) {
    case Json::value_t::object:
      if (j.empty()) {
        out << YAML::Flow << YAML::BeginMap << YAML::EndMap;
        return;
      }
      out << YAML::BeginMap;
      for (const auto& [k, v] : j.items()) {
        out << YAML::Key << k << YAML::Value;
        emit_yaml(out, v);
      }
      out << YAML::EndMap;
      return;
    case Json::value_t::array: {
      bool scalars =
          std::all_of(j.begin(), j.end(), [](const Json& x) { return x.is_primitive(); });
      if (j.empty() || scalars) out << YAML::Flow;
      out << YAML::BeginSeq;
      for (const Json& v : j) emit_yaml(out, v);
      out << YAML::EndSeq;
      return;
    }
    case Json::value_t::string: {
      const std::string& s = j.get_ref<const std::string&>();
      // Strings that YAML would read as another type, or that are empty, are quoted.
      if (s.empty())
        out << YAML::DoubleQuoted << s;
      else
        out << s;
      return;
    }
    case Json::value_t::boolean:
      out << (j.get<bool>() ? "true" : "false");
      return;
    case Json::value_t::number_integer:
      out << j.get<int64_t>();
      return;
    case Json::value_t::number_unsigned:
      out << j.get<uint64_t>();
      return;
    case Json::value_t::number_float:
      out << to_json_text(j);
      return;
    default:
      out << YAML::Null;
      return;
  }
}

}  // namespace

std::string render_json(const Environment& env, std::span<const std::string> secret_names) {
  // WHY replace: values come from the user's file and environment and need
  // not be UTF-8; JSON output must stay valid (and dump must not throw).
  return to_json_text(environment_json(env, secret_names), 2) + "\n";
}

std::string render_yaml(const Environment& env, std::span<const std::string> secret_names) {
  YAML::Emitter out;
  out.SetIndent(2);
  emit_yaml(out, environment_json(env, secret_names));
  return std::string(out.c_str()) + "\n";
}

}  // namespace md::config
