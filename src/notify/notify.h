// Deployment notifications: the pure fan-out of a deploy event into outbox
// rows (one per interested channel), and the Dispatcher that delivers due
// outbox rows to Slack, Standard Webhooks receivers and SMTP servers.
//
// CONTRACT for deploy/, server/ and cli/: names below are stable.
//
// How a deploy uses it:
//   1. at each step that causes an event, append
//      notify::fan_out(env.notifications, event) to the state::Batch that
//      carries the step's journal record and commit them together;
//   2. run a Dispatcher on its own thread for the whole deploy (start(),
//      wake() after each commit), and drain() it with a bounded wait at the
//      end. Sending never blocks or fails the deploy: whatever is left stays
//      pending in the store for the next run or `meshdeploy notify retry`.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"
#include "core/clock.h"
#include "core/error.h"
#include "secrets/secrets.h"
#include "state/state.h"

namespace md::notify {

// ---- events (pure) --------------------------------------------------------

enum class EventType {
  kStarted,         // a deploy or rollback began (after preflight)
  kSucceeded,       // it finished: the new version takes all traffic
  kFailed,          // it failed before traffic moved; nothing changed
  kRolledBack,      // traffic went back to the previous release (auto or manual)
  kCanaryStep,      // the canary moved to a new weight
  kApprovalNeeded,  // the canary waits for `meshdeploy promote`
  kTest,            // `meshdeploy notify test`
};

// "started", "succeeded", "failed", "rolled_back", "canary_step",
// "approval_needed", "test" — the names channel filters use.
std::string_view event_type_name(EventType t);
// The inverse; nullopt for an unknown name.
std::optional<EventType> parse_event_type(std::string_view name);
// Every event type, in declaration order (for config validation and docs).
const std::vector<EventType>& all_event_types();

// One deploy event as the deployer describes it. Plain data. Text fields
// must already be redacted (they are stored in the outbox and sent as is,
// though every message also passes the environment's redactor at send time).
// For kRolledBack, `version` is the release traffic left and
// `previous_version` the release it went back to, whatever the deployment's
// kind (an automatic rollback of v42 to v41, or `rollback --to v40` from v42).
struct Event {
  EventType type = EventType::kStarted;
  std::string environment;
  std::string app;  // top-level `app:` ("" = omitted)
  std::string version;
  std::string previous_version;      // "" for a first deploy
  std::string deployment_id;         // required except for kTest
  std::string actor;                 // who: user or CI identity
  std::string trigger;               // what: "cli", "ci", "webhook", "auto-rollback", ...
  std::string strategy;              // "blue_green" | "canary" ("" = omitted)
  std::optional<Millis> duration;    // time since the deploy started (nullopt = omitted)
  std::string status;                // deployment status: "running", "succeeded", ...
  std::string reason;                // failure / rollback reason ("" = none)
  std::optional<int> canary_weight;  // canary_step / approval_needed: percent 0..100
  std::vector<std::string> hosts;    // the environment's hosts when it has several (else empty)
  SysTime at{};                      // when it happened
  // Tells apart two events of the same type, deployment and weight (e.g. a
  // second approval at one weight after a resume). "" for the usual case.
  std::string key;
};

// The event id of `e` sent to `channel`: "evt_" + 24 lower-case hex digits of
// SHA-256 over (deployment_id, type, canary_weight, key, channel). The same
// event and channel always give the same id, so a resumed deploy that commits
// the event again changes nothing (the store keys the outbox by channel and
// event_id) and receivers can deduplicate by it (webhook-id, Message-ID).
std::string event_id(const Event& e, std::string_view channel);

// True when `channel` receives events of type `t` from `environment`: its
// `events` list is empty or names `t`, and its `environments` list is empty
// or names `environment`. A kTest event passes any `events` filter (a test
// must reach every channel), never an `environments` filter.
bool wants(const config::Channel& channel, EventType t, std::string_view environment);

// The outbox rows for `e`: one per channel of `n` that wants it, in channel
// order, each with event_id(e, channel), channel name, environment, event
// type name and payload = event_json(e); status pending, due now (zero
// next_attempt_at), created_at = e.at. Pure: no clock, no I/O. An empty
// result is not an error (no channel wants the event). Rows carry channel
// and event data only — never a URL, key or password.
std::vector<state::OutboxEvent> fan_out(const config::Notifications& n, const Event& e);

// The outbox payload: a JSON object with every field of `e` (stable names,
// documented in docs/notifications.md), and its inverse. parse_event_json
// fails with kInvalidArgument (naming the field) on anything it did not write.
std::string event_json(const Event& e);
Result<Event> parse_event_json(std::string_view payload);

// ---- transport seam -------------------------------------------------------

struct HttpRequest {
  std::string url;  // a secret value: never logged
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  Millis timeout{10000};  // whole attempt, connect included
  std::string ca_file;    // PEM bundle to verify the peer ("" = system's)
};

struct HttpResponse {
  int status = 0;           // HTTP status code
  std::string body;         // at most 64 KiB kept
  std::string retry_after;  // the Retry-After header ("" = none)
};

struct MailRequest {
  std::string smtp_url;  // smtp://host:port (STARTTLS) or smtps://host:port
  std::string user;      // "" = no authentication
  secrets::Secret password;
  bool require_starttls = true;  // smtp:// only: fail unless STARTTLS succeeds
  std::string from;              // envelope sender (bare address)
  std::vector<std::string> to;   // envelope recipients (bare addresses)
  std::string message;           // the complete RFC 5322 message, CRLF line ends
  Millis timeout{10000};
  std::string ca_file;
};

// Where deliveries go. Real: libcurl (make_curl_transport). Tests: a fake.
// Thread-safe: one Dispatcher calls it from one thread at a time, but the
// CLI may share it. Every call blocks for at most the request's timeout.
class Transport {
 public:
  virtual ~Transport() = default;
  // POSTs the request. An HTTP response of any status is a value; only a
  // failure to get one is an error: kUnavailable (connect, DNS, reset) or
  // kTimeout, both retryable; kInvalidArgument for a malformed URL. Error
  // messages never contain the URL's path or query.
  virtual Result<HttpResponse> post(const HttpRequest& req) = 0;
  // Sends one mail to every recipient. Errors carry retryable() = true for
  // transient failures (connect, timeout, SMTP 4xx) and false for permanent
  // ones (SMTP 5xx, authentication refused, STARTTLS required but refused).
  virtual Status send_mail(const MailRequest& req) = 0;
};

// The libcurl transport. Never null.
std::unique_ptr<Transport> make_curl_transport();

// ---- dispatcher -----------------------------------------------------------

// What the dispatcher needs to deliver one environment's events. Values of
// `secrets` are resolved at send time and never stored or logged.
struct Target {
  std::string environment;
  config::Notifications notifications;
  secrets::SecretMap secrets;  // the environment's vault
};

struct DispatcherOptions {
  Millis initial_backoff{5000};  // delay after the first failed attempt
  Millis max_backoff{3600000};   // delays double up to this (1 h)
  Millis poll_interval{2000};    // the thread looks for due rows this often when idle
  // With nothing pending and no lease held elsewhere, the thread sleeps this
  // long (or until wake()) instead of poll_interval; 0 = poll_interval. The
  // agent's Courier sleeps until a hand-off or the lease TTL (an idle agent
  // does not read every outbox every 2 s).
  Millis idle_interval{0};
  Millis lease_ttl{60000};  // the per-environment dispatch lease (see below)
  // Pending rows read per pass; 0 = all (both stores read every row for a
  // limit <= 0). A limit could hide a channel's oldest row and break order.
  int scan_limit = 0;
  std::string holder;  // lease holder ("" = "notify user@host pid N")
  uint64_t seed = 0;   // jitter RNG seed (0 = random)
};

// The result of one delivery attempt.
struct Delivery {
  enum class Outcome { kDelivered, kRetrying, kFailed };
  int64_t id = 0;  // outbox row id
  std::string event_id;
  std::string environment;
  std::string channel;
  std::string event_type;
  Outcome outcome = Outcome::kDelivered;
  int attempts = 0;        // after this attempt
  std::string detail;      // "HTTP 200", or the (redacted) error
  SysTime next_attempt{};  // kRetrying only
};
std::string_view outcome_name(Delivery::Outcome o);  // "delivered" | "retrying" | "failed"

// Delivers pending outbox rows of its targets' environments.
//
// - Order: strictly in id order per (environment, channel): a row waits while
//   an older row of its channel is pending, even if that one is not due yet.
// - Retries: 408, 425, 429, 5xx and transport errors are retried with
//   exponential backoff (initial_backoff doubling to max_backoff, full
//   jitter over the upper half) or the receiver's Retry-After if later;
//   other 3xx/4xx, SMTP 5xx and missing secrets fail the row for good with
//   the redacted response. A row whose next attempt would fall past
//   created_at + the channel's retry_horizon fails for good.
// - Idempotent: the event id is the webhook-id header and the mail's
//   Message-ID; a crash between sending and recording sends it again.
// - Exclusive: a pass over an environment holds the store lease
//   "notify:<environment>", so two processes never deliver the same rows.
//   Rows of an environment whose lease is held elsewhere, or of an
//   environment without a Target, are left alone.
// - Rows whose channel is no longer configured fail with a clear error.
// Concurrency: internal mutex; passes never overlap. The store and
// transport must outlive the dispatcher.
class Dispatcher {
 public:
  Dispatcher(state::Store& store, Transport& transport, std::vector<Target> targets,
             DispatcherOptions options = {}, Clock& clock = real_clock());
  ~Dispatcher();  // stop()
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // One pass: attempts every row that is at the head of its channel and due
  // now, once. Blocks for the attempts. Fails only when the store does.
  Result<std::vector<Delivery>> run_once();

