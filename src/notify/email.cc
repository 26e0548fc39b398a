// The notification mail: addresses, RFC 2047 headers, quoted-printable
// parts and the multipart/alternative message.
#include <fmt/format.h>

#include <ctime>

#include "notify/message.h"
#include "notify/signature.h"

namespace md::notify {
namespace {

bool printable_ascii(std::string_view s) {
  for (unsigned char c : s)
    if (c < 0x20 || c > 0x7e) return false;
  return true;
}

std::string trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
  return b == std::string_view::npos ? std::string() : std::string(s.substr(b, e - b + 1));
}

std::string html_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// Replaces CR and LF (header injection) with spaces.
std::string one_line(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c == '\r' || c == '\n') c = ' ';
  return out;
}

std::string format_mailbox(const Mailbox& m) {
  if (m.name.empty()) return m.address;
  if (!printable_ascii(m.name)) return encode_header_text(m.name) + " <" + m.address + ">";
  std::string quoted = "\"";
  for (char c : m.name) {
    if (c == '"' || c == '\\') quoted += '\\';
    quoted += c;
  }
  return quoted + "\" <" + m.address + ">";
}

// RFC 5322 date: "Sun, 22 Nov 2026 09:00:00 +0000".
std::string rfc5322_date(SysTime t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  return buf;
}

struct Fact {
  std::string label;
  std::string value;
};

std::vector<Fact> facts(const Event& e, std::string_view event_id, std::string_view link) {
  std::vector<Fact> out;
  auto add = [&](std::string label, std::string value) {
    if (!value.empty()) out.push_back({std::move(label), std::move(value)});
  };
  add("Environment", e.environment);
  add("Status", e.status);
  add("Version", e.version);
  add("Previous version", e.previous_version);
  std::string who = e.actor;
  if (!e.trigger.empty()) who += who.empty() ? e.trigger : " (" + e.trigger + ")";
  add("Triggered by", who);
  add("Strategy", e.strategy);
  if (!e.hosts.empty()) {
    std::string hosts;
    for (const std::string& h : e.hosts) hosts += (hosts.empty() ? "" : ", ") + h;
    add("Hosts", hosts);
  }
  if (e.duration) add("Duration", format_duration(*e.duration));
  if (e.canary_weight) add("Canary weight", std::to_string(*e.canary_weight) + "%");
  add("Reason", e.reason);
  add("Deployment", e.deployment_id);
  add("Time", format_time(e.at));
  add("Dashboard", std::string(link));
  add("Event", std::string(event_id));
  return out;
}

}  // namespace

Result<Mailbox> parse_mailbox(std::string_view text, std::string_view what) {
  auto bad = [&](const std::string& why) {
    return fail(Errc::kInvalidArgument, std::string(what) + ": '" + one_line(text) + "' " + why);
  };
  if (text.find_first_of("\r\n") != std::string_view::npos) return bad("contains a line break");
  Mailbox m;
  size_t lt = text.find('<');
  if (lt == std::string_view::npos) {
    m.address = trim(text);
  } else {
    size_t gt = text.find('>', lt);
    if (gt == std::string_view::npos || trim(text.substr(gt + 1)) != "")
      return bad("has an unbalanced '<'");
    m.name = trim(text.substr(0, lt));
    if (m.name.size() >= 2 && m.name.front() == '"' && m.name.back() == '"')
      m.name = m.name.substr(1, m.name.size() - 2);
    m.address = trim(text.substr(lt + 1, gt - lt - 1));
  }
  size_t at = m.address.find('@');
  if (at == std::string::npos || at == 0 || at + 1 == m.address.size() ||
      m.address.find('@', at + 1) != std::string::npos)
    return bad("is not an address like ops@example.com");
  if (m.address.find_first_of(" \t<>,;\"") != std::string::npos)
    return bad("has a character an address cannot hold");
  return m;
}

std::string encode_header_text(std::string_view text) {
  if (printable_ascii(text) && text.size() <= 900) return std::string(text);
  // WHY 45 bytes: base64 of 45 bytes is 60 characters, and "=?UTF-8?B?" +
  // 60 + "?=" is 72 <= 75 (RFC 2047 section 2). Cut only between UTF-8
  // sequences so each word decodes on its own (section 5).
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    size_t end = i;
    while (end < text.size()) {
      size_t n = 1;
      unsigned char c = static_cast<unsigned char>(text[end]);
      if (c >= 0xF0)
        n = 4;
      else if (c >= 0xE0)
        n = 3;
      else if (c >= 0xC0)
        n = 2;
      if (end + n - i > 45) break;
      end += n;
    }
    if (end == i) end = std::min(text.size(), i + 1);  // a stray byte longer than the room
    if (!out.empty()) out += "\r\n ";
    out += "=?UTF-8?B?" + base64_encode(text.substr(i, end - i)) + "?=";
    i = end;
  }
  return out;
}

