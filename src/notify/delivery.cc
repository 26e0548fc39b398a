// One delivery attempt per channel kind, and the retry policy.
#include "notify/delivery.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>

#include "notify/message.h"
#include "notify/signature.h"

#ifndef MESHDEPLOY_VERSION
#define MESHDEPLOY_VERSION "0.0.0"
#endif

namespace md::notify {
namespace {

constexpr char kUserAgent[] = "meshdeploy/" MESHDEPLOY_VERSION;

Attempt permanent(std::string detail) { return {Verdict::kPermanent, std::move(detail), {}}; }

// The value of a secret the channel names, or a permanent failure.
Result<const secrets::Secret*> lookup(const Target& t, const config::Channel& c,
                                      const std::string& name, const char* key) {
  if (name.empty())
    return fail(Errc::kInvalidArgument, "channel '" + c.name + "' has no " + key + " configured");
  auto it = t.secrets.find(name);
  if (it == t.secrets.end())
    return fail(Errc::kNotFound, "secret '" + name + "' (" + key + " of channel '" + c.name +
                                     "') is not in the vault of environment '" + t.environment +
                                     "'");
  return &it->second;
}

Attempt from_response(const HttpResponse& r, const secrets::Redactor& redactor, SysTime now) {
  Attempt a;
  a.verdict = classify_http(r.status);
  a.detail = "HTTP " + std::to_string(r.status);
  if (a.verdict != Verdict::kDelivered && !r.body.empty())
    a.detail += ": " + snippet(redactor.redact(r.body));
  if (r.status >= 300 && r.status < 400)
    a.detail += " (redirects are not followed: update the URL)";
  if (!r.retry_after.empty()) a.retry_after = parse_retry_after(r.retry_after, now);
  return a;
}

Attempt from_error(const Error& e, const secrets::Redactor& redactor) {
  return {e.retryable() ? Verdict::kRetry : Verdict::kPermanent,
          snippet(redactor.redact(e.what())),
          {}};
}

Attempt send_http(Transport& transport, HttpRequest req, const secrets::Redactor& redactor,
                  SysTime now) {
  req.headers.insert(req.headers.begin(),
                     {{"Content-Type", "application/json"}, {"User-Agent", kUserAgent}});
  auto resp = transport.post(req);
  if (!resp) return from_error(resp.error(), redactor);
  return from_response(*resp, redactor, now);
}

Attempt send_webhook(Transport& transport, const Target& t, const config::Channel& c,
                     const state::OutboxEvent& row, const Event& e,
                     const secrets::Redactor& redactor, SysTime now, Millis timeout) {
  auto url = lookup(t, c, c.url_secret, "url_secret");
  if (!url) return permanent(url.error().what());
  std::vector<secrets::Secret> keys;
  for (const std::string& name : c.signing_secrets) {
    auto whsec = lookup(t, c, name, "signing_secrets");
    if (!whsec) return permanent(whsec.error().what());
    auto key = decode_signing_key(**whsec);
    if (!key) return permanent("secret '" + name + "': " + key.error().what());
    keys.push_back(std::move(*key));
  }
  HttpRequest req;
  req.url = (*url)->reveal();
  req.timeout = timeout;
  req.body = redactor.redact(
      webhook_body(e, row.event_id, dashboard_link(t.notifications.dashboard_url, e)));
  int64_t ts = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  req.headers = {{"webhook-id", row.event_id}, {"webhook-timestamp", std::to_string(ts)}};
  if (!keys.empty())
    req.headers.push_back({"webhook-signature", sign(row.event_id, ts, req.body, keys)});
  return send_http(transport, std::move(req), redactor, now);
}

Attempt send_slack(Transport& transport, const Target& t, const config::Channel& c,
                   const state::OutboxEvent& row, const Event& e, const secrets::Redactor& redactor,
                   SysTime now, Millis timeout) {
  auto url = lookup(t, c, c.url_secret, "url_secret");
  if (!url) return permanent(url.error().what());
  HttpRequest req;
  req.url = (*url)->reveal();
  req.timeout = timeout;
  req.body = redactor.redact(
      slack_message(e, row.event_id, dashboard_link(t.notifications.dashboard_url, e)));
  return send_http(transport, std::move(req), redactor, now);
}

Attempt send_email(Transport& transport, const Target& t, const config::Channel& c,
                   const state::OutboxEvent& row, const Event& e, const secrets::Redactor& redactor,
                   SysTime now, Millis timeout) {
  std::string where = "notifications.channels." + c.name;
  auto from = parse_mailbox(c.from, where + ".from");
  if (!from) return permanent(from.error().what());
  std::vector<Mailbox> to;
  for (const std::string& addr : c.to) {
    auto m = parse_mailbox(addr, where + ".to");
    if (!m) return permanent(m.error().what());
    to.push_back(std::move(*m));
  }
  if (to.empty()) return permanent(where + ".to lists no recipient");
  MailRequest req;
  req.smtp_url = c.smtp_url;
  req.user = c.smtp_user;
  if (!c.smtp_password_secret.empty()) {
    auto pw = lookup(t, c, c.smtp_password_secret, "smtp_password_secret");
    if (!pw) return permanent(pw.error().what());
    req.password = **pw;
  }
  req.require_starttls = c.starttls;
  req.from = from->address;
  for (const Mailbox& m : to) req.to.push_back(m.address);
  Mail mail = mail_content(e, row.event_id, dashboard_link(t.notifications.dashboard_url, e));
  mail.subject = redactor.redact(mail.subject);
  mail.text = redactor.redact(mail.text);
  mail.html = redactor.redact(mail.html);
  req.message = mime_message(mail, *from, to, row.event_id, now);
  req.timeout = timeout;
  auto sent = transport.send_mail(req);
  if (!sent) return from_error(sent.error(), redactor);
  return {
      Verdict::kDelivered, "SMTP accepted for " + std::to_string(to.size()) + " recipient(s)", {}};
}

}  // namespace

Verdict classify_http(int status) {
  if (status >= 200 && status < 300) return Verdict::kDelivered;
  if (status == 408 || status == 425 || status == 429 || (status >= 500 && status < 600))
    return Verdict::kRetry;
  return Verdict::kPermanent;
}

Millis backoff_delay(int failures, Millis initial, Millis max, double u) {
  double nominal = static_cast<double>(initial.count()) * std::pow(2.0, std::max(0, failures - 1));
  nominal = std::min(nominal, static_cast<double>(max.count()));
  u = std::clamp(u, 0.0, 1.0);
  return Millis(static_cast<int64_t>(nominal / 2 + u * nominal / 2));
}

std::optional<Millis> parse_retry_after(std::string_view value, SysTime now) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\r')) value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    if (value.size() > 9) return Millis(int64_t{999'999'999} * 1000);
    return Millis(std::stoll(std::string(value)) * 1000);
  }
  std::tm tm{};
  std::string text(value);
  const char* end = strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (!end || *end != '\0') return std::nullopt;
  SysTime at = std::chrono::system_clock::from_time_t(timegm(&tm));
  if (at <= now) return Millis(0);
  return std::chrono::duration_cast<Millis>(at - now);
}

