// The environment settings: every key, its type, default and rules. Each
// Reader call both validates a key and, in record mode, lists it for
// schema_keys() (which the docs test compares with docs/configuration.md).
#include "config/schema.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <set>

#include "core/files.h"
#include "ssh/ssh.h"

namespace md::config::detail {
namespace {

using namespace std::chrono_literals;

bool all_of(const std::string& v, bool (*ok)(char)) { return std::all_of(v.begin(), v.end(), ok); }
bool lower_name_char(char c) {
  return std::islower(static_cast<unsigned char>(c)) ||
         std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '_';
}
bool var_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }
bool token_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("!#$%&'*+-.^_`|~", c);
}
bool has_control(const std::string& v) {
  return std::any_of(v.begin(), v.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20; });
}

std::optional<Problem> check_nonempty(const std::string& v) {
  if (v.find_first_not_of(" \t\n") == std::string::npos) return Problem{"must not be empty", ""};
  return std::nullopt;
}

std::optional<Problem> check_secret_name(const std::string& v) {
  if (auto p = check_env_var(v))
    return Problem{"'" + v + "' is not a valid secret name",
                   "secret names are letters, digits and '_', not starting with a digit "
                   "(as `meshdeploy secrets list` shows them)"};
  return std::nullopt;
}

std::optional<Problem> check_secret_or_star(const std::string& v) {
  if (v == "*") return std::nullopt;
  return check_secret_name(v);
}

std::optional<Problem> check_http_path(const std::string& v) {
  if (v.empty() || v[0] != '/' || has_control(v) || v.find(' ') != std::string::npos)
    return Problem{"'" + v + "' is not a URL path", "start it with '/', e.g. /healthz"};
  return std::nullopt;
}

std::optional<Problem> check_host_header(const std::string& v) {
  if (v.empty()) return std::nullopt;
  for (char c : v)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '*'))
      return Problem{"'" + v + "' is not a host name",
                     "e.g. app.example.com, or \"\" for any host"};
  return std::nullopt;
}

std::optional<Problem> check_port_spec(const std::string& hostport, const std::string& what) {
  size_t colon = hostport.rfind(':');
  std::string port = colon == std::string::npos ? "" : hostport.substr(colon + 1);
  if (port.empty() || port.size() > 5 ||
      !all_of(port, [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }) ||
      std::stoi(port) > 65535)
    return Problem{"'" + hostport + "' is not a valid " + what,
                   "write HOST:PORT, e.g. 127.0.0.1:8080 or [::]:443"};
  return std::nullopt;
}

std::optional<Problem> check_listen(const std::string& v) {
  if (auto p = check_port_spec(v, "listen address")) return p;
  std::string host = v.substr(0, v.rfind(':'));
  if (host.empty() || has_control(host) || host.find(' ') != std::string::npos ||
      (host.front() == '[') != (host.back() == ']'))
    return Problem{"'" + v + "' is not a valid listen address",
                   "write HOST:PORT, e.g. 127.0.0.1:8080 or [::]:443"};
  return std::nullopt;
}

std::optional<Problem> check_address(const std::string& v) {
  if (v == "local") return std::nullopt;
  if (has_control(v))
    return Problem{"the host address contains a control character",
                   "use \"local\" or ssh://[user@]host[:port]"};
  const std::string hint = "use \"local\" or ssh://[user@]host[:port]";
  if (v.rfind("ssh://", 0) != 0) return Problem{"'" + v + "' is not a host address", hint};
  auto ep = ssh::Endpoint::parse(v);
  if (!ep) {
    // "ssh address 'X': WHY (expected ...)": keep WHY, the hint says the rest.
    std::string why = ep.error().message();
    why = why.substr(0, why.find(" (expected "));
    why = why.substr(std::min(why.size(), why.find("': ") + 3));
    return Problem{"'" + v + "' is not a host address: " + why, hint + ", IPv6 in brackets"};
  }
  return std::nullopt;
}