std::string quoted_printable(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out, line;
  auto flush_line = [&](bool hard) {
    out += line;
    out += hard ? "\r\n" : "=\r\n";
    line.clear();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') continue;
    if (c == '\n') {
      // Trailing white space before a line break must be encoded.
      if (!line.empty() && (line.back() == ' ' || line.back() == '\t')) {
        char ws = line.back();
        line.pop_back();
        if (line.size() + 3 > 75) flush_line(false);
        line += ws == ' ' ? "=20" : "=09";
      }
      flush_line(true);
      continue;
    }
    std::string enc;
    if ((c >= 33 && c <= 126 && c != '=') || c == ' ' || c == '\t') {
      enc = std::string(1, static_cast<char>(c));
    } else {
      enc = {'=', kHex[c >> 4], kHex[c & 15]};
    }
    if (line.size() + enc.size() > 75) flush_line(false);
    line += enc;
  }
  if (!line.empty()) {
    if (line.back() == ' ' || line.back() == '\t') {
      char ws = line.back();
      line.pop_back();
      line += ws == ' ' ? "=20" : "=09";
    }
    out += line;
  }
  return out;
}

Mail mail_content(const Event& e, std::string_view event_id, std::string_view link) {
  Mail m;
  m.subject = "[meshdeploy] " + one_line(summary(e));
  std::vector<Fact> list = facts(e, event_id, link);

  m.text = summary(e) + "\n\n";
  for (const Fact& f : list) {
    std::string label = f.label + ":";
    label.resize(std::max<size_t>(label.size() + 1, 19), ' ');
    std::string value = f.value;
    // Continuation lines of a multi-line value line up under the first.
    for (size_t p = value.find('\n'); p != std::string::npos; p = value.find('\n', p + 1))
      value.insert(p + 1, std::string(label.size(), ' '));
    m.text += label + value + "\n";
  }
  if (e.type == EventType::kApprovalNeeded)
    m.text += "\nPromote with: meshdeploy promote --env " + e.environment + "\n";
  m.text += "\n-- \nSent by meshdeploy.\n";

  m.html = "<!DOCTYPE html>\n<html><body style=\"font-family:sans-serif\">\n<h2>" +
           html_escape(summary(e)) + "</h2>\n<table cellpadding=\"4\">\n";
  for (const Fact& f : list) {
    std::string value = html_escape(f.value);
    if (f.label == "Dashboard") value = fmt::format("<a href=\"{0}\">{0}</a>", value);
    if (f.label == "Reason") value = fmt::format("<pre style=\"margin:0\">{}</pre>", value);
    m.html +=
        "<tr><th align=\"left\">" + html_escape(f.label) + "</th><td>" + value + "</td></tr>\n";
  }
  m.html += "</table>\n";
  if (e.type == EventType::kApprovalNeeded)
    m.html += "<p>Promote with <code>meshdeploy promote --env " + html_escape(e.environment) +
              "</code></p>\n";
  m.html += "<p style=\"color:#888\">Sent by meshdeploy.</p>\n</body></html>\n";
  return m;
}

std::string mime_message(const Mail& mail, const Mailbox& from, const std::vector<Mailbox>& to,
                         std::string_view event_id, SysTime date) {
  std::string domain = from.address.substr(from.address.find('@') + 1);
  // WHY this boundary: quoted-printable output never contains "=_", so no
  // part can contain the boundary line.
  std::string boundary = "=_meshdeploy_" + std::string(event_id);
  std::string to_list;
  for (const Mailbox& m : to) {
    if (!to_list.empty()) to_list += ",\r\n ";
    to_list += format_mailbox(m);
  }
  std::string msg;
  msg += "Date: " + rfc5322_date(date) + "\r\n";
  msg += "From: " + format_mailbox(from) + "\r\n";
  msg += "To: " + to_list + "\r\n";
  msg += "Subject: " + encode_header_text(one_line(mail.subject)) + "\r\n";
  msg += "Message-ID: <" + std::string(event_id) + "@" + domain + ">\r\n";
  msg += "MIME-Version: 1.0\r\n";
  msg += "Auto-Submitted: auto-generated\r\n";
  msg += "Content-Type: multipart/alternative; boundary=\"" + boundary + "\"\r\n";
  msg += "\r\n";
  msg += "This is a multi-part message in MIME format.\r\n";
  auto part = [&](const char* type, const std::string& body) {
    msg += "--" + boundary + "\r\n";
    msg += std::string("Content-Type: ") + type + "; charset=utf-8\r\n";
    msg += "Content-Transfer-Encoding: quoted-printable\r\n\r\n";
    msg += quoted_printable(body);
    msg += "\r\n";
  };
  part("text/plain", mail.text);
  part("text/html", mail.html);
  msg += "--" + boundary + "--\r\n";
  return msg;
}

}  // namespace md::notify
