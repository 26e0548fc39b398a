// The traffic proxy: HTTP/1.1 reverse proxy with blue-green and canary
// switching, health checks, draining, metrics and an admin API.
//
//   auto p = md::proxy::Proxy::start(opts);          // listeners, workers, admin socket
//   p->upsert_service({.name = "web", .host = "example.com"});
//   p->deploy("web", {{"127.0.0.1", 3001}}, {});     // health-checks, switches, drains
//   p->set_canary("web", {{"127.0.0.1", 3002}}, 10);  // 10 % to the canary
//   auto m = p->metrics();                           // cumulative counters per set
//
// Concurrency model: the data path runs on `threads` worker threads, each an
// epoll loop that owns its connections; a health-check thread probes
// targets; the admin server has threads of its own. Control calls on Proxy
// are thread-safe and may be made from any thread; they build a new
// immutable routing table and swap it in atomically (workers never take a
// lock on the request path). Calls that wait (deploy, set_canary with new
// targets, promote, abort) block the caller, never a worker.
//
// Persistence: with a state file, every successful change is written
// (versioned, checksummed, atomically; docs/formats/proxy-state.md) before it
// takes effect, and start() restores it. A change that cannot be persisted
// is refused and nothing changes.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/error.h"
#include "proxy/histogram.h"

namespace md::http {
class Router;
}

namespace md::proxy {

// ---------------------------------------------------------------- addresses

// A target or listener address. `host` is an IP literal (IPv6 without
// brackets) or a name, resolved when a target set is created.
struct Endpoint {
  std::string host;
  uint16_t port = 0;
  std::string str() const;  // "127.0.0.1:8080", "[::1]:8080"
  auto operator<=>(const Endpoint&) const = default;
};
// "HOST:PORT" or "[V6]:PORT". kInvalidArgument saying what is wrong.
Result<Endpoint> parse_endpoint(std::string_view text);
// "HOST:PORT[,HOST:PORT...]"; duplicates and empty lists are errors.
Result<std::vector<Endpoint>> parse_endpoints(std::string_view text);

// ---------------------------------------------------------------- services

// Active health checking of every target of a service.
struct HealthCheck {
  std::string path = "/healthz";  // GET this path; any 2xx/3xx is healthy. "" = TCP connect only
  Millis interval{2000};          // between probes of one target
  Millis timeout{1000};           // per probe
  int healthy_threshold = 2;      // consecutive successes to become healthy (also for deploy)
  int unhealthy_threshold = 3;    // consecutive failures to become unhealthy
  bool operator==(const HealthCheck&) const = default;
};

// Passive ejection: a target whose requests fail (connect error, reset,
// timeout, 502/503/504 from it) this many times in a row gets no traffic for
// `duration`, then is tried again.
struct PassiveEjection {
  int consecutive_failures = 5;  // 0 = off
  Millis duration{10000};
  bool operator==(const PassiveEjection&) const = default;
};

// How requests reach a service and how its targets are checked.
struct ServiceSpec {
  std::string name;  // [a-z0-9][a-z0-9._-]{0,62}
  std::string host;  // "" = any host; "*.example.com" = any subdomain; no port
  std::string path_prefix =
      "/";  // matched at a segment boundary ("/api" matches "/api/x", not "/apix")
  HealthCheck health;
  PassiveEjection ejection;
  std::string sticky_cookie;     // canary stickiness by cookie (set by the proxy); "" = off
  std::string sticky_header;     // canary stickiness by a request header's value; "" = off
  Millis drain_deadline{30000};  // streams (SSE, WebSocket) to a replaced set are closed after this
  bool operator==(const ServiceSpec&) const = default;
};
// kInvalidArgument naming the field and the rule it breaks.
Status validate(const ServiceSpec& spec);

// A service and its targets, for `--route` at start-up.
struct StaticRoute {
  ServiceSpec spec;
  std::vector<Endpoint> targets;
};
// "SERVICE=HOST:PORT[,HOST:PORT...]" -> route with a default spec.
Result<StaticRoute> parse_route(std::string_view text);

struct DeployOptions {
  Millis health_timeout{60000};  // every new target must be healthy within this, or nothing changes
  Millis probe_interval{100};    // spacing of the pre-switch probes of one target
  bool wait_for_drain = true;    // return after the old set drained (bounded by drain_deadline)
};

// What a switch did. Set ids identify target sets for metrics (see SetMetrics).
struct SwitchResult {
  uint64_t set_id = 0;           // the set now live (deploy, promote) or canary (set_canary)
  uint64_t previous_set_id = 0;  // the set replaced, 0 if none
  bool drained = true;         // the replaced sets finished in-flight requests before the deadline
  int64_t closed_streams = 0;  // requests/streams closed at the drain deadline
  Millis health_wait{0};
  Millis drain_wait{0};
};

struct PauseOptions {
  int64_t max_held = 10000;  // requests held at once per service; more get 503
  Millis max_wait{30000};    // a request held longer gets 503
};

// ---------------------------------------------------------------- status

struct TargetStatus {
  Endpoint endpoint;
  bool healthy = true;     // by active checks (and the pre-switch wait)
  bool ejected = false;    // by passive ejection, for now
  std::string last_error;  // of the last failed probe or request, "" if none
};

struct SetStatus {
  uint64_t id = 0;
  std::string role;  // "live", "canary", "draining"
  std::vector<TargetStatus> targets;
  int64_t active = 0;  // requests and streams in flight
};

struct ServiceStatus {
  ServiceSpec spec;
  std::optional<SetStatus> live;
  std::optional<SetStatus> canary;
  int canary_weight = 0;  // 0..100
  std::vector<SetStatus> draining;
  bool maintenance = false;
  bool paused = false;
  PauseOptions pause;
  int64_t held = 0;  // requests held by the pause now
};

// ---------------------------------------------------------------- metrics

// Upper bounds (microseconds) of the coarse buckets of the Prometheus
// exposition (`le` labels); one more bucket (+Inf) follows the last. They are
// summed from the fine histogram (histogram.h), each within 1.6 %.
inline constexpr std::array<uint64_t, 38> kLatencyBoundsUs = {
    50,      100,     150,     200,     300,      400,      500,      750,     1000,    1500,
    2000,    3000,    4000,    5000,    7500,     10000,    15000,    20000,   30000,   40000,
    50000,   75000,   100000,  150000,  200000,   300000,   500000,   750000,  1000000, 1500000,
    2000000, 3000000, 5000000, 7500000, 10000000, 15000000, 30000000, 60000000};

// Cumulative, monotonic counters (except `active`) since the proxy started.
// Diff two snapshots of the same set id and instance to get a window.
struct Counters {
  uint64_t requests = 0;               // finished requests (responses sent or aborted)
  std::array<uint64_t, 5> by_class{};  // [0] 1xx ... [4] 5xx, responses sent to clients
  uint64_t aborted = 0;                // ended without a response (client left, stream cut)
  uint64_t upstream_errors = 0;        // connect failures, resets, timeouts, bad responses
  uint64_t retries = 0;                // requests sent again to another target
  LatencyCounts latency{};             // per histogram.h bucket, not cumulative
  uint64_t latency_sum_us = 0;
  int64_t active = 0;  // gauge: in flight now (requests and streams)