std::optional<Problem> check_host_key(const std::string& v) {
  const std::string hint =
      "the host's public key line, e.g. `ssh-ed25519 AAAAC3Nza...` (ssh-keyscan prints it)";
  if (v.empty()) return std::nullopt;
  if (has_control(v) || v.find('\n') != std::string::npos)
    return Problem{"host_key must be one line", hint};
  size_t sp = v.find(' ');
  if (sp == std::string::npos || sp + 1 >= v.size())
    return Problem{"'" + v.substr(0, 40) + "' is not a host key", hint};
  return std::nullopt;
}

std::optional<Problem> check_url_prefix(const std::string& v,
                                        std::initializer_list<const char*> schemes,
                                        const std::string& example) {
  for (const char* s : schemes) {
    std::string p = s;
    if (v.rfind(p, 0) == 0 && v.size() > p.size() && !has_control(v) &&
        v.find(' ') == std::string::npos)
      return std::nullopt;
  }
  return Problem{"'" + v + "' is not a valid URL here", "e.g. " + example};
}
std::optional<Problem> check_smtp_url(const std::string& v) {
  return check_url_prefix(v, {"smtp://", "smtps://"},
                          "smtp://mail.example.com:587 or smtps://mail.example.com:465");
}
std::optional<Problem> check_http_url(const std::string& v) {
  if (v.empty()) return std::nullopt;
  return check_url_prefix(v, {"http://", "https://"}, "https://deploy.example.com/{environment}");
}

std::optional<Problem> check_mailbox(const std::string& v) {
  size_t at = v.find('@');
  if (at == std::string::npos || at == 0 || at + 1 >= v.size() || has_control(v))
    return Problem{"'" + v + "' is not an email address",
                   "e.g. deploys@example.com or \"Deploys <deploys@example.com>\""};
  return std::nullopt;
}

std::optional<Problem> check_event(const std::string& v) {
  for (std::string_view e : event_names())
    if (e == v) return std::nullopt;
  std::vector<std::string> all(event_names().begin(), event_names().end());
  std::string hint = "valid events: ";
  for (size_t i = 0; i < all.size(); ++i) hint += (i ? ", " : "") + all[i];
  std::string near = closest(v, all);
  if (!near.empty()) hint = "did you mean '" + near + "'? " + hint;
  return Problem{"unknown event '" + v + "'", hint};
}

std::optional<Problem> check_token(const std::string& v) {
  if (v.empty() || all_of(v, token_char)) return std::nullopt;
  return Problem{"'" + v + "' is not a valid cookie or header name",
                 "use letters, digits and - _ ."};
}

void read_health(Reader& r, HealthCheck& h) {
  r.str("path", h.path, check_http_path);
  r.duration("interval", h.interval, 1ms);
  r.duration("timeout", h.timeout, 1ms);
  r.integer("healthy_threshold", h.healthy_threshold, 1, 100);
  r.integer("unhealthy_threshold", h.unhealthy_threshold, 1, 100);
  r.duration("start_timeout", h.start_timeout, 1ms);
}

void read_service(Reader& r, const std::string& name, Service& s) {
  s.name = name;
  // WHY: `web` and `worker` are what nearly every app names them; any other
  // name must say which kind it is (a worker mistaken for web would wait
  // for a health check it never answers).
  bool kind_given =
      r.choice("kind", s.kind, {{"web", ServiceKind::kWeb}, {"worker", ServiceKind::kWorker}},
               "the service's name if `web` or `worker`, else required");
  if (!kind_given && !r.diags().recording() && !r.node("kind")) {
    if (name == "worker")
      s.kind = ServiceKind::kWorker;
    else if (name != "web")
      r.error("kind", "missing required key 'kind' for service '" + name + "'",
              "add kind: web (takes HTTP traffic on $PORT) or kind: worker (takes none)");
  }
  if (!r.str("command", s.command, check_nonempty, "required") && !r.node("command") &&
      !r.diags().recording())
    r.error("command", "missing required key 'command' for service '" + name + "'",
            "the shell command that starts one process, run in the release directory");
  bool web = s.kind == ServiceKind::kWeb;
  r.integer("count", s.count, 0, 1000);
  r.object("health", [&](Reader& h) { read_health(h, s.health); });
  r.str("host", s.host, check_host_header);
  r.str("path_prefix", s.path_prefix, check_http_path);
  r.duration("stop_grace", s.stop_grace);
  r.string_map("env", s.env, check_env_var);
  if (r.diags().recording()) return;
  if (web && s.count < 1 && r.node("count"))
    r.error("count", "a web service needs at least 1 process",
            "set count: 1 or more, or kind: worker");
  if (!web) {
    for (const char* k : {"health", "host", "path_prefix"})
      if (r.node(k))
        r.error(k, std::string("'") + k + "' applies to web services only",
                "remove it, or set kind: web");
  }
  if (web && s.env.count("PORT"))
    r.error("env", "PORT is set by the agent for each web process",
            "remove it; read $PORT in the command");
}

