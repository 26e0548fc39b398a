// The Dispatcher with its real parts — libcurl, the SQLite store, the
// secrets redactor — against real receivers on loopback
// (tests/receivers/*.py): a Standard Webhooks receiver that verifies
// signatures with Python's hmac, a Slack-shaped receiver that checks Block
// Kit, and an aiosmtpd SMTP server with STARTTLS and authentication.
#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/fs.h"
#include "core/log.h"
#include "core/process.h"
#include "notify/notify.h"

namespace md::notify {
namespace {

using nlohmann::json;
namespace fsys = std::filesystem;

constexpr char kPython[] = "/usr/bin/python3";  // Debian's, which has aiosmtpd
constexpr char kWhsecOld[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
constexpr char kWhsecNew[] = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
constexpr char kHookToken[] = "hooktoken-9f8e7d6c";
constexpr char kSlackToken[] = "T000-B000-slacktoken-1a2b3c";
constexpr char kSmtpPassword[] = "smtp-s3cret-pa55";

fsys::path receivers_dir() { return fsys::path(MD_SOURCE_DIR) / "tests" / "receivers"; }

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fsys::temp_directory_path() / "md-notify-XXXXXX").string();
    MD_CHECK(mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() { fsys::remove_all(path_); }
  const fsys::path& path() const { return path_; }

 private:
  fsys::path path_;
};

// One receiver process, stopped on destruction.
class Receiver {
 public:
  Receiver(const fsys::path& dir, std::string name, std::vector<std::string> args,
           std::map<std::string, std::string> env = {})
      : port_file_(dir / (name + ".port")),
        log_(dir / (name + ".jsonl")),
        out_(dir / (name + ".out")) {
    fsys::remove(port_file_);
    std::vector<std::string> argv = {
        kPython,       (receivers_dir() / (name.substr(0, name.find('.')) + ".py")).string(),
        "--port-file", port_file_.string(),
        "--log",       log_.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    proc::SpawnOptions o;
    o.env.set = std::move(env);
    o.out = proc::Redirect::to_file(out_);
    o.err = proc::Redirect::to_file(out_);
    auto s = proc::spawn(proc::Command::args(argv), o);
    MD_CHECK(s.has_value());
    pid_ = s->pid;
    for (int i = 0; i < 1000 && !fsys::exists(port_file_); ++i) {
      auto done = proc::reap(pid_, false);
      if (done && *done) break;
      std::this_thread::sleep_for(Millis(10));
    }
    auto text = fs::read_file(port_file_);
    EXPECT_TRUE(text) << "receiver " << name
                      << " did not start: " << fs::read_file(out_).value_or("");
    port_ = text ? std::stoi(*text) : 0;
  }
  ~Receiver() { stop(); }
  void stop() {
    if (pid_ > 0) (void)proc::stop_group(pid_, Millis(2000));
    pid_ = -1;
  }
  int port() const { return port_; }
  std::vector<json> records() const {
    std::vector<json> out;
    std::ifstream in(log_);
    for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
    return out;
  }
  std::string raw_log() const { return fs::read_file(log_).value_or(""); }

 private:
  fsys::path port_file_, log_, out_;
  pid_t pid_ = -1;
  int port_ = 0;
};

// Sends through libcurl with a CA bundle for the test's self-signed server.
class CaTransport : public Transport {
 public:
  explicit CaTransport(std::string ca) : ca_(std::move(ca)) {}
  Result<HttpResponse> post(const HttpRequest& r) override { return inner_->post(r); }
  Status send_mail(const MailRequest& r) override {
    MailRequest copy = r;
    copy.ca_file = ca_;
    return inner_->send_mail(copy);
  }