  // Latency percentile in milliseconds (linear within a bucket, so within
  // 1.6 % of the exact one); 0 when no request was measured. q in (0, 1].
  double percentile_ms(double q) const;
  // this - earlier, field by field (active is taken from this).
  Counters minus(const Counters& earlier) const;
};

struct SetMetrics {
  uint64_t id = 0;
  std::string role;  // "live", "canary", "draining", "retired"
  std::vector<Endpoint> targets;
  Counters counters;
};

struct ServiceMetrics {
  std::string service;
  Counters local;  // answered by the proxy itself: maintenance, pause timeout, no healthy target
  std::vector<SetMetrics> sets;  // current sets, then recently replaced ones
};

struct MetricsSnapshot {
  std::string instance;  // changes when the proxy restarts: counters restart from 0
  SysTime started_at;
  SysTime taken_at;
  std::vector<ServiceMetrics> services;
  int64_t client_connections = 0;  // open client connections now
};

// ---------------------------------------------------------------- JSON forms
// The admin API speaks these; the *_from_json functions accept what to_json
// produced and fail with kInvalidArgument naming the bad field.
nlohmann::json to_json(const ServiceSpec& s);
Result<ServiceSpec> spec_from_json(const nlohmann::json& j);
nlohmann::json to_json(const ServiceStatus& s);
Result<ServiceStatus> status_from_json(const nlohmann::json& j);
nlohmann::json to_json(const MetricsSnapshot& m);
Result<MetricsSnapshot> metrics_from_json(const nlohmann::json& j);
nlohmann::json to_json(const SwitchResult& r);
Result<SwitchResult> switch_result_from_json(const nlohmann::json& j);
// A latency histogram as [[lower_us, count], ...]: its non-empty buckets,
// ascending, each named by its lower bound (histogram.h). Decoding fails on a
// bound that is not a bucket's, on a repeated or unordered one.
nlohmann::json latency_to_json(const LatencyCounts& c);
Result<LatencyCounts> latency_from_json(const nlohmann::json& j, const std::string& where);
// Prometheus text exposition format 0.0.4.
std::string to_prometheus(const MetricsSnapshot& m);

// ---------------------------------------------------------------- the proxy

struct Listener {
  std::string address = "127.0.0.1:8080";  // HOST:PORT; port 0 picks a free port
  std::filesystem::path tls_cert_file;     // PEM chain; with tls_key_file: HTTPS
  std::filesystem::path tls_key_file;      // PEM private key
  // Sockets already listening on `address`, handed to this process (socket
  // activation, or the previous agent across an exec; see
  // adopt_listen_sockets). The proxy owns them and binds nothing for this
  // listener; empty = bind `address` (the default).
  std::vector<int> sockets;
};

// Gives each listening socket in `fds` to the listener whose address it is
// bound to (a listener with port 0 takes one of its host with any port). With
// no `listeners`, one listener per distinct bound address is made. Takes
// ownership of `fds`: on error every one is closed. kInvalidArgument names a
// socket no listener asked for. Blocks only to resolve host names.
Status adopt_listen_sockets(std::vector<Listener>& listeners, std::vector<int> fds);
// "127.0.0.1:8080" / "[::]:80": the local address a socket is bound to.
Result<Endpoint> socket_endpoint(int fd);

// Defaults follow nginx/HAProxy practice; all are per connection.
struct Timeouts {
  Millis client_header{10000};      // whole request head (slowloris): 408 and close
  Millis client_idle{60000};        // keep-alive client connection with no request: closed
  Millis client_body{60000};        // no request-body bytes for this long: 408 and close
  Millis send{60000};               // client not reading the response for this long: closed
  Millis upstream_connect{5000};    // connect to a target: retry elsewhere, then 504
  Millis upstream_response{60000};  // no response bytes for this long: 504 (or cut the stream)
  Millis upstream_idle{4000};       // pooled idle upstream connection: closed (below Node's 5 s)
  Millis tunnel_idle{3600000};      // WebSocket / upgraded connection with no traffic: closed
};

struct Limits {
  size_t max_head_bytes = 16 * 1024;  // request head larger: 431 (at most 64 KiB)
  size_t max_headers = 100;           // more header fields: 431 (at most 128)
  // Client connections per listener (all workers together, each worker
  // holding an equal share). At the cap, a new connection closes the oldest
  // idle one of its worker (no request yet, or keep-alive between requests),
  // else it is refused (accepted and closed). 0 = auto: from the open-file
  // limit (auto_limits()).
  size_t max_connections = 0;
  // Connections to one target (busy and pooled, all workers together). A
  // request that would need one more goes to another target of its set, else
  // gets 503. 0 = auto (auto_limits()).
  size_t max_upstream_connections = 0;
};

// The caps used for 0 (auto) above, given the open-file limit `nofile` and
// the number of listeners: a reserve of kReservedFds descriptors for
// everything else (control socket, health checks, files, logs), half of the
// rest for client connections (split between the listeners) and half for
// upstream connections. Pure.
inline constexpr size_t kReservedFds = 128;
Limits auto_limits(Limits asked, uint64_t nofile, size_t listeners);

// Raises this process's soft RLIMIT_NOFILE to its hard limit and returns the
// soft limit now in force. Proxy::start() calls it. Never fails: if the limit
// cannot be raised, the current one is returned.
uint64_t raise_open_file_limit();

struct Options {
  std::vector<Listener> listeners;     // at least one
  int threads = 0;                     // worker threads; 0 = number of cores
  std::filesystem::path admin_socket;  // "" = no admin API (embedders call Proxy directly)
  std::filesystem::path state_file;    // "" = not persisted
  std::vector<StaticRoute> routes;     // services the state file does not already have
  Timeouts timeouts;
  Limits limits;
  // The data path's reads and writes of one event batch go to the kernel in
  // one io_uring call each (falls back to one read/sendmsg per socket where
  // io_uring is refused). false: always the plain calls.
  bool batch_writes = true;
};

class Proxy {
 public:
  // Loads the state file (kCorruption if its checksum or version is wrong:
  // nothing is started), binds every listener (kUnavailable if a port is
  // taken), starts the workers, the health checker and the admin socket.
  // Services from the state file start with their targets healthy and are
  // checked at once; static routes too.
  static Result<std::unique_ptr<Proxy>> start(const Options& options);