void check_routes(Reader& r, const std::vector<Service>& services) {
  std::map<std::pair<std::string, std::string>, std::string> seen;
  for (const Service& s : services) {
    if (s.kind != ServiceKind::kWeb) continue;
    auto [it, fresh] = seen.emplace(std::make_pair(s.host, s.path_prefix), s.name);
    if (!fresh)
      r.error("services",
              "services '" + it->second + "' and '" + s.name + "' both route host '" + s.host +
                  "' path " + s.path_prefix,
              "give one of them another host or path_prefix");
  }
}

// An agent root the agent would refuse (agent/root.h): "/" or a system
// directory. Relative roots are under the config's folder: fine here.
std::optional<Problem> check_agent_root(const std::string& v) {
  if (auto p = check_nonempty(v)) return p;
  if (!v.empty() && v[0] == '/' && fs::is_system_dir(v))
    return Problem{"'" + v + "' is a system directory, not a directory of the agent's own",
                   "give a new or empty directory, e.g. /var/lib/meshdeploy"};
  return std::nullopt;
}

// hosts[].binary and hosts[].unit_dir: absolute, one line, not "/".
std::optional<Problem> check_remote_path(const std::string& v) {
  if (v.empty() || v[0] != '/' || has_control(v) || v.find_first_not_of('/') == std::string::npos)
    return Problem{"'" + v + "' is not an absolute path",
                   "e.g. /usr/local/bin/meshdeploy, /etc/systemd/system"};
  return std::nullopt;
}

// hosts[].unit: a systemd unit name without its suffix.
std::optional<Problem> check_unit_name(const std::string& v) {
  const bool ok = !v.empty() && v.size() <= 200 && v.find(".service") == std::string::npos &&
                  std::isalnum(static_cast<unsigned char>(v[0])) &&
                  std::all_of(v.begin(), v.end(), [](char c) {
                    return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("-_.@", c);
                  });
  if (ok) return std::nullopt;
  return Problem{"'" + v.substr(0, 64) + "' is not a systemd unit name",
                 "letters, digits, '-', '_', '.', '@', without .service, e.g. meshdeploy-agent"};
}

// The state store must be a real file (or a postgres:// URL): never under
// /proc or /sys, whose files are not storage. (/dev/shm is a tmpfs: fine.)
std::optional<Problem> check_state(const std::string& v) {
  if (auto p = check_nonempty(v)) return p;
  if (v.find("://") != std::string::npos) return std::nullopt;
  if (v == "agent" || v.starts_with("agent:")) return std::nullopt;  // checked with the hosts
  const std::string p = std::filesystem::path(v).lexically_normal().string();
  for (const char* bad : {"/proc", "/sys"}) {
    const std::string b(bad);
    if (p == b || p.rfind(b + "/", 0) == 0)
      return Problem{fmt::format("'{}' is under {}, not a place for the state store", v, b),
                     "e.g. .meshdeploy/state.db, or a postgres:// URL"};
  }
  return std::nullopt;
}

std::optional<Problem> check_name_template(const std::string& v) {
  if (auto p = check_nonempty(v)) return p;
  if (v.find("..") != std::string::npos)
    return Problem{"the artifact name '" + v + "' contains '..'",
                   "it names a file in artifact.dir, e.g. {app}-{version}.tar.gz"};
  return std::nullopt;
}

