// Sending one outbox row through one channel, and the pure retry policy
// around it. Internal to notify/ (the Dispatcher is the public face).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"
#include "core/clock.h"
#include "notify/notify.h"
#include "secrets/secrets.h"
#include "state/state.h"

namespace md::notify {

// ---- policy (pure) ---------------------------------------------------------

enum class Verdict { kDelivered, kRetry, kPermanent };

// 2xx delivered; 408, 425, 429 and 5xx retried; anything else (1xx, 3xx —
// redirects are not followed — and other 4xx) is permanent.
Verdict classify_http(int status);

// The delay before the next attempt after `failures` failed attempts (>= 1):
// d = min(max, initial * 2^(failures-1)), then d/2 + u * d/2 for u in [0, 1)
// ("equal jitter": never less than half the nominal delay).
Millis backoff_delay(int failures, Millis initial, Millis max, double u);

// A Retry-After value: delta-seconds or an IMF-fixdate ("Wed, 21 Oct 2015
// 07:28:00 GMT") relative to `now`. nullopt when malformed; a date in the
// past is zero.
std::optional<Millis> parse_retry_after(std::string_view value, SysTime now);

// Printable, single-line text of at most `max` bytes (control characters
// become spaces), for last_error. Apply after redaction.
std::string snippet(std::string_view text, size_t max = 300);

// ---- one attempt ------------------------------------------------------------

struct Attempt {
  Verdict verdict = Verdict::kRetry;
  std::string detail;                 // "HTTP 200", "HTTP 404: body", error text; redacted
  std::optional<Millis> retry_after;  // the receiver's Retry-After, when given
};

// Sends `row` (payload = event_json) through `channel` of `target`, with
// secrets resolved from target.secrets now. A secret missing from the vault,
// a malformed signing key or address, or an unreadable payload is permanent.
// Every text in the result has passed `redactor`. Blocks up to `timeout`.
Attempt attempt_delivery(Transport& transport, const Target& target, const config::Channel& channel,
                         const state::OutboxEvent& row, const secrets::Redactor& redactor,
                         SysTime now, Millis timeout);

}  // namespace md::notify
