// meshdeploy.yml: load, validate (file:line:col diagnostics), resolve one
// environment (shared defaults + the environment's overlay), ${VAR}
// interpolation from the process environment, dotenv parsing.
//
// CONTRACT for the other subsystems: the field names below are stable; new
// fields may be added, existing ones are not renamed. Every field documents
// its default, and docs/configuration.md documents every key (a test checks).
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/error.h"

namespace md::config {

// ---- one environment, fully resolved -------------------------------------

struct HealthCheck {
  std::string path = "/healthz";   // GET path; 2xx/3xx is healthy
  Millis interval{1000};           // between checks
  Millis timeout{2000};            // per check
  int healthy_threshold = 1;       // consecutive passes to become healthy
  int unhealthy_threshold = 3;     // consecutive failures to become unhealthy
  Millis start_timeout{60000};     // a new process must be healthy within this
};

enum class ServiceKind { kWeb, kWorker };

struct Service {
  std::string name;                 // key under `services:`
  ServiceKind kind = ServiceKind::kWeb;
  std::string command;              // run with /bin/sh -c in the release dir (required)
  int count = 1;                    // processes of this service per host
  HealthCheck health;               // web only
  std::string host;                 // web: route by Host header ("" = any)
  std::string path_prefix = "/";    // web: route by path prefix
  Millis stop_grace{30000};         // SIGTERM → SIGKILL
  std::map<std::string, std::string> env;  // extra variables for this service
};

struct Artifact {
  // Where releases come from: a local directory holding <app>-<version>.tar.gz
  // or .tar.zst, each with a <file>.sha256 beside it. Default "dist".
  std::string dir = "dist";
  std::string name_template = "{app}-{version}";  // file stem
};

struct Host {
  std::string name = "local";       // label in status output
  std::string address = "local";    // "local", or "ssh://user@host[:port]"
  std::string agent_root;           // default: the environment's agent.root
};

enum class StrategyKind { kBlueGreen, kCanary };
enum class Inconclusive { kWait, kFail };

struct CanaryStep {
  int weight = 0;            // percent of traffic to the new release, 1..100
  Millis pause{0};           // hold at this weight (and keep analysing) before the next
  bool approval = false;     // wait for `meshdeploy promote` before moving on
};

struct Analysis {
  double max_error_ratio = 0.01;   // canary 5xx / requests above this is a breach
  double max_p99_ms = 0;           // absolute p99 ceiling in ms, 0 = off
  double max_p99_ratio = 2.0;      // canary p99 / live p99 above this is a breach, 0 = off
  uint64_t min_requests = 50;      // fewer canary requests in a window is inconclusive
  Inconclusive on_inconclusive = Inconclusive::kWait;
  Millis interval{5000};           // one analysis window
  Millis max_inconclusive{300000}; // waiting for traffic longer than this fails the step
};

struct Strategy {
  StrategyKind kind = StrategyKind::kBlueGreen;
  std::vector<CanaryStep> steps;   // canary only; default 5, 25, 50, 100 with 30s pauses
  Analysis analysis;
  Millis watch_window{30000};      // keep analysing at 100 % before declaring success
  std::string sticky_cookie;       // canary assignment sticky by this cookie ("" = off)
  std::string sticky_header;       // ... or by this request header ("" = off)
};

struct Migrations {
  bool enabled = true;
  std::string dir = "supabase/migrations";
  std::string database_url_secret = "DATABASE_URL";  // name of the secret holding the URL
  Millis lock_timeout{3000};
  Millis statement_timeout{600000};
  int lock_retries = 5;            // lock-timeout retries with backoff and jitter
  bool include_all = false;        // apply files older than the newest applied one
  bool backup = false;             // pg_dump -Fc before applying
  std::string backup_dir = ".meshdeploy/backups";
  bool require_lint_clean = true;  // a deploy refuses unacknowledged findings
};

enum class ChannelKind { kSlack, kWebhook, kEmail };

struct Channel {
  std::string name;                      // key under notifications.channels
  ChannelKind kind = ChannelKind::kWebhook;
  std::vector<std::string> events;       // empty = all events
  std::vector<std::string> environments; // empty = all environments
  std::string url_secret;                // slack/webhook: secret holding the URL
  std::vector<std::string> signing_secrets;  // webhook: secrets holding whsec_... keys
  std::string smtp_url;                  // email: smtp://host:port or smtps://
  std::string smtp_user;
  std::string smtp_password_secret;      // email: secret holding the password
  bool starttls = true;                  // email: require STARTTLS on smtp://
  std::string from;                      // email
  std::vector<std::string> to;           // email recipients
  Millis timeout{10000};                 // one delivery attempt
  Millis retry_horizon{3 * 24 * 3600 * 1000LL};  // give up after this
};

struct Notifications {
  std::vector<Channel> channels;
  std::string dashboard_url;             // links in messages ("" = none)
};

struct Hooks {
  std::string pre_deploy;    // /bin/sh -c; non-zero stops the deploy before anything changes
  std::string post_deploy;
  std::string on_failure;
  std::string on_rollback;
  Millis timeout{300000};
};

struct ProxySettings {
  std::string listen = "127.0.0.1:8080";  // public listener of the agent's proxy
  Millis drain_timeout{30000};             // in-flight requests on the old set
  Millis stream_drain_timeout{30000};      // SSE / WebSocket on the old set
  std::string tls_cert;                    // PEM paths ("" = plain HTTP)
  std::string tls_key;
};

struct AgentSettings {
  std::string root = ".meshdeploy/agent";  // releases/, logs/, state
  std::string socket;                      // default: <root>/agent.sock
};

struct Environment {
  std::string name;                        // development | staging | production | ...
  std::string app;                         // top-level `app:`
  std::filesystem::path base_dir;          // directory of meshdeploy.yml
  std::vector<Service> services;
  Artifact artifact;
  std::vector<Host> hosts;                 // default: one local host
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
  std::string vault;                       // default .meshdeploy/secrets/<env>.vault
  std::string key_file;                    // default: none (MESHDEPLOY_KEY_<ENV>)
  std::string state;                       // state store URL; default .meshdeploy/state.db
};

// ---- the file ------------------------------------------------------------

// One problem in a configuration file.
struct Diagnostic {
  std::string file;
  int line = 0;     // 1-based; 0 when not tied to a place
  int column = 0;   // 1-based
  std::string key;  // dotted path, e.g. environments.production.strategy.kind
  std::string message;
  std::string hint; // e.g. "did you mean 'health'?" ("" = none)
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
  std::optional<Config> config;         // set when diagnostics is empty
  std::vector<Diagnostic> diagnostics;
};
LoadResult load(const std::filesystem::path& file);

// Resolves one environment: defaults, then shared `defaults:`, then the
// environment's overlay. kNotFound for an unknown environment name (the
// message lists the known ones).
Result<Environment> resolve(const Config& config, const std::string& env_name);

// Finds meshdeploy.yml: `explicit_path` if set, else ./meshdeploy.yml.
Result<std::filesystem::path> locate(const std::string& explicit_path);

// ---- dotenv --------------------------------------------------------------

struct DotenvEntry {
  std::string key;
  std::string value;
  int line = 0;
};
// Parses dotenv text as the dotenv libraries do: `export` prefixes, comments,
// single/double/back quotes, escapes in double quotes, multi-line quoted values.
// kInvalidArgument naming `source_name:line` on malformed input.
Result<std::vector<DotenvEntry>> parse_dotenv(std::string_view text, const std::string& source_name);

}  // namespace md::config