void read_host(Reader& r, Host& h) {
  bool named = r.str("name", h.name, check_name, "`local`, or the host part of `address`");
  r.str("address", h.address, check_address);
  r.str("agent_root", h.agent_root, check_agent_root, "`agent.root`");
  r.str("host_key", h.host_key, check_host_key, "`\"\"` (from `ssh.known_hosts`)");
  r.str("listen", h.listen, check_listen, "`proxy.listen`");
  r.str("binary", h.binary, check_remote_path);
  r.str("unit_dir", h.unit_dir, check_remote_path);
  r.str("unit", h.unit, check_unit_name);
  if (!named && h.address != "local") {
    std::string rest = h.address.substr(h.address.find("://") + 3);
    if (size_t at = rest.find('@'); at != std::string::npos) rest = rest.substr(at + 1);
    if (!rest.empty() && rest.front() == '[')
      rest = rest.substr(1, rest.find(']') - 1);
    else
      rest = rest.substr(0, rest.find(':'));
    h.name = rest;
  }
}

void read_step(Reader& r, CanaryStep& s) {
  if (!r.integer("weight", s.weight, 1, 100, "required") && !r.node("weight") &&
      !r.diags().recording())
    r.error("weight", "missing required key 'weight'",
            "the percent of traffic for this step, 1 to 100");
  r.duration("pause", s.pause);
  r.boolean("approval", s.approval);
}