  // Runs passes on a background thread until stop()/drain(). Not an error to
  // call twice.
  void start();
  // Asks the thread for a pass now (after committing new rows).
  void wake();

  struct DrainReport {
    std::vector<Delivery> deliveries;  // every attempt made since construction
    int pending = 0;                   // rows of our environments still pending
    int failed = 0;                    // rows of our environments failed for good
    std::string store_error;           // last store error ("" = none)
  };
  // Stops the thread, makes one pass that attempts every head due now (even
  // with max_wait 0), then keeps delivering until no row of our environments
  // is due before the deadline (now + max_wait). Attempts are bounded by the
  // channel's timeout, capped at the time left (at least 200 ms). Rows left
  // pending are sent by a later run. A drained dispatcher does not start
  // again. Never fails.
  DrainReport drain(Millis max_wait);
  // Stops the thread after its current attempt. Idempotent.
  void stop();

  // Called after every attempt, on the thread that made it.
  void on_delivery(std::function<void(const Delivery&)> fn);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ---- operations (`meshdeploy notify ...`, the server) ----------------------

// What happened to one row an operation cares about.
struct RowResult {
  int64_t id = 0;
  std::string channel;
  std::string event_id;
  std::string status;  // "delivered" | "pending" | "failed"
  int attempts = 0;
  std::string last_error;  // redacted ("" = none)
  SysTime next_attempt{};  // pending only
  int waiting_behind = 0;  // pending: older pending rows of its channel
};

struct SendReport {
  std::vector<RowResult> rows;  // the rows the operation is about, in channel order
  int other_delivered = 0;      // earlier rows of the same channels delivered on the way
  std::string store_error;      // "" = none
  bool all_delivered() const;
};

// `notify test`: enqueues a kTest event (actor, trigger "cli", the live
// release's version when the store knows one) for every channel of `env`
// that receives `env.name` — or only `channel` — and delivers it now through
// a Dispatcher drained for at most `wait`; rows still pending are sent by a
// later run. kNotFound naming the known channels for an unknown `channel`;
// kInvalidArgument when the channel does not serve this environment or the
// environment has no channels. Blocks.
Result<SendReport> send_test(state::Store& store, Transport& transport,
                             const config::Environment& env, const secrets::SecretMap& secrets,
                             const std::string& channel, const std::string& actor, Millis wait,
                             DispatcherOptions options = {}, Clock& clock = real_clock());

// `notify retry`: the row `id` (its number, or its event id "evt_...") goes
// back to pending, due now, and is delivered as send_test delivers. A row of
// another environment than `env` is kInvalidArgument naming it; an unknown
// id kNotFound; a delivered row kFailedPrecondition (receivers already have
// it). Blocks.
Result<SendReport> retry(state::Store& store, Transport& transport, const config::Environment& env,
                         const secrets::SecretMap& secrets, const std::string& id, Millis wait,
                         DispatcherOptions options = {}, Clock& clock = real_clock());

// The row `id` (number or "evt_..." event id). kNotFound if absent.
Result<state::OutboxEvent> find_row(state::Store& store, const std::string& id);

// `notify status`: pending and failed rows, oldest first; `environment` ""
// = every environment.
Result<std::vector<state::OutboxEvent>> outstanding(state::Store& store,
                                                    const std::string& environment);

}  // namespace md::notify