  // Stops accepting, lets in-flight requests finish for up to `grace`, then
  // closes everything and joins the threads. Idempotent; the destructor
  // calls stop(Millis(0)).
  void stop(Millis grace = Millis(10000));
  ~Proxy();

  // The bound listener addresses (actual ports when 0 was asked), in the
  // order of Options::listeners.
  std::vector<Endpoint> listening() const;
  // New close-on-exec descriptors of every listening socket (one per socket,
  // in the order of Options::listeners), for handing them to the next
  // process before stop(): they keep the port open and its backlog queued
  // while no process accepts. The caller owns them. Empty after stop().
  std::vector<int> duplicate_listeners() const;

  // Creates or changes a service (its targets are kept). kInvalidArgument for
  // a bad spec; kConflict when another service has the same host and prefix.
  Status upsert_service(const ServiceSpec& spec);
  // Removes a service: no new requests; in-flight ones finish; streams are
  // closed after its drain deadline. kNotFound if it does not exist.
  Status remove_service(std::string_view name);

  // Blue-green: probes every target until each passed healthy_threshold
  // probes in a row (or health_timeout: kTimeout, nothing changed), then
  // makes them the live set in one step and drops any canary. In-flight
  // requests to the old sets finish; their idle upstream connections close;
  // streams still open at the drain deadline are closed cleanly. Blocks.
  // kNotFound (no service), kConflict (another switch of this service runs),
  // kInvalidArgument (no targets / duplicates).
  Result<SwitchResult> deploy(std::string_view service, const std::vector<Endpoint>& targets,
                              const DeployOptions& options = {});
  // Canary: `weight` percent (0..100) of new requests go to `targets`. With
  // targets that differ from the current canary, they are probed first as in
  // deploy(). Empty `targets` changes the weight of the current canary only
  // (kFailedPrecondition if there is none). Blocks while probing.
  Result<SwitchResult> set_canary(std::string_view service, const std::vector<Endpoint>& targets,
                                  int weight, const DeployOptions& options = {});
  // The canary set becomes the live set (same set id); the old live set drains.
  Result<SwitchResult> promote(std::string_view service, const DeployOptions& options = {});
  // The canary set is dropped and drains; all traffic goes to the live set.
  Result<SwitchResult> abort_canary(std::string_view service, const DeployOptions& options = {});