void read_analysis(Reader& r, Analysis& a) {
  const bool max_set = r.number("max_error_ratio", a.max_error_ratio, 0, 1);
  const bool severe_set = r.number("severe_error_ratio", a.severe_error_ratio, 0, 1);
  r.number("max_p99_ms", a.max_p99_ms, 0, 3.6e6);
  r.number("significance", a.significance, 1e-9, 0.5);
  if (r.number("max_median_ratio", a.max_median_ratio, 0, 1000) && a.max_median_ratio > 0 &&
      a.max_median_ratio < 1)
    r.error("max_median_ratio", "must be 0 (off) or at least 1",
            "the canary's median / the live set's median above which it is slower, e.g. 1.5");
  r.number("max_p99_ratio", a.max_p99_ratio, 0, 1000);
  r.number("min_latency_delta_ms", a.min_latency_delta_ms, 0, 3.6e6);
  int64_t min_requests = static_cast<int64_t>(a.min_requests);
  if (r.integer("min_requests", min_requests, 0, 1'000'000'000))
    a.min_requests = static_cast<uint64_t>(min_requests);
  r.integer("consecutive_windows", a.consecutive_windows, 1, 100);
  r.duration("warmup", a.warmup, 0ms, 24h);
  // WHY here: an environment's analysis overrides its defaults' key by key,
  // so the pair is checked on the values this layer ends with.
  if ((max_set || severe_set) && a.severe_error_ratio < a.max_error_ratio)
    r.error(
        severe_set ? "severe_error_ratio" : "max_error_ratio",
        fmt::format("severe_error_ratio {:g} is below max_error_ratio {:g}", a.severe_error_ratio,
                    a.max_error_ratio),
        "a 5xx ratio above severe_error_ratio breaches at once; set it at least max_error_ratio");
  r.choice("on_inconclusive", a.on_inconclusive,
           {{"wait", Inconclusive::kWait}, {"fail", Inconclusive::kFail}});
  r.duration("interval", a.interval, 100ms);
  r.duration("max_inconclusive", a.max_inconclusive, 1ms);
}

void read_strategy(Reader& r, Strategy& s) {
  r.choice("kind", s.kind,
           {{"blue_green", StrategyKind::kBlueGreen}, {"canary", StrategyKind::kCanary}});
  std::vector<CanaryStep> steps;
  bool have_steps = r.list(
      "steps",
      [&](size_t, Reader& item) {
        CanaryStep step;
        read_step(item, step);
        steps.push_back(step);
      },
      "`5, 25, 50, 100` with `30s` pauses");
  r.object("analysis", [&](Reader& a) { read_analysis(a, s.analysis); });
  r.duration("watch_window", s.watch_window);
  r.str("sticky_cookie", s.sticky_cookie, check_token);
  r.str("sticky_header", s.sticky_header, check_token);
  r.object("hosts", [&](Reader& h) {
    h.duration("unreachable_after", s.hosts.unreachable_after, 1s, 1h);
    h.duration("rollback_wait", s.hosts.rollback_wait, 0ms, 24h);
  });
  if (r.diags().recording()) return;

  if (!s.sticky_cookie.empty() && !s.sticky_header.empty())
    r.error("sticky_header", "set either sticky_cookie or sticky_header, not both");
  // WHY steps (and stickiness) with either kind: an environment may default
  // to blue_green and take `deploy --strategy canary`, which uses them.
  if (!have_steps) {
    s.steps = {{5, 30s, false}, {25, 30s, false}, {50, 30s, false}, {100, 0ms, false}};
    return;
  }
  s.steps = steps;
  if (r.node("steps") && r.node("steps")->type == Node::Type::kSeq &&
      r.node("steps")->seq.empty()) {
    r.error("steps", "a canary needs at least one step",
            "e.g. steps: [{weight: 10, pause: 1m}, {weight: 100}]");
    return;
  }
  const Node* list = r.node("steps");
  if (!list || steps.size() != list->seq.size()) return;  // items already reported
  for (size_t i = 1; i < steps.size(); ++i) {
    if (steps[i].weight <= steps[i - 1].weight) {
      const Node& item = list->seq[i];
      const Node* w = item.find("weight");
      r.diags().add(w ? w->mark : item.mark, w ? w->path : item.path,
                    "canary weights must increase: " + std::to_string(steps[i].weight) +
                        " follows " + std::to_string(steps[i - 1].weight),
                    "order the steps by weight");
    }
  }
  if (steps.back().weight != 100) {
    const Node& item = list->seq.back();
    const Node* w = item.find("weight");
    r.diags().add(w ? w->mark : item.mark, w ? w->path : item.path,
                  "the last canary step must send 100% of traffic, not " +
                      std::to_string(steps.back().weight) + "%",
                  "add a final step: - weight: 100");
  }
}

void read_migrations(Reader& r, Migrations& m) {
  r.boolean("enabled", m.enabled);
  r.str("dir", m.dir, check_nonempty);
  r.str("database_url_secret", m.database_url_secret, check_secret_name);
  r.duration("lock_timeout", m.lock_timeout, 1ms);
  r.duration("statement_timeout", m.statement_timeout, 1ms);
  r.integer("lock_retries", m.lock_retries, 0, 100);
  r.boolean("include_all", m.include_all);
  r.boolean("backup", m.backup);
  r.str("backup_dir", m.backup_dir, check_nonempty);
  r.boolean("require_lint_clean", m.require_lint_clean);
}

void read_channel(Reader& r, const std::string& name, Channel& c, const EnvContext& ctx) {
  c.name = name;
  bool kind = r.choice("kind", c.kind,
                       {{"slack", ChannelKind::kSlack},
                        {"webhook", ChannelKind::kWebhook},
                        {"email", ChannelKind::kEmail}},
                       "required");
  if (!kind && !r.node("kind") && !r.diags().recording())
    r.error("kind", "missing required key 'kind' for channel '" + name + "'",
            "valid values: slack, webhook, email");
  r.strings("events", c.events, check_event, "`[]` (every event)");
  r.strings("environments", c.environments, check_name, "`[]` (every environment)");
  r.str("url_secret", c.url_secret, check_secret_name);
  r.strings("signing_secrets", c.signing_secrets, check_secret_name);
  r.str("smtp_url", c.smtp_url, check_smtp_url);
  r.str("smtp_user", c.smtp_user);
  r.str("smtp_password_secret", c.smtp_password_secret, check_secret_name);
  r.boolean("starttls", c.starttls);
  r.str("from", c.from, check_mailbox);
  r.strings("to", c.to, check_mailbox);
  r.duration("timeout", c.timeout, 1ms);
  r.duration("retry_horizon", c.retry_horizon, 1ms);
  if (r.diags().recording() || !kind) return;

  for (const std::string& e : c.environments) {
    if (std::find(ctx.all_envs.begin(), ctx.all_envs.end(), e) == ctx.all_envs.end()) {
      std::string near = closest(e, ctx.all_envs);
      r.error("environments",
              fmt::format("channel '{}' names environment '{}', which is not defined", name, e),
              near.empty() ? "defined: " +
                                 [&] {
                                   std::string s;
                                   for (const auto& x : ctx.all_envs)
                                     s += (s.empty() ? "" : ", ") + x;
                                   return s;
                                 }()
                           : "did you mean '" + near + "'?");
    }
  }
  std::string kind_name(channel_kind_name(c.kind));
  auto only = [&](const char* key, bool allowed, const char* for_kinds) {
    if (!allowed && r.node(key))
      r.error(
          key,
          std::string("'") + key + "' applies to " + for_kinds + " channels only, not " + kind_name,
          "remove it, or change kind");
  };
  bool email = c.kind == ChannelKind::kEmail;
  only("url_secret", !email, "slack and webhook");
  only("signing_secrets", c.kind == ChannelKind::kWebhook, "webhook");
  for (const char* k : {"smtp_url", "smtp_user", "smtp_password_secret", "starttls", "from", "to"})
    only(k, email, "email");
  auto need = [&](const char* key, bool present, const char* what) {
    if (!present && !r.node(key))
      r.error(key,
              "missing required key '" + std::string(key) + "' for " + kind_name + " channel '" +
                  name + "'",
              what);
  };
  if (email) {
    need("smtp_url", !c.smtp_url.empty(), "e.g. smtp://mail.example.com:587");
    need("from", !c.from.empty(), "the sender address, e.g. deploys@example.com");
    need("to", !c.to.empty(), "a list of recipients, e.g. [ops@example.com]");
    if (r.node("to") && c.to.empty() && r.node("to")->seq.empty())
      r.error("to", "an email channel needs at least one recipient");
    if (!c.smtp_user.empty() && c.smtp_password_secret.empty())
      r.error("smtp_password_secret", "smtp_user is set but no smtp_password_secret",
              "name the secret that holds the SMTP password");
  } else {
    need("url_secret", !c.url_secret.empty(),
         "the name of the secret holding the URL (meshdeploy secrets set NAME)");
  }
}

void read_notifications(Reader& r, Notifications& n, const EnvContext& ctx) {
  r.str("dashboard_url", n.dashboard_url, check_http_url);
  r.named("channels", check_name, [&](const std::string& name, Reader& c) {
    Channel ch;
    read_channel(c, name, ch, ctx);
    n.channels.push_back(std::move(ch));
  });
}

void read_hooks(Reader& r, Hooks& h) {
  r.str("pre_deploy", h.pre_deploy);
  r.str("post_deploy", h.post_deploy);
  r.str("on_failure", h.on_failure);
  r.str("on_rollback", h.on_rollback);
  r.duration("timeout", h.timeout, 1ms);
}

void read_proxy(Reader& r, ProxySettings& p) {
  r.str("listen", p.listen, check_listen);
  r.duration("drain_timeout", p.drain_timeout);
  r.duration("stream_drain_timeout", p.stream_drain_timeout);
  r.str("tls_cert", p.tls_cert);
  r.str("tls_key", p.tls_key);
  r.integer("max_connections", p.max_connections, 0, 10'000'000);
  if (!r.diags().recording() && p.tls_cert.empty() != p.tls_key.empty())
    r.error(p.tls_cert.empty() ? "tls_key" : "tls_cert", "tls_cert and tls_key go together",
            "set both (PEM files) or neither");
}

void read_ssh(Reader& r, SshSettings& s) {
  r.str("known_hosts", s.known_hosts, nullptr, "`\"\"` (ssh's own known_hosts files)");
  r.str("known_hosts_secret", s.known_hosts_secret, nullptr, "`\"\"`");
  r.str(
      "user", s.user,
      [](const std::string& v) -> std::optional<Problem> {
        if (v.empty() || ssh::Endpoint::parse("ssh://" + v + "@h")) return std::nullopt;
        return Problem{"'" + v.substr(0, 40) + "' is not a user name",
                       "letters, digits, '.', '-', '_', not starting with '-'"};
      },
      "`\"\"` (ssh's default)");
  r.integer("port", s.port, 0, 65535, "`0` (ssh's default, 22)");
  r.str("key_secret", s.key_secret, nullptr, "`\"\"` (ssh-agent or default identities)");
  r.duration("connect_timeout", s.connect_timeout, 1000ms, 600000ms);
}

void read_agent(Reader& r, AgentSettings& a) {
  r.str("root", a.root, check_agent_root);
  r.str("socket", a.socket, nullptr, "`<root>/agent.sock`");
}

std::optional<Problem> check_actor_pattern(const std::string& v) {
  if (v.empty())
    return Problem{"an actor pattern must not be empty", "e.g. alice, \"team-*\" or \"github:*\""};
  for (char c : v) {
    if (std::isspace(static_cast<unsigned char>(c)) || static_cast<unsigned char>(c) < 0x20 ||
        c == 0x7f)
      return Problem{
          "actor pattern '" + v.substr(0, 64) + "' contains white space or a control character",
          "actors are user names like alice or github:octocat; `*` and `?` are the wildcards"};
  }
  if (v.size() > 256)
    return Problem{"actor pattern '" + v.substr(0, 64) + "...' is longer than 256 characters", ""};
  return std::nullopt;
}

// `access.<operation>`: absent = everyone; present = these patterns only.
void read_access(Reader& r, Access& a) {
  for (Operation op : {Operation::kDeploy, Operation::kRollback, Operation::kPromote}) {
    const std::string key(operation_name(op));
    std::vector<std::string> allow;
    if (!r.strings(key, allow, check_actor_pattern, "absent (everyone; `[]` = nobody)")) continue;
    Mark m = r.mark_of(key);
    std::optional<AccessRule>& rule = op == Operation::kDeploy     ? a.deploy
                                      : op == Operation::kRollback ? a.rollback
                                                                   : a.promote;
    rule = AccessRule{std::move(allow), r.diags().file + ":" + std::to_string(m.line)};
  }
}

// A key file that exists must be a regular file owned by this user (a
// FIFO would block, a device or another user's file is not a key). A
// missing one is not an error here: the secrets commands say so.
void check_key_file(Reader& r, const Environment& env) {
  std::filesystem::path p(env.key_file);
  if (p.is_relative()) p = env.base_dir / p;
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return;
  if (!S_ISREG(st.st_mode))
    r.error("key_file", "'" + env.key_file + "' is not a regular file",
            "point key_file at the key written by `meshdeploy secrets init`");
  else if (st.st_uid != ::geteuid())
    r.error("key_file",
            "'" + env.key_file + "' is owned by uid " + std::to_string(st.st_uid) +
                ", not by you (uid " + std::to_string(::geteuid()) + ")",
            "a key file must be yours: chown it, or use your own key");
}

}  // namespace

std::optional<Problem> check_name(const std::string& v) {
  if (!v.empty() && v.size() <= 63 && all_of(v, lower_name_char) &&
      std::isalnum(static_cast<unsigned char>(v[0])))
    return std::nullopt;
  return Problem{
      "'" + v.substr(0, 64) + "' is not a valid name",
      "use lower-case letters, digits, '-' and '_', starting with a letter or digit (at most 63)"};
}

std::optional<Problem> check_env_var(const std::string& v) {
  if (!v.empty() && v.size() <= 255 && all_of(v, var_char) &&
      !std::isdigit(static_cast<unsigned char>(v[0])))
    return std::nullopt;
  return Problem{"'" + v.substr(0, 64) + "' is not a valid variable name",
                 "use letters, digits and '_', not starting with a digit"};
}

void read_environment(Reader& r, Environment& env, const EnvContext& ctx) {
  env.name = ctx.name;
  bool recording = r.diags().recording();
  bool have_services = r.named("services", check_name, [&](const std::string& name, Reader& s) {
    Service svc;
    read_service(s, name, svc);
    env.services.push_back(std::move(svc));
  });
  r.object("artifact", [&](Reader& a) {
    a.str("dir", env.artifact.dir, check_nonempty);
    a.str("name_template", env.artifact.name_template, check_name_template);
    if (!recording && env.artifact.name_template.find("{version}") == std::string::npos)
      a.error("name_template", "the artifact name must contain {version}", "e.g. {app}-{version}");
  });
  std::vector<Host> hosts;
  bool have_hosts = r.list(
      "hosts",
      [&](size_t, Reader& h) {
        Host host;
        read_host(h, host);
        hosts.push_back(std::move(host));
      },
      "one host: `{name: local, address: local}`");
  r.object("strategy", [&](Reader& s) { read_strategy(s, env.strategy); });
  r.object("migrations", [&](Reader& m) { read_migrations(m, env.migrations); });
  r.object("notifications", [&](Reader& n) { read_notifications(n, env.notifications, ctx); });
  r.object("hooks", [&](Reader& h) { read_hooks(h, env.hooks); });
  r.object("proxy", [&](Reader& p) { read_proxy(p, env.proxy); });
  r.object("ssh", [&](Reader& s) { read_ssh(s, env.ssh); });
  r.object("agent", [&](Reader& a) { read_agent(a, env.agent); });
  r.duration("rollback_window", env.rollback_window);
  r.integer("keep_releases", env.keep_releases, 1, 1000);
  r.string_map("env", env.env, check_env_var);
  r.strings("secrets", env.secrets, check_secret_or_star);
  r.str("vault", env.vault, check_nonempty, "`.meshdeploy/secrets/<env>.vault`");
  if (r.str("key_file", env.key_file, nullptr, "`\"\"` (use `MESHDEPLOY_KEY_<ENV>`)") &&
      !env.key_file.empty())
    check_key_file(r, env);
  r.str("state", env.state, check_state,
        "`.meshdeploy/state.db`; `agent` (the first host's) when a host is `ssh://`");
  r.object("access", [&](Reader& a) { read_access(a, env.access); });
  if (recording) return;

  if (!have_services || env.services.empty())
    r.error("services", "environment '" + ctx.name + "' has no services",
            "define at least one under services:, e.g. web: {command: node server.js}");
  check_routes(r, env.services);
  if (have_hosts && r.node("hosts")->seq.empty())
    r.error("hosts", "an environment needs at least one host",
            "remove hosts: to deploy to this machine");
  if (have_hosts) env.hosts = std::move(hosts);
  if (env.hosts.empty()) env.hosts.push_back(Host{});
  std::set<std::string> host_names;
  for (size_t i = 0; i < env.hosts.size(); ++i) {
    if (!host_names.insert(env.hosts[i].name).second)
      r.error("hosts", "two hosts are named '" + env.hosts[i].name + "'",
              "give each host a distinct name");
  }
  for (const std::string& s : env.secrets) {
    if (env.env.count(s))
      r.error("env", "'" + s + "' is both a plain variable (env) and a secret",
              "keep it in one of them");
  }
  if (env.migrations.enabled && env.migrations.database_url_secret.empty())
    r.error("migrations", "migrations are enabled but database_url_secret is empty",
            "name the secret that holds the database URL, or set enabled: false");

  // Computed defaults.
  if (env.vault.empty()) env.vault = ".meshdeploy/secrets/" + ctx.name + ".vault";
  env.state_defaulted = env.state.empty();
  if (env.state.empty()) {
    // WHY on the hosts: a controller that reaches hosts over ssh is often
    // throw-away (a CI runner); a file beside it would lose the lock, the
    // history and the journal to resume with it (docs/hosts.md).
    bool ssh = false;
    for (const Host& h : env.hosts) ssh = ssh || h.address.starts_with("ssh://");
    env.state = ssh ? "agent:" + env.hosts.front().name : ".meshdeploy/state.db";
  } else if (env.state == "agent" || env.state.starts_with("agent:")) {
    if (env.state == "agent") env.state = "agent:" + env.hosts.front().name;
    const std::string name = env.state.substr(6);
    bool known = false;
    for (const Host& h : env.hosts) known = known || h.name == name;
    if (!known)
      r.error("state", "state: '" + name + "' is not a host of environment '" + ctx.name + "'",
              "write agent (the first host) or agent:<one of hosts[].name>");
  }
  if (env.agent.socket.empty()) env.agent.socket = env.agent.root + "/agent.sock";
  for (Host& h : env.hosts) {
    if (h.agent_root.empty()) h.agent_root = env.agent.root;
    if (h.listen.empty()) h.listen = env.proxy.listen;
  }
}

}  // namespace md::config::detail