 private:
  std::string ca_;
  std::unique_ptr<Transport> inner_ = make_curl_transport();
};

Event event(EventType type, std::string deployment, int weight = -1) {
  Event e;
  e.type = type;
  e.environment = "production";
  e.app = "meshhook";
  e.version = "v42";
  e.previous_version = "v41";
  e.deployment_id = std::move(deployment);
  e.actor = "alice@example.com";
  e.trigger = "ci";
  e.strategy = "canary";
  e.status = "running";
  e.at = real_clock().now();
  if (weight >= 0) e.canary_weight = weight;
  return e;
}

config::Channel webhook_channel(std::string name, std::string url_secret) {
  config::Channel c;
  c.name = std::move(name);
  c.kind = config::ChannelKind::kWebhook;
  c.url_secret = std::move(url_secret);
  c.signing_secrets = {"HOOK_KEY_NEW", "HOOK_KEY_OLD"};
  c.timeout = Millis(3000);
  return c;
}

class ReceiversTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log::set_sinks({logs_});
    auto s = state::open_store("sqlite:" + (dir_.path() / "state.db").string());
    ASSERT_TRUE(s) << s.error().what();
    store_ = std::move(*s);
    secrets_ = {{"HOOK_KEY_NEW", secrets::Secret(kWhsecNew)},
                {"HOOK_KEY_OLD", secrets::Secret(kWhsecOld)},
                {"SMTP_PASSWORD", secrets::Secret(kSmtpPassword)}};
  }
  void TearDown() override { log::reset(); }

  Target target(std::vector<config::Channel> channels) {
    Target t;
    t.environment = "production";
    t.notifications.channels = std::move(channels);
    t.notifications.dashboard_url = "https://deploy.example.com/{environment}/{deployment}";
    t.secrets = secrets_;
    return t;
  }
  void enqueue(const Target& t, const Event& e) {
    state::Batch b;
    b.outbox = fan_out(t.notifications, e);
    ASSERT_FALSE(b.outbox.empty());
    auto st = store_->commit(b);
    ASSERT_TRUE(st) << st.error().what();
  }
  // Every secret value, to look for where it must not be.
  void expect_no_secret(const std::string& where, const std::string& text,
                        std::vector<std::string> allowed = {}) {
    for (const auto& [name, value] : secrets_) {
      if (std::find(allowed.begin(), allowed.end(), name) != allowed.end()) continue;
      EXPECT_EQ(text.find(value.reveal()), std::string::npos) << name << " leaked into " << where;
    }
  }
  std::string everything_stored() {
    std::string all;
    auto rows = store_->events(std::nullopt, 0);
    EXPECT_TRUE(rows);
    for (const auto& r : *rows) all += r.payload + r.last_error + r.channel + r.event_id;
    return all;
  }