  // Maintenance: every request but the health-check path gets 503 with
  // `page` (HTML; "" = a default page) and Retry-After.
  Status set_maintenance(std::string_view service, bool on, std::string page = {});
  // Pause: new requests are held (not forwarded) until resume(), up to the
  // limits in `options` (then 503). In-flight requests are not affected.
  Status pause(std::string_view service, const PauseOptions& options = {});
  // Ends a pause (held requests go on at once) and maintenance.
  Status resume(std::string_view service);

  // Snapshots; never block on the data path.
  std::vector<ServiceStatus> status() const;
  Result<ServiceStatus> status(std::string_view service) const;  // kNotFound
  MetricsSnapshot metrics() const;

  struct Impl;

 private:
  explicit Proxy(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Adds the admin API (docs/proxy.md) to `router`, served by `proxy`; for an
// embedder that serves it on its own socket. `proxy` must outlive the router.
void add_admin_routes(http::Router& router, Proxy& proxy);

// Client of the admin API of a running proxy (or of an embedder that mounted
// add_admin_routes). Blocking; one request per call. Errors of the proxy come
// back with their code; transport errors as http::UnixClient says.
class AdminClient {
 public:
  explicit AdminClient(std::filesystem::path socket, Millis timeout = Millis(600000));
  Status upsert_service(const ServiceSpec& spec);
  Status remove_service(std::string_view name);
  // `spec` (optional) creates or updates the service first, in the same call.
  Result<SwitchResult> deploy(std::string_view service, const std::vector<Endpoint>& targets,
                              const DeployOptions& options = {},
                              const std::optional<ServiceSpec>& spec = std::nullopt);
  Result<SwitchResult> set_canary(std::string_view service, const std::vector<Endpoint>& targets,
                                  int weight, const DeployOptions& options = {});
  Result<SwitchResult> promote(std::string_view service);
  Result<SwitchResult> abort_canary(std::string_view service);
  Status set_maintenance(std::string_view service, bool on, std::string_view page = {});
  Status pause(std::string_view service, const PauseOptions& options = {});
  Status resume(std::string_view service);
  Result<std::vector<ServiceStatus>> status();
  Result<ServiceStatus> status(std::string_view service);
  Result<MetricsSnapshot> metrics();
  Result<std::string> metrics_prometheus();

 private:
  std::filesystem::path socket_;
  Millis timeout_;
};

}  // namespace md::proxy
