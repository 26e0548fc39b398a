// meshdeploy.yml: load, validate (file:line:col diagnostics), resolve one
// environment (shared defaults + the environment's overlay), ${VAR}
// interpolation from the process environment, dotenv parsing.
//
// CONTRACT for the other subsystems: the field names below are stable; new
// fields may be added, existing ones are not renamed. Every field documents
// its default, and docs/configuration.md documents every key (a test checks).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/error.h"

namespace md::config {

// ---- one environment, fully resolved -------------------------------------

struct HealthCheck {
  std::string path = "/healthz";  // GET path; 2xx/3xx is healthy
  Millis interval{1000};          // between checks
  Millis timeout{2000};           // per check
  int healthy_threshold = 1;      // consecutive passes to become healthy
  int unhealthy_threshold = 3;    // consecutive failures to become unhealthy
  Millis start_timeout{60000};    // a new process must be healthy within this
};

enum class ServiceKind { kWeb, kWorker };

struct Service {
  std::string name;  // key under `services:`
  ServiceKind kind = ServiceKind::kWeb;
  std::string command;                     // run with /bin/sh -c in the release dir (required)
  int count = 1;                           // processes of this service per host
  HealthCheck health;                      // web only
  std::string host;                        // web: route by Host header ("" = any)
  std::string path_prefix = "/";           // web: route by path prefix
  Millis stop_grace{30000};                // SIGTERM → SIGKILL
  std::map<std::string, std::string> env;  // extra variables for this service
};

struct Artifact {
  // Where releases come from: a local directory holding <app>-<version>.tar.gz
  // or .tar.zst, each with a <file>.sha256 beside it. Default "dist".
  std::string dir = "dist";
  std::string name_template = "{app}-{version}";  // file stem
};

struct Host {
  std::string name = "local";     // label in status output
  std::string address = "local";  // "local", or "ssh://user@host[:port]"
  std::string agent_root;         // default: the environment's agent.root (filled in by resolve);
                                  // on an ssh host a relative path is under the user's home
  std::string host_key;           // ssh host key "ssh-ed25519 AAAA..." ("" = from ssh.known_hosts)
  std::string listen;  // this host's proxy listener; default proxy.listen (filled in by resolve)
  // Where `hosts setup` installs the agent on this host (docs/hosts.md).
  std::string binary = "/usr/local/bin/meshdeploy";  // the meshdeploy binary, absolute
  std::string unit_dir = "/etc/systemd/system";      // the folder of the systemd unit, absolute
  std::string unit = "meshdeploy-agent";             // the unit's name, without ".service"
};

// How the controller reaches ssh hosts (docs/hosts.md).
struct SshSettings {
  std::string known_hosts;         // known_hosts file ("" = ssh's own files)
  std::string known_hosts_secret;  // vault secret holding known_hosts lines ("" = none)
  std::string user;                // login user for addresses without one ("" = ssh's default)
  int port = 0;                    // port for addresses without one (0 = ssh's default, 22)
  std::string key_secret;          // vault secret holding the private key ("" = ssh-agent)
  Millis connect_timeout{10000};   // per connection attempt
};

enum class StrategyKind { kBlueGreen, kCanary };
enum class Inconclusive { kWait, kFail };

struct CanaryStep {
  int weight = 0;         // percent of traffic to the new release, 1..100
  Millis pause{0};        // hold at this weight (and keep analysing) before the next
  bool approval = false;  // wait for `meshdeploy promote` before moving on
};

struct Analysis {
  double max_error_ratio = 0.01;    // canary 5xx / requests above this breaches a window
  double severe_error_ratio = 0.1;  // ... above this is a breach at once (>= max_error_ratio)
  double max_p99_ms = 0;            // absolute p99 ceiling in ms, 0 = off
  double significance = 0.01;       // Mann-Whitney p below this: the canary is slower
  double max_median_ratio = 1.5;    // ... and its median above this x live's breaches, 0 = off
  double max_p99_ratio = 2.0;       // ... or its p99 above this x live's breaches, 0 = off
  double min_latency_delta_ms = 5;  // ... and only by more than this many ms (median or p99)
  uint64_t min_requests = 50;       // fewer canary requests in a window: not judged
  int consecutive_windows = 3;      // breaching windows in a row that make a breach
  Millis warmup{10000};             // not judged after each weight change and canary restart
  Inconclusive on_inconclusive = Inconclusive::kWait;
  Millis interval{5000};            // one analysis window
  Millis max_inconclusive{300000};  // waiting for traffic longer than this fails the step
};

// An environment of several hosts (docs/hosts.md): when one stops answering.
struct HostsPolicy {
  // A host whose agent does not answer for this long fails the deploy (and,
  // after the switch, rolls every host back). One host: agent calls wait 30s.
  Millis unreachable_after{10000};
  // Rolling back, how long to wait for a host that does not answer before
  // the deploy ends failed naming it (`deploy --resume` finishes it).
  Millis rollback_wait{600000};
};

struct Strategy {
  StrategyKind kind = StrategyKind::kBlueGreen;
  std::vector<CanaryStep> steps;  // canary only; when `steps:` is absent: 5, 25, 50, 100 with 30s
                                  // pauses (filled in by resolve)
  Analysis analysis;
  Millis watch_window{30000};  // keep analysing at 100 % before declaring success
  std::string sticky_cookie;   // canary assignment sticky by this cookie ("" = off)
  std::string sticky_header;   // ... or by this request header ("" = off)
  HostsPolicy hosts;           // more than one host only
};

struct Migrations {
  bool enabled = true;
  std::string dir = "supabase/migrations";
  std::string database_url_secret = "DATABASE_URL";  // name of the secret holding the URL
  Millis lock_timeout{3000};
  Millis statement_timeout{600000};
  int lock_retries = 5;      // lock-timeout retries with backoff and jitter
  bool include_all = false;  // apply files older than the newest applied one
  bool backup = false;       // pg_dump -Fc before applying
  std::string backup_dir = ".meshdeploy/backups";
  bool require_lint_clean = true;  // a deploy refuses unacknowledged findings
};

enum class ChannelKind { kSlack, kWebhook, kEmail };

struct Channel {
  std::string name;  // key under notifications.channels
  ChannelKind kind = ChannelKind::kWebhook;
  std::vector<std::string> events;           // empty = all events
  std::vector<std::string> environments;     // empty = all environments
  std::string url_secret;                    // slack/webhook: secret holding the URL
  std::vector<std::string> signing_secrets;  // webhook: secrets holding whsec_... keys
  std::string smtp_url;                      // email: smtp://host:port or smtps://
  std::string smtp_user;
  std::string smtp_password_secret;              // email: secret holding the password
  bool starttls = true;                          // email: require STARTTLS on smtp://
  std::string from;                              // email
  std::vector<std::string> to;                   // email recipients
  Millis timeout{10000};                         // one delivery attempt
  Millis retry_horizon{3 * 24 * 3600 * 1000LL};  // give up after this

