// What each channel kind receives for one event: the Slack Block Kit
// message, the Standard Webhooks JSON body, and the MIME mail. Pure: no
// clock, no I/O; every function is deterministic in its arguments.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "core/error.h"
#include "notify/notify.h"

namespace md::notify {

// ---- shared text ----------------------------------------------------------

// One line saying what happened, e.g. "Deployed meshhook v42 to production".
std::string summary(const Event& e);
// "1h 02m", "1m 33s", "850 ms".
std::string format_duration(Millis d);
// The link for this event: `dashboard_url` with {environment},
// {deployment} and {version} replaced (each URL-encoded); "" when
// dashboard_url is "".
std::string dashboard_link(std::string_view dashboard_url, const Event& e);
// `text` cut to at most `max_units` UTF-16 code units (how Slack counts),
// ending in "…" when cut; never splits a UTF-8 sequence.
std::string truncate_utf16(std::string_view text, size_t max_units);

// ---- Slack ----------------------------------------------------------------

// Slack's documented limits this builder stays within.
struct SlackLimits {
  static constexpr size_t kBlocks = 50;
  static constexpr size_t kHeaderText = 150;
  static constexpr size_t kSectionText = 3000;
  static constexpr size_t kFieldText = 2000;
  static constexpr size_t kFields = 10;
  static constexpr size_t kContextText = 3000;
  static constexpr size_t kButtonText = 75;
  static constexpr size_t kUrl = 3000;
  static constexpr size_t kFallbackText = 3000;  // top-level "text" (Slack allows more)
};

// The incoming-webhook body: {"text": fallback, "blocks": [...]}: a header,
// the facts as section fields, the reason, a dashboard button when there is
// a link, and a context line with the deployment and event ids. Long values
// are truncated to the limits, never rejected.
std::string slack_message(const Event& e, std::string_view event_id, std::string_view link);

// ---- webhook --------------------------------------------------------------

// "deployment.started", ..., "deployment.test".
std::string webhook_type(EventType t);
// The Standard Webhooks payload: {"type", "timestamp", "data": {...}},
// minified. The body is signed as sent.
std::string webhook_body(const Event& e, std::string_view event_id, std::string_view link);

// ---- email ----------------------------------------------------------------

// An address as written in the config: "ops@example.com" or
// "Deploy Bot <deploy@example.com>".
struct Mailbox {
  std::string name;     // display name ("" = none)
  std::string address;  // addr-spec
};
// kInvalidArgument (naming `what`) for CR/LF, a missing or doubled '@', or an
// unbalanced '<'.
Result<Mailbox> parse_mailbox(std::string_view text, std::string_view what);

// RFC 2047: `text` as is when it is printable ASCII, else UTF-8 "B" encoded
// words of at most 75 characters, folded with CRLF SP between them.
std::string encode_header_text(std::string_view text);
// Quoted-printable (RFC 2045) with CRLF line ends and 76-character lines.
// Leading dots are left alone: SMTP dot-stuffing is the transport's job.
std::string quoted_printable(std::string_view text);

struct Mail {
  std::string subject;
  std::string text;  // plain-text part
  std::string html;  // HTML part
};
Mail mail_content(const Event& e, std::string_view event_id, std::string_view link);

// The complete RFC 5322 message (CRLF line ends): Date (`date`), From, To,
// Subject, Message-ID <event_id@from-domain>, MIME-Version, Auto-Submitted,
// and a multipart/alternative body with quoted-printable text and HTML
// parts.
std::string mime_message(const Mail& mail, const Mailbox& from, const std::vector<Mailbox>& to,
                         std::string_view event_id, SysTime date);

}  // namespace md::notify
