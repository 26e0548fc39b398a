#include "notify/message.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "notify/signature.h"

namespace md::notify {
namespace {

using nlohmann::json;

Event sample(EventType t = EventType::kFailed) {
  Event e;
  e.type = t;
  e.environment = "production";
  e.app = "meshhook";
  e.version = "v42";
  e.previous_version = "v41";
  e.deployment_id = "d-20261122-090000-ab12";
  e.actor = "alice";
  e.trigger = "ci";
  e.strategy = "canary";
  e.duration = Millis(93'500);
  e.status = "failed";
  e.reason = "canary 5xx ratio 0.12 > 0.01";
  e.at = from_unix_ms(1'790'000'000'123);
  return e;
}

// Code points, as Slack's validator (and Python's len) count them.
size_t units(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

TEST(Summary, SaysWhatHappened) {
  EXPECT_EQ(summary(sample(EventType::kStarted)), "Deploying meshhook v42 to production");
  EXPECT_EQ(summary(sample(EventType::kSucceeded)), "Deployed meshhook v42 to production");
  EXPECT_EQ(summary(sample(EventType::kFailed)), "Deploy of meshhook v42 to production failed");
  EXPECT_EQ(summary(sample(EventType::kRolledBack)), "production rolled back from v42 to v41");
  Event c = sample(EventType::kCanaryStep);
  c.canary_weight = 25;
  EXPECT_EQ(summary(c), "Canary meshhook v42 at 25% in production");
  c.type = EventType::kApprovalNeeded;
  EXPECT_EQ(summary(c), "Canary meshhook v42 in production waits for approval at 25%");
  EXPECT_EQ(summary(sample(EventType::kTest)), "Test notification from meshdeploy for production");
}

TEST(Duration, ReadsLikeAPerson) {
  EXPECT_EQ(format_duration(Millis(850)), "850 ms");
  EXPECT_EQ(format_duration(Millis(12'300)), "12.3 s");
  EXPECT_EQ(format_duration(Millis(93'500)), "1m 33s");
  EXPECT_EQ(format_duration(Millis(3'720'000)), "1h 02m");
  EXPECT_EQ(format_duration(Millis(-5)), "0 ms");
}

TEST(DashboardLink, FillsPlaceholdersUrlEncoded) {
  Event e = sample();
  e.version = "v 4/2";
  EXPECT_EQ(dashboard_link("", e), "");
  EXPECT_EQ(dashboard_link("https://deploy.example.com/", e), "https://deploy.example.com/");
  EXPECT_EQ(
      dashboard_link("https://d.example.com/{environment}/deployments/{deployment}?v={version}", e),
      "https://d.example.com/production/deployments/d-20261122-090000-ab12?v=v%204%2F2");
}

TEST(Truncate, CountsUtf16AndNeverSplitsACharacter) {
  EXPECT_EQ(truncate_utf16("hello", 5), "hello");
  EXPECT_EQ(truncate_utf16("hello!", 5), "hell\xE2\x80\xA6");
  EXPECT_EQ(truncate_utf16("h\xC3\xA9llo!", 3), "h\xC3\xA9\xE2\x80\xA6");
  // An emoji outside the BMP is two UTF-16 units.
  std::string rocket = "\xF0\x9F\x9A\x80";
  EXPECT_EQ(truncate_utf16(rocket + rocket, 4), rocket + rocket);
  EXPECT_EQ(truncate_utf16(rocket + rocket, 3), rocket + "\xE2\x80\xA6");
  EXPECT_EQ(truncate_utf16(rocket + rocket, 2), "\xE2\x80\xA6");
  EXPECT_EQ(truncate_utf16("abc", 0), "");
}

TEST(Slack, BlockKitWithEveryFact) {
  Event e = sample();
  json m = json::parse(slack_message(e, "evt_1", "https://d.example.com/x"));
  EXPECT_EQ(m["text"],
            "Deploy of meshhook v42 to production failed: canary 5xx ratio 0.12 &gt; 0.01");
  auto& blocks = m["blocks"];
  ASSERT_EQ(blocks.size(), 5u);
  EXPECT_EQ(blocks[0]["type"], "header");
  EXPECT_EQ(blocks[0]["text"]["type"], "plain_text");
  EXPECT_EQ(blocks[0]["text"]["text"], ":x: Deploy of meshhook v42 to production failed");
  std::string fields;
  for (auto& f : blocks[1]["fields"]) fields += f["text"].get<std::string>() + "|";
  EXPECT_EQ(fields,
            "*Environment*\nproduction|*Status*\nfailed|*Version*\n`v42`|*Previous version*\n`v41`|"
            "*Triggered by*\nalice (ci)|*Duration*\n1m 33s|*Strategy*\ncanary|");
  EXPECT_EQ(blocks[2]["text"]["text"], "*Reason*\n```canary 5xx ratio 0.12 &gt; 0.01```");
  EXPECT_EQ(blocks[3]["type"], "actions");
  EXPECT_EQ(blocks[3]["elements"][0]["url"], "https://d.example.com/x");
  EXPECT_EQ(blocks[4]["type"], "context");
  EXPECT_NE(blocks[4]["elements"][0]["text"].get<std::string>().find("evt_1"), std::string::npos);
}

TEST(Hosts, EveryChannelNamesAnEnvironmentsHosts) {
  Event e = sample();
  e.hosts = {"web-1", "web-2", "web-3"};
  json m = json::parse(slack_message(e, "evt_1", ""));
  std::string fields;
  for (auto& f : m["blocks"][1]["fields"]) fields += f["text"].get<std::string>() + "|";
  EXPECT_NE(fields.find("*Hosts*\nweb-1, web-2, web-3|"), std::string::npos) << fields;
  json b = json::parse(webhook_body(e, "evt_abc", ""));
  EXPECT_EQ(b["data"]["hosts"], json({"web-1", "web-2", "web-3"}));
  EXPECT_NE(mail_content(e, "evt_abc", "").text.find("web-1, web-2, web-3"), std::string::npos);
  // One host: nothing about hosts (as before there were several).
  e.hosts.clear();
  EXPECT_FALSE(json::parse(webhook_body(e, "evt_abc", ""))["data"].contains("hosts"));
  EXPECT_EQ(slack_message(e, "evt_1", "").find("Hosts"), std::string::npos);
}

TEST(Slack, NoLinkNoButtonAndApprovalSaysHowToPromote) {
  Event e = sample(EventType::kApprovalNeeded);
  e.reason.clear();
  e.canary_weight = 50;
  json m = json::parse(slack_message(e, "evt_1", ""));
  for (auto& b : m["blocks"]) EXPECT_NE(b["type"], "actions");
  EXPECT_NE(m.dump().find("meshdeploy promote --env production"), std::string::npos);
  EXPECT_NE(m.dump().find("*Canary weight*\\n50%"), std::string::npos);
}

TEST(Slack, HugeValuesAreTruncatedToSlackLimits) {
  Event e = sample();
  e.app = std::string(400, 'a');
  e.version = std::string(5000, '<');  // escapes to 4 chars each
  e.reason = std::string(10000, '&') + "tail";
  e.actor = std::string(3000, 'x') + "\xF0\x9F\x9A\x80";
  std::string link = "https://d.example.com/" + std::string(4000, 'p');
  json m = json::parse(slack_message(e, "evt_1", link));
  auto& blocks = m["blocks"];
  EXPECT_LE(blocks.size(), SlackLimits::kBlocks);
  EXPECT_LE(units(blocks[0]["text"]["text"]), SlackLimits::kHeaderText);
  EXPECT_LE(blocks[1]["fields"].size(), SlackLimits::kFields);
  for (auto& f : blocks[1]["fields"]) EXPECT_LE(units(f["text"]), SlackLimits::kFieldText);
  EXPECT_LE(units(blocks[2]["text"]["text"]), SlackLimits::kSectionText);
  EXPECT_LE(units(m["text"]), SlackLimits::kFallbackText);
  // Entities are never cut in half.
  std::string reason = blocks[2]["text"]["text"];
  EXPECT_EQ(reason.find("&am\xE2"), std::string::npos);
  // A link too long to keep is dropped, not cut.
  for (auto& b : blocks) EXPECT_NE(b["type"], "actions");
}

TEST(Webhook, StandardWebhooksPayload) {
  Event e = sample(EventType::kRolledBack);
  e.canary_weight = 25;
  json b = json::parse(webhook_body(e, "evt_abc", "https://d.example.com/x"));
  EXPECT_EQ(b["type"], "deployment.rolled_back");
  EXPECT_EQ(b["timestamp"], "2026-09-21T14:13:20.123Z");
  auto& d = b["data"];
  EXPECT_EQ(d["event_id"], "evt_abc");
  EXPECT_EQ(d["event"], "rolled_back");
  EXPECT_EQ(d["environment"], "production");
  EXPECT_EQ(d["version"], "v42");
  EXPECT_EQ(d["previous_version"], "v41");
  EXPECT_EQ(d["duration_ms"], 93500);
  EXPECT_EQ(d["canary_weight"], 25);
  EXPECT_EQ(d["url"], "https://d.example.com/x");
  EXPECT_EQ(d["summary"], "production rolled back from v42 to v41");
  Event t = sample(EventType::kTest);
  t.previous_version.clear();
  t.duration.reset();
  json tb = json::parse(webhook_body(t, "evt_t", ""));
  EXPECT_EQ(tb["type"], "deployment.test");
  EXPECT_TRUE(tb["data"]["previous_version"].is_null());
  EXPECT_TRUE(tb["data"]["duration_ms"].is_null());
  EXPECT_TRUE(tb["data"]["url"].is_null());
  // Minified: what is signed is what is sent.
  EXPECT_EQ(webhook_body(e, "evt_abc", "").find('\n'), std::string::npos);
}

TEST(Mailbox, ParsesBareAndNamedAddresses) {
  auto a = parse_mailbox(" ops@example.com ", "to");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->address, "ops@example.com");
  EXPECT_EQ(a->name, "");
  auto b = parse_mailbox("\"Deploy Bot\" <deploy@example.com>", "from");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->name, "Deploy Bot");
  EXPECT_EQ(b->address, "deploy@example.com");
  for (const char* bad : {"nobody", "@example.com", "a@", "a@b@c", "x <a@b.c",
                          "a@b.c\r\nBcc: x@y.z", "Bob <a@b.c> trailing", "a b@c.d"}) {
    auto r = parse_mailbox(bad, "notifications.channels.mail.to");
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().what().find("notifications.channels.mail.to"), std::string::npos);
    EXPECT_EQ(r.error().what().find('\n'), std::string::npos);
  }
}

TEST(HeaderEncoding, AsciiAsIsOtherwiseRfc2047Words) {
  EXPECT_EQ(encode_header_text("Deployed v42"), "Deployed v42");
  EXPECT_EQ(encode_header_text("Déployé"), "=?UTF-8?B?RMOpcGxvecOp?=");
  // Long text: several words, each <= 75 characters, none splitting a character.
  std::string text;
  for (int i = 0; i < 40; ++i) text += "é€";
  std::string enc = encode_header_text(text);
  std::string joined;
  size_t pos = 0;
  while (pos < enc.size()) {
    size_t end = enc.find("\r\n ", pos);
    std::string word = enc.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    EXPECT_LE(word.size(), 75u);
    ASSERT_EQ(word.substr(0, 10), "=?UTF-8?B?");
    auto raw = base64_decode(word.substr(10, word.size() - 12));
    ASSERT_TRUE(raw);
    EXPECT_EQ(raw->size() % 5, 0u) << "split inside a character";  // "é€" = 2 + 3 bytes
    joined += *raw;
    if (end == std::string::npos) break;
    pos = end + 3;
  }
  EXPECT_EQ(joined, text);
}

TEST(QuotedPrintable, EncodesAndWrapsAndKeepsDots) {
  EXPECT_EQ(quoted_printable("a=b\n.dot line\nend "), "a=3Db\r\n.dot line\r\nend=20");
  EXPECT_EQ(quoted_printable("caf\xC3\xA9"), "caf=C3=A9");
  EXPECT_EQ(quoted_printable("trailing \nx"), "trailing=20\r\nx");
  std::string longline(200, 'x');
  std::string qp = quoted_printable(longline);
  size_t start = 0;
  std::string unwrapped;
  while (start < qp.size()) {
    size_t end = qp.find("\r\n", start);
    std::string line = qp.substr(start, end == std::string::npos ? std::string::npos : end - start);
    EXPECT_LE(line.size(), 76u);
    if (!line.empty() && line.back() == '=') line.pop_back();
    unwrapped += line;
    if (end == std::string::npos) break;
    start = end + 2;
  }
  EXPECT_EQ(unwrapped, longline);
}

TEST(Mail, MultipartAlternativeWithProperHeaders) {
  Event e = sample();
  e.app = "méshhook";
  e.reason = "line one\n.starts with a dot\n<script>";
  Mail mail = mail_content(e, "evt_abc", "https://d.example.com/x");
  EXPECT_EQ(mail.subject, "[meshdeploy] Deploy of méshhook v42 to production failed");
  EXPECT_NE(mail.text.find("Reason:            line one\n                   .starts with a dot"),
            std::string::npos);
  EXPECT_NE(mail.html.find("&lt;script&gt;"), std::string::npos);
  EXPECT_EQ(mail.html.find("<script>"), std::string::npos);
  EXPECT_NE(mail.html.find("<a href=\"https://d.example.com/x\">"), std::string::npos);

  auto from = parse_mailbox("Deploy Bot <deploy@example.com>", "from");
  auto to1 = parse_mailbox("ops@example.com", "to");
  auto to2 = parse_mailbox("Zoë <zoe@example.org>", "to");
  ASSERT_TRUE(from && to1 && to2);
  std::string msg =
      mime_message(mail, *from, {*to1, *to2}, "evt_abc", from_unix_ms(1'790'000'000'123));
  EXPECT_NE(msg.find("Date: Mon, 21 Sep 2026 14:13:20 +0000\r\n"), std::string::npos);
  EXPECT_NE(msg.find("From: \"Deploy Bot\" <deploy@example.com>\r\n"), std::string::npos);
  EXPECT_NE(msg.find("To: ops@example.com,\r\n =?UTF-8?B?Wm/Dqw==?= <zoe@example.org>\r\n"),
            std::string::npos);
  EXPECT_NE(msg.find("Subject: =?UTF-8?B?"), std::string::npos);
  EXPECT_NE(msg.find("Message-ID: <evt_abc@example.com>\r\n"), std::string::npos);
  EXPECT_NE(msg.find("Content-Type: multipart/alternative; boundary=\"=_meshdeploy_evt_abc\""),
            std::string::npos);
  EXPECT_NE(msg.find("Content-Type: text/plain; charset=utf-8"), std::string::npos);
  EXPECT_NE(msg.find("Content-Type: text/html; charset=utf-8"), std::string::npos);
  EXPECT_NE(msg.find("\r\n--=_meshdeploy_evt_abc--\r\n"), std::string::npos);
  // Every line ends in CRLF and stays within SMTP's 998 characters.
  for (size_t i = 0; i < msg.size(); ++i) {
    if (msg[i] == '\n') {
      ASSERT_TRUE(i > 0 && msg[i - 1] == '\r') << "bare LF at " << i;
    }
  }
  size_t start = 0;
  for (size_t p = msg.find("\r\n"); p != std::string::npos; p = msg.find("\r\n", start = p + 2))
    EXPECT_LE(p - start, 998u);
}

TEST(Mail, HeaderInjectionThroughEventTextIsImpossible) {
  Event e = sample();
  e.version = "v1\r\nBcc: attacker@example.com";
  Mail mail = mail_content(e, "evt_x", "");
  auto from = parse_mailbox("deploy@example.com", "from");
  std::string msg = mime_message(mail, *from, {*from}, "evt_x", from_unix_ms(0));
  std::string headers = msg.substr(0, msg.find("\r\n\r\n"));
  EXPECT_NE(headers.find("Subject: [meshdeploy] Deploy of meshhook v1  Bcc:"), std::string::npos);
  EXPECT_EQ(headers.find("\r\nBcc:"), std::string::npos);
}

}  // namespace
}  // namespace md::notify