  TempDir dir_;
  std::unique_ptr<state::Store> store_;
  secrets::SecretMap secrets_;
  std::shared_ptr<log::MemorySink> logs_ = std::make_shared<log::MemorySink>();
};

TEST_F(ReceiversTest, WebhookReceiverVerifiesEverySignatureWithPythonHmac) {
  // The receiver knows only the new key: the old one is still sent while rotating.
  Receiver hooks(dir_.path(), "webhook_receiver", {}, {{"WEBHOOK_SECRETS", kWhsecNew}});
  Receiver old_only(dir_.path(), "webhook_receiver.old", {}, {{"WEBHOOK_SECRETS", kWhsecOld}});
  std::string base = "http://127.0.0.1:";
  secrets_["HOOK_URL"] =
      secrets::Secret(base + std::to_string(hooks.port()) + "/hooks/" + kHookToken);
  secrets_["OLD_URL"] =
      secrets::Secret(base + std::to_string(old_only.port()) + "/in/" + kHookToken + "-2");
  Target t = target({webhook_channel("hooks", "HOOK_URL"), webhook_channel("old", "OLD_URL")});
  enqueue(t, event(EventType::kStarted, "d-1"));
  enqueue(t, event(EventType::kCanaryStep, "d-1", 25));
  enqueue(t, event(EventType::kSucceeded, "d-1"));

  auto curl = make_curl_transport();
  Dispatcher d(*store_, *curl, {t}, {}, real_clock());
  auto report = d.drain(Millis(20'000));
  EXPECT_EQ(report.pending, 0) << report.store_error;
  EXPECT_EQ(report.failed, 0);

  for (const Receiver* r : {&hooks, &old_only}) {
    auto got = r->records();
    ASSERT_EQ(got.size(), 3u) << r->raw_log();
    std::vector<std::string> types;
    for (const auto& g : got) {
      EXPECT_TRUE(g["verified"].get<bool>()) << g.dump();
      EXPECT_EQ(g["status"], 200);
      EXPECT_FALSE(g["duplicate"].get<bool>());
      types.push_back(json::parse(g["body"].get<std::string>())["type"]);
      // The signature header carries both keys' signatures.
      EXPECT_NE(g["headers"]["webhook-signature"].get<std::string>().find(' '), std::string::npos);
    }
    EXPECT_EQ(types, (std::vector<std::string>{"deployment.started", "deployment.canary_step",
                                               "deployment.succeeded"}));
  }
  EXPECT_EQ(hooks.records()[0]["path"], std::string("/hooks/") + kHookToken);
  // Nothing the receivers got carries a secret they are not meant to have:
  // the URL's token is theirs, keys and passwords never travel.
  expect_no_secret("the webhook receiver", hooks.raw_log(), {"HOOK_URL"});
  expect_no_secret("the second receiver", old_only.raw_log(), {"OLD_URL"});
  expect_no_secret("meshdeploy's log", logs_->text());
  expect_no_secret("the state store", everything_stored());
}

TEST_F(ReceiversTest, ReceiverRejectsATamperedSignature) {
  // Sanity check of the receiver itself: a key it does not know fails.
  Receiver hooks(dir_.path(), "webhook_receiver", {},
                 {{"WEBHOOK_SECRETS", "whsec_HyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4="}});
  secrets_["HOOK_URL"] = secrets::Secret("http://127.0.0.1:" + std::to_string(hooks.port()) + "/h");
  Target t = target({webhook_channel("hooks", "HOOK_URL")});
  enqueue(t, event(EventType::kFailed, "d-2"));
  auto curl = make_curl_transport();
  Dispatcher d(*store_, *curl, {t}, {}, real_clock());
  auto report = d.drain(Millis(10'000));
  ASSERT_EQ(report.deliveries.size(), 1u);
  EXPECT_EQ(report.deliveries[0].outcome, Delivery::Outcome::kFailed);
  EXPECT_EQ(report.deliveries[0].detail, "HTTP 401: no signature matches");
  auto rows = store_->events(state::OutboxStatus::kFailed, 0);
  ASSERT_TRUE(rows);
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].last_error, "HTTP 401: no signature matches");
}

TEST_F(ReceiversTest, SlackReceiverGetsValidBlockKitEvenForHugeValues) {
  Receiver slack(dir_.path(), "webhook_receiver", {"--slack"});
  secrets_["SLACK_URL"] = secrets::Secret("http://127.0.0.1:" + std::to_string(slack.port()) +
                                          "/services/" + kSlackToken);
  config::Channel c;
  c.name = "slack";
  c.kind = config::ChannelKind::kSlack;
  c.url_secret = "SLACK_URL";
  Target t = target({c});
  Event big = event(EventType::kRolledBack, "d-3");
  big.reason = std::string(20000, '<') + " tail";
  big.version = std::string(3000, 'v') + "é";
  big.app = "app with a very long name " + std::string(300, 'x');
  enqueue(t, big);
  Event approval = event(EventType::kApprovalNeeded, "d-3", 50);
  enqueue(t, approval);
  auto curl = make_curl_transport();
  Dispatcher d(*store_, *curl, {t}, {}, real_clock());
  auto report = d.drain(Millis(10'000));
  EXPECT_EQ(report.pending, 0);
  auto got = slack.records();
  ASSERT_EQ(got.size(), 2u);
  for (const auto& g : got) {
    EXPECT_TRUE(g["problems"].empty()) << g["problems"].dump();
    EXPECT_EQ(g["status"], 200);
  }
  expect_no_secret("the Slack receiver", slack.raw_log(), {"SLACK_URL"});
}

class SmtpTest : public ReceiversTest {
 protected:
  void make_cert() {
    cert_ = (dir_.path() / "cert.pem").string();
    key_ = (dir_.path() / "key.pem").string();
    auto r = proc::run(proc::Command::args(
        {"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key_, "-out", cert_,
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"}));
    ASSERT_TRUE(r && r->ok()) << (r ? r->err : r.error().what());
  }
  config::Channel mail(int port) {
    config::Channel c;
    c.name = "mail";
    c.kind = config::ChannelKind::kEmail;
    c.smtp_url = "smtp://127.0.0.1:" + std::to_string(port);
    c.smtp_user = "deploy";
    c.smtp_password_secret = "SMTP_PASSWORD";
    c.from = "Déploiement <deploy@example.com>";
    c.to = {"ops@example.com", "Zoë <zoe@example.org>", "oncall@example.net"};
    c.timeout = Millis(5000);
    return c;
  }
  std::string cert_, key_;
};

TEST_F(SmtpTest, MailArrivesOverStartTlsWithAuthAndBothParts) {
  make_cert();
  Receiver smtp(dir_.path(), "smtp_receiver",
                {"--cert", cert_, "--key", key_, "--require-starttls"},
                {{"SMTP_AUTH_USER", "deploy"}, {"SMTP_AUTH_PASSWORD", kSmtpPassword}});
  Target t = target({mail(smtp.port())});
  Event e = event(EventType::kFailed, "d-4");
  e.reason = "health check failed on web-1\n.a line that starts with a dot\n..two dots";
  e.app = "méshhook";
  enqueue(t, e);
  CaTransport transport(cert_);
  Dispatcher d(*store_, transport, {t}, {}, real_clock());
  auto report = d.drain(Millis(20'000));
  ASSERT_EQ(report.deliveries.size(), 1u);
  EXPECT_EQ(report.deliveries[0].outcome, Delivery::Outcome::kDelivered)
      << report.deliveries[0].detail;

  auto got = smtp.records();
  ASSERT_EQ(got.size(), 1u) << smtp.raw_log();
  const json& m = got[0];
  EXPECT_TRUE(m["tls"].get<bool>());
  EXPECT_EQ(m["auth_user"], "deploy");
  EXPECT_EQ(m["mail_from"], "deploy@example.com");
  EXPECT_EQ(m["rcpt_tos"],
            json::array({"ops@example.com", "zoe@example.org", "oncall@example.net"}));
  EXPECT_EQ(m["content_type"], "multipart/alternative");
  EXPECT_EQ(m["subject"], "[meshdeploy] Deploy of méshhook v42 to production failed");
  EXPECT_EQ(m["headers"]["From"], "Déploiement <deploy@example.com>");
  EXPECT_NE(m["headers"]["To"].get<std::string>().find("Zoë <zoe@example.org>"), std::string::npos);
  EXPECT_NE(m["headers"]["Message-ID"].get<std::string>().find("@example.com>"), std::string::npos);
  EXPECT_FALSE(m["headers"]["Date"].get<std::string>().empty());
  ASSERT_EQ(m["parts"].size(), 2u);
  EXPECT_EQ(m["parts"][0]["type"], "text/plain");
  EXPECT_EQ(m["parts"][1]["type"], "text/html");
  std::string text = m["parts"][0]["text"];
  EXPECT_NE(text.find("\n                   .a line that starts with a dot"), std::string::npos)
      << text;
  EXPECT_NE(text.find("..two dots"), std::string::npos);
  EXPECT_NE(m["parts"][1]["text"].get<std::string>().find("<table"), std::string::npos);
  expect_no_secret("the mail", smtp.raw_log());
  expect_no_secret("meshdeploy's log", logs_->text());
  expect_no_secret("the state store", everything_stored());
}

TEST_F(SmtpTest, RequiredStartTlsIsNeverSkipped) {
  // A server without TLS: the password must not go out in clear.
  Receiver smtp(dir_.path(), "smtp_receiver", {}, {});
  Target t = target({mail(smtp.port())});
  enqueue(t, event(EventType::kStarted, "d-5"));
  auto curl = make_curl_transport();
  Dispatcher d(*store_, *curl, {t}, {}, real_clock());
  auto report = d.drain(Millis(10'000));
  ASSERT_EQ(report.deliveries.size(), 1u);
  EXPECT_EQ(report.deliveries[0].outcome, Delivery::Outcome::kFailed);
  EXPECT_NE(report.deliveries[0].detail.find("STARTTLS"), std::string::npos)
      << report.deliveries[0].detail;
  EXPECT_TRUE(smtp.records().empty());
}

TEST_F(SmtpTest, TransientRefusalIsRetriedAndPermanentOneIsRecorded) {
  Receiver smtp(dir_.path(), "smtp_receiver", {"--script", "451,550"},
                {{"SMTP_AUTH_USER", "deploy"}, {"SMTP_AUTH_PASSWORD", kSmtpPassword}});
  config::Channel c = mail(smtp.port());
  c.starttls = false;  // a relay on localhost
  Target t = target({c});
  enqueue(t, event(EventType::kStarted, "d-6"));
  enqueue(t, event(EventType::kSucceeded, "d-6"));
  DispatcherOptions o;
  o.initial_backoff = Millis(100);
  auto curl = make_curl_transport();
  Dispatcher d(*store_, *curl, {t}, o, real_clock());
  auto report = d.drain(Millis(20'000));
  ASSERT_EQ(report.deliveries.size(), 3u);
  EXPECT_EQ(report.deliveries[0].outcome, Delivery::Outcome::kRetrying);
  EXPECT_EQ(report.deliveries[1].outcome, Delivery::Outcome::kFailed);
  EXPECT_NE(report.deliveries[1].detail.find("550"), std::string::npos)
      << report.deliveries[1].detail;
  EXPECT_EQ(report.deliveries[2].outcome, Delivery::Outcome::kDelivered);
  EXPECT_EQ(smtp.records().size(), 1u);
}

TEST_F(ReceiversTest, AReceiverDownThenBackGetsEveryEventOnceInOrder) {
  // Learn a free port, then take the receiver down.
  auto hooks = std::make_unique<Receiver>(
      dir_.path(), "webhook_receiver", std::vector<std::string>{},
      std::map<std::string, std::string>{{"WEBHOOK_SECRETS", kWhsecNew}});
  int port = hooks->port();
  hooks->stop();
  Receiver steady(dir_.path(), "webhook_receiver.steady", {"--script", "503,429:1"},
                  {{"WEBHOOK_SECRETS", kWhsecNew}});
  secrets_["HOOK_URL"] =
      secrets::Secret("http://127.0.0.1:" + std::to_string(port) + "/h/" + kHookToken);
  secrets_["STEADY_URL"] =
      secrets::Secret("http://127.0.0.1:" + std::to_string(steady.port()) + "/s");
  Target t =
      target({webhook_channel("flaky", "HOOK_URL"), webhook_channel("steady", "STEADY_URL")});

  DispatcherOptions o;
  o.initial_backoff = Millis(50);
  o.max_backoff = Millis(400);
  o.poll_interval = Millis(100);
  auto curl = make_curl_transport();
  Dispatcher d(*store_, *curl, {t}, o, real_clock());
  std::atomic<int> refused{0};
  d.on_delivery([&](const Delivery& x) {
    refused += x.channel == "flaky" && x.outcome != Delivery::Outcome::kDelivered;
  });
  d.start();
  std::vector<std::string> expected, steady_expected;
  for (int i = 0; i < 6; ++i) {
    Event e = event(i % 2 ? EventType::kCanaryStep : EventType::kStarted, "d-" + std::to_string(i),
                    10 * i);
    enqueue(t, e);
    expected.push_back(event_id(e, "flaky"));
    steady_expected.push_back(event_id(e, "steady"));
    d.wake();
  }
  for (int i = 0; i < 300 && refused < 3; ++i) std::this_thread::sleep_for(Millis(10));
  EXPECT_GE(refused, 3) << "the receiver was down: attempts must have failed";
  // Back up on the same port.
  hooks = std::make_unique<Receiver>(
      dir_.path(), "webhook_receiver", std::vector<std::string>{"--port", std::to_string(port)},
      std::map<std::string, std::string>{{"WEBHOOK_SECRETS", kWhsecNew}});
  ASSERT_EQ(hooks->port(), port);
  auto report = d.drain(Millis(30'000));
  EXPECT_EQ(report.pending, 0);
  EXPECT_EQ(report.failed, 0);

  auto ok_ids = [](const Receiver& r) {
    std::vector<std::string> ids;
    for (const auto& g : r.records())
      if (g["status"] == 200) {
        EXPECT_TRUE(g["verified"].get<bool>());
        ids.push_back(g["headers"]["webhook-id"]);
      }
    return ids;
  };
  EXPECT_EQ(ok_ids(*hooks), expected) << "every event exactly once, in order";
  EXPECT_EQ(ok_ids(steady), steady_expected);
  EXPECT_EQ(steady.records().size(), 8u) << "503 and 429 answered first, then 6 deliveries";
  auto rows = store_->events(state::OutboxStatus::kDelivered, 0);
  ASSERT_TRUE(rows);
  EXPECT_EQ(rows->size(), 12u);
  expect_no_secret("meshdeploy's log", logs_->text());
  expect_no_secret("the state store", everything_stored());
}

}  // namespace
}  // namespace md::notify