std::string snippet(std::string_view text, size_t max) {
  // WHY valid UTF-8 only: Postgres rejects invalid text, and a receiver's
  // body can be any bytes. Invalid bytes become '?'; the cut falls between
  // characters.
  std::string out;
  size_t i = 0;
  while (i < text.size() && out.size() < max) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    bool valid = n > 0 && i + n <= text.size();
    for (size_t k = 1; valid && k < n; ++k)
      valid = (static_cast<unsigned char>(text[i + k]) & 0xC0) == 0x80;
    if (valid && n > 1) {  // no overlong forms, surrogates or code points past U+10FFFF
      unsigned char d = static_cast<unsigned char>(text[i + 1]);
      valid = !(n == 2 && c < 0xC2) && !(c == 0xE0 && d < 0xA0) && !(c == 0xED && d >= 0xA0) &&
              !(c == 0xF0 && d < 0x90) && !(c == 0xF4 && d >= 0x90) && c <= 0xF4;
    }
    if (!valid) {
      out += '?';
      ++i;
      continue;
    }
    if (out.size() + n > max) break;
    if (n == 1) {
      out += (c < 0x20 || c == 0x7f) ? ' ' : static_cast<char>(c);
    } else {
      out.append(text.substr(i, n));
    }
    i += n;
  }
  if (i < text.size()) out += "...";
  return out;
}

Attempt attempt_delivery(Transport& transport, const Target& target, const config::Channel& channel,
                         const state::OutboxEvent& row, const secrets::Redactor& redactor,
                         SysTime now, Millis timeout) {
  auto event = parse_event_json(row.payload);
  if (!event) return permanent("stored event is unreadable: " + event.error().what());
  switch (channel.kind) {
    case config::ChannelKind::kSlack:
      return send_slack(transport, target, channel, row, *event, redactor, now, timeout);
    case config::ChannelKind::kWebhook:
      return send_webhook(transport, target, channel, row, *event, redactor, now, timeout);
    case config::ChannelKind::kEmail:
      return send_email(transport, target, channel, row, *event, redactor, now, timeout);
  }
  return permanent("channel '" + channel.name + "' has an unknown kind");
}

}  // namespace md::notify