  // True when this channel receives `event` (a name from event_names()) from
  // `environment`: `events` is empty or names it, and `environments` is empty
  // or names it. Pure.
  bool wants(std::string_view event, std::string_view environment) const;
};

// The event names `notifications.channels.<name>.events` accepts, in the
// order notify declares them: started, succeeded, failed, rolled_back,
// canary_step, approval_needed.
std::span<const std::string_view> event_names();

struct Notifications {
  std::vector<Channel> channels;
  std::string dashboard_url;  // links in messages ("" = none)
};

struct Hooks {
  std::string pre_deploy;  // /bin/sh -c; non-zero stops the deploy before anything changes
  std::string post_deploy;
  std::string on_failure;
  std::string on_rollback;
  Millis timeout{300000};
};

struct ProxySettings {
  std::string listen = "127.0.0.1:8080";  // public listener of the agent's proxy
  Millis drain_timeout{30000};            // in-flight requests on the old set
  Millis stream_drain_timeout{30000};     // SSE / WebSocket on the old set
  std::string tls_cert;                   // PEM paths ("" = plain HTTP)
  std::string tls_key;
  // Client connections per listener (agent run --max-connections); at the
  // cap an idle one is closed, else the new one refused. 0 = from the
  // open-file limit (docs/proxy.md, "Connection limits").
  int64_t max_connections = 0;
};

struct AgentSettings {
  std::string root = ".meshdeploy/agent";  // releases/, logs/, state
  std::string socket;                      // default: <root>/agent.sock (filled in by resolve)
};

// Who may run an operation on an environment: `access.<operation>`.
struct AccessRule {
  // Glob patterns (`*` any run of characters, `?` one) matched against the
  // whole actor (docs/deploy.md, "Access control"); empty = nobody.
  std::vector<std::string> allow;
  std::string where;  // "meshdeploy.yml:12": where the list is written (file as given to load)
};

// The operations `access:` names, in the order the file documents them.
enum class Operation { kDeploy, kRollback, kPromote };
std::string_view operation_name(Operation op);  // "deploy", "rollback", "promote"

struct Access {
  // nullopt (the key is absent) = everyone may. deploy: `deploy` and
  // `deploy --resume`; rollback: `rollback`; promote: `promote` and `abort`.
  std::optional<AccessRule> deploy;
  std::optional<AccessRule> rollback;
  std::optional<AccessRule> promote;
  const std::optional<AccessRule>& rule(Operation op) const;
};

struct Environment {
  std::string name;                // development | staging | production | ...
  std::string app;                 // top-level `app:`
  std::filesystem::path base_dir;  // directory of meshdeploy.yml
  std::vector<Service> services;
  Artifact artifact;
  std::vector<Host> hosts;  // default: one local host
  SshSettings ssh;          // used by ssh:// hosts only
  Strategy strategy;
  Migrations migrations;
  Notifications notifications;
  Hooks hooks;
  ProxySettings proxy;
  AgentSettings agent;
  Millis rollback_window{15 * 60 * 1000};  // keep the old release warm this long
  int keep_releases = 5;                   // releases kept on disk
  std::map<std::string, std::string> env;  // plain (non-secret) variables for processes
  std::vector<std::string> secrets;        // secret names every process receives ("*" = all)
  std::string vault;     // default .meshdeploy/secrets/<env>.vault (filled in by resolve)
  std::string key_file;  // default: none (MESHDEPLOY_KEY_<ENV>)
  // State store: a SQLite path, a postgres:// URL, or "agent:<host name>"
  // (the store a host's agent serves; `agent` alone is the first host).
  // Default .meshdeploy/state.db, or the first host's agent when a host is
  // ssh:// (filled in by resolve).
  std::string state;
  bool state_defaulted = false;  // `state:` was not written (status says where it went)
  Access access;                 // default: every operation open to everyone
};

// ---- access control (access.cc) ----------------------------------------------

// True when `pattern` matches all of `text`: `*` matches any run of
// characters (also none), `?` exactly one, everything else itself
// (case-sensitive). Pure; linear in practice, never exponential.
bool glob_match(std::string_view pattern, std::string_view text);

struct AccessDecision {
  bool allowed = true;
  std::string rule;     // "access.deploy"; "" when the operation is open to everyone
  std::string where;    // the rule's place, "meshdeploy.yml:12" ("" when none)
  std::string message;  // refused only: "user X may not deploy to production
                        // (access.deploy in meshdeploy.yml:12 allows: alice, team-*)"
};
// Whether `actor` may run `op` on `env`: allowed when access.<op> is absent
// or one of its patterns matches; refused when the list is empty or none
// matches. `action` words the refusal ("deploy to production"); "" uses
// "<operation> <environment>". An empty actor is refused by every rule. Pure.
AccessDecision check_access(const Environment& env, Operation op, std::string_view actor,
                            std::string_view action = {});

// Names used in the file ("web", "canary", "slack", "wait", ...).
std::string_view service_kind_name(ServiceKind k);
std::string_view strategy_kind_name(StrategyKind k);
std::string_view channel_kind_name(ChannelKind k);
std::string_view inconclusive_name(Inconclusive i);

// Durations as the file writes them: one or more <number><unit> with units
// ms, s, m, h, d ("30s", "500ms", "1h30m", "1.5s"), or "0". kInvalidArgument
// with a reason otherwise (a bare number has no unit and is refused).
Result<Millis> parse_duration(std::string_view text);
// The shortest exact spelling: 0 -> "0", 1500ms -> "1500ms", 90s -> "90s",
// 15 min -> "15m", 72 h -> "72h".
std::string format_duration(Millis d);

// A secret the environment refers to by name, and the key that refers to it
// (e.g. {"DATABASE_URL", "migrations.database_url_secret"}). "*" in
// `secrets:` is reported as the name "*".
struct SecretRef {
  std::string name;
  std::string used_by;
};
// Every secret reference of `env`, sorted by name then key. Pure.
std::vector<SecretRef> secret_references(const Environment& env);

// The resolved environment for people (`config show`), keyed like the file.
// Secrets appear only by name, each with the value "[REDACTED]"; no value is
// ever read. `secret_names` adds names known from elsewhere (e.g. the vault's
// name list) to the secrets section; may be empty.
std::string render_yaml(const Environment& env, std::span<const std::string> secret_names = {});
std::string render_json(const Environment& env, std::span<const std::string> secret_names = {});

// One key the loader accepts, for docs and tests: `path` is relative to
// `defaults:` / `environments.<name>:` for environment settings
// ("services.<name>.health.path"), or starts at the top for the four
// top-level keys ("app", "version", "defaults", "environments").
struct KeyInfo {
  std::string path;
  std::string type;          // "string", "integer", "number", "boolean", "duration", ...
  std::string default_text;  // as docs/configuration.md shows it, e.g. "30s", "\"\"", "[]"
  bool top_level = false;
};
// Every key, in schema order. Never empty.
const std::vector<KeyInfo>& schema_keys();

// ---- the file ------------------------------------------------------------

// One problem in a configuration file.
struct Diagnostic {
  std::string file;
  int line = 0;     // 1-based; 0 when not tied to a place
  int column = 0;   // 1-based
  std::string key;  // dotted path, e.g. environments.production.strategy.kind
  std::string message;
  std::string hint;  // e.g. "did you mean 'health'?" ("" = none)
  // "file:line:col: key: message (hint)"
  std::string format() const;
};

// A loaded meshdeploy.yml (opaque tree kept for resolve()).
struct Config {
  std::filesystem::path file;
  std::string app;
  std::vector<std::string> environments;  // names, in file order
  struct Tree;                            // yaml-cpp lives only in config/
  std::shared_ptr<const Tree> tree;
};

// Loads and validates. On any problem returns every diagnostic at once
// (never just the first). Interpolates ${VAR} from `getenv`; an undefined
// variable is a diagnostic, not an empty string.
struct LoadResult {
  std::optional<Config> config;  // set when diagnostics is empty
  std::vector<Diagnostic> diagnostics;
};
LoadResult load(const std::filesystem::path& file);

// Same, from text already in memory. `file` names it in diagnostics and sets
// base_dir (its parent directory, made absolute); `lookup` replaces getenv
// (nullopt = undefined). Never throws; used by tests and the fuzzer.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
LoadResult load_text(std::string_view text, const std::filesystem::path& file,
                     const EnvLookup& lookup);
// The process environment as an EnvLookup.
std::optional<std::string> getenv_lookup(const std::string& name);

// Resolves one environment: defaults, then shared `defaults:`, then the
// environment's overlay. kNotFound for an unknown environment name (the
// message lists the known ones).
Result<Environment> resolve(const Config& config, const std::string& env_name);

// Checks every secret name `env_name` refers to (secrets:, the migrations'
// database URL, channel URLs, keys and passwords) against `known` — the names
// in the environment's vault (secrets::Vault::peek, no key needed). One
// diagnostic per missing name, at the place that names it (line 0 when the
// name is a built-in default, e.g. DATABASE_URL). "*" is never missing.
// Empty for an unknown environment. Pure.
std::vector<Diagnostic> check_secret_names(const Config& config, const std::string& env_name,
                                           std::span<const std::string> known);

// Finds meshdeploy.yml: `explicit_path` if set, else ./meshdeploy.yml, else
// ./meshdeploy.yaml. kNotFound naming what was tried.
Result<std::filesystem::path> locate(const std::string& explicit_path);

// ---- dotenv --------------------------------------------------------------

struct DotenvEntry {
  std::string key;
  std::string value;
  int line = 0;
};
// Parses dotenv text as the dotenv libraries do (motdotla/dotenv, bkeepers
// dotenv): `export` prefixes, `#` comment lines, `KEY=` (empty), unquoted
// values trimmed with an inline ` # comment` removed, 'single' (literal),
// "double" (\n \r \t \" \\ \$ escapes) and `backtick` (literal) quotes, quoted
// values spanning lines, CRLF line ends. A key may repeat: every occurrence is
// returned, in order (the last one wins for callers that build a map).
// kInvalidArgument naming `source_name:line` on malformed input (no '=', bad
// key, unterminated quote, text after a closing quote). Never returns a
// value inside an error message.
Result<std::vector<DotenvEntry>> parse_dotenv(std::string_view text,
                                              const std::string& source_name);

}  // namespace md::config
