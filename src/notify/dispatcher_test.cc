#include <gtest/gtest.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/log.h"
#include "notify/delivery.h"
#include "notify/notify.h"
#include "notify/signature.h"
#include "notify/testing.h"

namespace md::notify {
namespace {

using testing::FakeStore;
using testing::FakeTransport;
using Outcome = Delivery::Outcome;

constexpr char kHookUrl[] = "https://hooks.example.com/in/T0KEN-abc123xyz";
constexpr char kSlackUrl[] = "https://hooks.slack.com/services/T000/B000/XXXXSLACKTOKEN";
constexpr char kWhsec[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
constexpr char kSmtpPassword[] = "smtp-pa55word-!";

config::Channel webhook(std::string name = "hooks") {
  config::Channel c;
  c.name = std::move(name);
  c.kind = config::ChannelKind::kWebhook;
  c.url_secret = "HOOK_URL";
  c.signing_secrets = {"HOOK_KEY"};
  return c;
}

config::Channel slack() {
  config::Channel c;
  c.name = "slack";
  c.kind = config::ChannelKind::kSlack;
  c.url_secret = "SLACK_URL";
  return c;
}

config::Channel email() {
  config::Channel c;
  c.name = "mail";
  c.kind = config::ChannelKind::kEmail;
  c.smtp_url = "smtp://127.0.0.1:2525";
  c.smtp_user = "deploy";
  c.smtp_password_secret = "SMTP_PASSWORD";
  c.from = "Deploy Bot <deploy@example.com>";
  c.to = {"ops@example.com", "Zoë <zoe@example.org>"};
  return c;
}

Target target(std::vector<config::Channel> channels, std::string env = "production") {
  Target t;
  t.environment = std::move(env);
  t.notifications.channels = std::move(channels);
  t.notifications.dashboard_url = "https://deploy.example.com/d/{deployment}";
  t.secrets = {{"HOOK_URL", secrets::Secret(kHookUrl)},
               {"HOOK_KEY", secrets::Secret(kWhsec)},
               {"SLACK_URL", secrets::Secret(kSlackUrl)},
               {"SMTP_PASSWORD", secrets::Secret(kSmtpPassword)}};
  return t;
}

Event event(EventType type, std::string deployment = "d-1", std::string env = "production") {
  Event e;
  e.type = type;
  e.environment = std::move(env);
  e.app = "meshhook";
  e.version = "v42";
  e.previous_version = "v41";
  e.deployment_id = std::move(deployment);
  e.actor = "alice";
  e.trigger = "ci";
  e.status = "running";
  e.at = from_unix_ms(1'790'000'000'000);
  return e;
}

DispatcherOptions fast() {
  DispatcherOptions o;
  o.initial_backoff = Millis(1000);
  o.max_backoff = Millis(8000);
  o.seed = 42;
  o.holder = "test-holder";
  return o;
}

class DispatcherTest : public ::testing::Test {
 protected:
  void SetUp() override { log::set_sinks({logs_}); }
  void TearDown() override { log::reset(); }

  // Commits the fan-out of `e` for the channels of `t`.
  void enqueue(const Target& t, const Event& e) {
    state::Batch b;
    b.outbox = fan_out(t.notifications, e);
    ASSERT_TRUE(store_.commit(b));
  }
  const state::OutboxEvent& row(size_t i) {
    rows_ = store_.rows();
    return rows_.at(i);
  }
  std::vector<Delivery> run(Dispatcher& d) {
    auto r = d.run_once();
    EXPECT_TRUE(r) << r.error().what();
    return r ? *r : std::vector<Delivery>{};
  }

  FakeClock clock_{from_unix_ms(1'790'000'000'000)};
  FakeStore store_{clock_};
  FakeTransport transport_;
  std::shared_ptr<log::MemorySink> logs_ = std::make_shared<log::MemorySink>();
  std::vector<state::OutboxEvent> rows_;
};

TEST(Policy, ClassifiesHttpStatuses) {
  EXPECT_EQ(classify_http(200), Verdict::kDelivered);
  EXPECT_EQ(classify_http(204), Verdict::kDelivered);
  for (int s : {408, 425, 429, 500, 502, 503, 504})
    EXPECT_EQ(classify_http(s), Verdict::kRetry) << s;
  for (int s : {100, 301, 302, 400, 401, 403, 404, 410, 413, 422})
    EXPECT_EQ(classify_http(s), Verdict::kPermanent) << s;
}

TEST(Policy, ExponentialBackoffWithEqualJitterAndCap) {
  Millis init(5000), max(3'600'000);
  EXPECT_EQ(backoff_delay(1, init, max, 0.0), Millis(2500));
  EXPECT_EQ(backoff_delay(1, init, max, 0.999999), Millis(4999));
  EXPECT_EQ(backoff_delay(2, init, max, 0.0), Millis(5000));
  EXPECT_EQ(backoff_delay(4, init, max, 0.0), Millis(20000));
  EXPECT_EQ(backoff_delay(30, init, max, 0.0), Millis(1'800'000));
  EXPECT_EQ(backoff_delay(1000, init, max, 1.0), max);
}

TEST(Policy, ParsesRetryAfter) {
  SysTime now = from_unix_ms(1'445'412'000'000);  // 2015-10-21T07:20:00Z
  EXPECT_EQ(parse_retry_after("120", now), Millis(120'000));
  EXPECT_EQ(parse_retry_after(" 0 ", now), Millis(0));
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now), Millis(480'000));
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now), Millis(0));
  EXPECT_FALSE(parse_retry_after("soon", now));
  EXPECT_FALSE(parse_retry_after("-5", now));
  EXPECT_FALSE(parse_retry_after("", now));
  EXPECT_TRUE(parse_retry_after("99999999999999999999", now));
}

TEST(Policy, SnippetIsOneLineOfValidUtf8) {
  EXPECT_EQ(snippet("a\nb\tc"), "a b c");
  EXPECT_EQ(snippet("abcdef", 3), "abc...");
  EXPECT_EQ(snippet("caf\xC3\xA9", 4), "caf...");
  EXPECT_EQ(snippet("x\xFFy\xC0\x80z"), "x?y??z");
  EXPECT_EQ(snippet("\xED\xA0\x80"), "???");
  EXPECT_EQ(snippet("\xF0\x9F\x9A\x80"), "\xF0\x9F\x9A\x80");
}

TEST_F(DispatcherTest, DeliversASignedWebhookOnce) {
  Target t = target({webhook()});
  enqueue(t, event(EventType::kSucceeded));
  Dispatcher d(store_, transport_, {t}, fast(), clock_);
  auto out = run(d);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].outcome, Outcome::kDelivered);
  EXPECT_EQ(out[0].detail, "HTTP 200");
  EXPECT_EQ(row(0).status, state::OutboxStatus::kDelivered);
  EXPECT_EQ(row(0).attempts, 1);

  ASSERT_EQ(transport_.posts.size(), 1u);
  const HttpRequest& req = transport_.posts[0];
  EXPECT_EQ(req.url, kHookUrl);
  std::map<std::string, std::string> h(req.headers.begin(), req.headers.end());
  EXPECT_EQ(h["webhook-id"], row(0).event_id);
  EXPECT_EQ(h["webhook-timestamp"], "1790000000");
  EXPECT_EQ(h["Content-Type"], "application/json");
  auto key = decode_signing_key(secrets::Secret(kWhsec));
  ASSERT_TRUE(key);
  EXPECT_TRUE(verify(h["webhook-id"], 1790000000, req.body, h["webhook-signature"], *key));
  auto body = nlohmann::json::parse(req.body);
  EXPECT_EQ(body["type"], "deployment.succeeded");
  EXPECT_EQ(body["data"]["url"], "https://deploy.example.com/d/d-1");

  EXPECT_TRUE(run(d).empty());  // nothing left: not sent twice
  EXPECT_EQ(transport_.posts.size(), 1u);
}

TEST_F(DispatcherTest, RotatingKeysSignWithEach) {
  config::Channel c = webhook();
  c.signing_secrets = {"NEW_KEY", "HOOK_KEY"};
  Target t = target({c});
  t.secrets["NEW_KEY"] = secrets::Secret("whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
  enqueue(t, event(EventType::kStarted));
  Dispatcher d(store_, transport_, {t}, fast(), clock_);
  run(d);
  ASSERT_EQ(transport_.posts.size(), 1u);
  std::map<std::string, std::string> h(transport_.posts[0].headers.begin(),
                                       transport_.posts[0].headers.end());
  std::string sig = h["webhook-signature"];
  ASSERT_NE(sig.find(' '), std::string::npos);
  for (const char* name : {"NEW_KEY", "HOOK_KEY"}) {
    auto key = decode_signing_key(t.secrets[name]);
    ASSERT_TRUE(key);
    EXPECT_TRUE(verify(h["webhook-id"], 1790000000, transport_.posts[0].body, sig, *key)) << name;
  }
}

TEST_F(DispatcherTest, StrictOrderPerChannelOthersProceed) {
  Target t = target({webhook("a"), webhook("b")});
  enqueue(t, event(EventType::kStarted));    // a1 b1
  enqueue(t, event(EventType::kSucceeded));  // a2 b2
  Dispatcher d(store_, transport_, {t}, fast(), clock_);
  // a1 fails (503): a2 must wait; b1 and b2 go.
  transport_.push_status(503, "busy");
  auto out = run(d);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].channel, "a");
  EXPECT_EQ(out[0].outcome, Outcome::kRetrying);
  EXPECT_EQ(out[1].channel, "b");
  EXPECT_EQ(out[2].channel, "b");
  EXPECT_EQ(out[2].event_type, "succeeded");
  EXPECT_EQ(row(2).status, state::OutboxStatus::kPending);  // a2 untouched
  EXPECT_EQ(row(2).attempts, 0);

  // Not due yet: nothing happens.
  EXPECT_TRUE(run(d).empty());
  clock_.advance(Millis(1000));
  out = run(d);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].event_type, "started");
  EXPECT_EQ(out[1].event_type, "succeeded");
  for (const auto& r : store_.rows()) EXPECT_EQ(r.status, state::OutboxStatus::kDelivered);
  // Receivers saw each event of channel a exactly once after the retry, in order.
  std::vector<std::string> ids;
  for (const auto& p : transport_.posts)
    for (const auto& [k, v] : p.headers)
      if (k == "webhook-id") ids.push_back(v);
  EXPECT_EQ(ids.size(), 5u);
}

TEST_F(DispatcherTest, BacksOffExponentiallyAndHonoursRetryAfter) {
  Target t = target({webhook()});
  enqueue(t, event(EventType::kFailed));
  Dispatcher d(store_, transport_, {t}, fast(), clock_);
  Millis last(0);
  for (int attempt = 1; attempt <= 5; ++attempt) {
    transport_.push_error(Errc::kUnavailable, "connect: Connection refused", true);
    auto out = run(d);
    ASSERT_EQ(out.size(), 1u) << attempt;
    EXPECT_EQ(out[0].outcome, Outcome::kRetrying);
    EXPECT_EQ(out[0].attempts, attempt);
    Millis delay = std::chrono::duration_cast<Millis>(out[0].next_attempt - clock_.now());
    Millis nominal = std::min(Millis(1000 << (attempt - 1)), Millis(8000));
    EXPECT_GE(delay, nominal / 2) << attempt;
    EXPECT_LE(delay, nominal) << attempt;
    EXPECT_EQ(row(0).next_attempt_at, out[0].next_attempt);
    EXPECT_EQ(row(0).last_error, "connect: Connection refused");
    clock_.advance(delay);
    last = delay;
  }
  // 429 with Retry-After longer than the backoff wins.
  transport_.push_status(429, "slow down", "120");
  auto out = run(d);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].next_attempt, clock_.now() + Millis(120'000));
  EXPECT_EQ(out[0].detail, "HTTP 429: slow down");
}

TEST_F(DispatcherTest, PermanentFailureIsRecordedAndTheNextEventGoes) {
  Target t = target({slack()});
  enqueue(t, event(EventType::kStarted));
  enqueue(t, event(EventType::kSucceeded));
  transport_.push_status(404, "channel_not_found");
  Dispatcher d(store_, transport_, {t}, fast(), clock_);
  auto out = run(d);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].outcome, Outcome::kFailed);
  EXPECT_EQ(out[1].outcome, Outcome::kDelivered);
  EXPECT_EQ(row(0).status, state::OutboxStatus::kFailed);
  EXPECT_EQ(row(0).last_error, "HTTP 404: channel_not_found");
  // A Slack message is Block Kit JSON.
  auto msg = nlohmann::json::parse(transport_.posts[1].body);
  EXPECT_TRUE(msg["blocks"].is_array());
  EXPECT_EQ(transport_.posts[1].url, kSlackUrl);
}

TEST_F(DispatcherTest, RedirectsAreNotFollowedAndFailForGood) {
  Target t = target({webhook()});
  enqueue(t, event(EventType::kStarted));
  transport_.push_status(301);
  Dispatcher d(store_, transport_, {t}, fast(), clock_);
  auto out = run(d);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].outcome, Outcome::kFailed);
  EXPECT_NE(out[0].detail.find("redirects are not followed"), std::string::npos);
}

TEST_F(DispatcherTest, GivesUpAtTheRetryHorizon) {
  config::Channel c = webhook();
  c.retry_horizon = Millis(10'000);
  Target t = target({c});
  enqueue(t, event(EventType::kStarted));
  Dispatcher d(store_, transport_, {t}, fast(), clock_);
  Outcome last = Outcome::kRetrying;
  int attempts = 0;
  while (last == Outcome::kRetrying && attempts < 50) {
    transport_.push_status(500, "oops");
    auto out = run(d);
    if (out.empty()) {
      clock_.advance(Millis(500));
      continue;
    }
    last = out[0].outcome;
    ++attempts;
  }
  EXPECT_EQ(last, Outcome::kFailed);
  EXPECT_GE(attempts, 3);
  EXPECT_EQ(row(0).status, state::OutboxStatus::kFailed);
  EXPECT_NE(row(0).last_error.find("HTTP 500: oops (gave up"), std::string::npos)
      << row(0).last_error;
  EXPECT_NE(row(0).last_error.find("retry horizon of 10 s"), std::string::npos);
}

TEST_F(DispatcherTest, SecretsNeverReachErrorsLogsOrTheStore) {
  Target t = target({webhook(), slack()});
  enqueue(t, event(EventType::kFailed));
  // Receivers that echo what they got, including the secrets, in errors.
  transport_.push([](const HttpRequest& r) {
    return Result<HttpResponse>(
        HttpResponse{400, "bad request to " + r.url + " key " + kWhsec, ""});
  });
  transport_.push([](const HttpRequest& r) -> Result<HttpResponse> {
    return fail(Errc::kUnavailable, "connect to " + r.url + " failed", true);
  });
  Dispatcher d(store_, transport_, {t}, fast(), clock_);
  auto out = run(d);
  ASSERT_EQ(out.size(), 2u);
  std::string everything = logs_->text();
  for (const auto& o : out) everything += o.detail;
  for (const auto& r : store_.rows())
    everything += r.last_error + r.payload + r.channel + r.event_id;
  for (const char* secret : {kHookUrl, kWhsec, kSlackUrl, "T0KEN-abc123xyz", "XXXXSLACKTOKEN"})
    EXPECT_EQ(everything.find(secret), std::string::npos) << secret << " in: " << everything;
  EXPECT_NE(everything.find("[REDACTED]"), std::string::npos);
}

TEST_F(DispatcherTest, MissingSecretOrBadKeyFailsNamingOnlyTheName) {
  Target t = target({webhook()});
  t.secrets.erase("HOOK_URL");
  enqueue(t, event(EventType::kStarted));
  Dispatcher d(store_, transport_, {t}, fast(), clock_);
  auto out = run(d);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].outcome, Outcome::kFailed);
  EXPECT_EQ(out[0].detail,
            "secret 'HOOK_URL' (url_secret of channel 'hooks') is not in the vault of environment "
            "'production'");
  EXPECT_TRUE(transport_.posts.empty());

  FakeStore other(clock_);
  Target t2 = target({webhook()});
  t2.secrets["HOOK_KEY"] = secrets::Secret("not-a-whsec-key-value");
  state::Batch b;
  b.outbox = fan_out(t2.notifications, event(EventType::kStarted));
  ASSERT_TRUE(other.commit(b));
  Dispatcher d2(other, transport_, {t2}, fast(), clock_);
  auto out2 = d2.run_once();
  ASSERT_TRUE(out2);
  ASSERT_EQ(out2->size(), 1u);
  EXPECT_EQ((*out2)[0].detail, "secret 'HOOK_KEY': signing key does not start with 'whsec_'");
}

TEST_F(DispatcherTest, RowsOfARemovedChannelFail) {
  Target old_config = target({webhook("gone")});
  enqueue(old_config, event(EventType::kStarted));
  Dispatcher d(store_, transport_, {target({webhook()})}, fast(), clock_);
  auto out = run(d);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].outcome, Outcome::kFailed);
  EXPECT_EQ(out[0].detail, "channel 'gone' is no longer configured for environment 'production'");
}

TEST_F(DispatcherTest, OtherEnvironmentsAndForeignLeasesAreLeftAlone) {
  Target staging = target({webhook()}, "staging");
  enqueue(staging, event(EventType::kStarted, "d-s", "staging"));
  Target prod = target({webhook()});
  enqueue(prod, event(EventType::kStarted));
  ASSERT_TRUE(store_.acquire_lock("notify:production", "someone else", "", Millis(60'000)));
  Dispatcher d(store_, transport_, {prod}, fast(), clock_);
  EXPECT_TRUE(run(d).empty());
  EXPECT_TRUE(transport_.posts.empty());
  // The drain looks again until its deadline: the other process (the agent)
  // may send them, or let go of the lease.
  MonoTime t0 = clock_.mono();
  auto report = d.drain(Millis(5000));
  EXPECT_EQ(report.pending, 1);
  EXPECT_GE(clock_.mono() - t0, Millis(5000));
  clock_.advance(Millis(61'000));  // the other lease expired
  Dispatcher d2(store_, transport_, {prod}, fast(), clock_);
  auto out = run(d2);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].environment, "production");
  EXPECT_EQ(row(0).status, state::OutboxStatus::kPending);  // staging's row
  // The lease is held for a pass only: a running dispatcher (the agent's)
  // never keeps a controller from sending between its passes.
  auto between = store_.lock_info("notify:production");
  ASSERT_TRUE(between);
  EXPECT_FALSE(*between) << "the lease outlived the pass";
  d2.stop();
  auto lease = store_.lock_info("notify:production");
  ASSERT_TRUE(lease);
  EXPECT_FALSE(*lease) << "stop() releases the lease";
}

TEST_F(DispatcherTest, AStoreFailureAfterSendingResendsWithTheSameId) {
  Target t = target({webhook()});
  enqueue(t, event(EventType::kStarted));
  Dispatcher d(store_, transport_, {t}, fast(), clock_);
  store_.fail_writes = 1;  // mark_delivered fails
  auto out = run(d);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(row(0).status, state::OutboxStatus::kPending);
  out = run(d);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(row(0).status, state::OutboxStatus::kDelivered);
  ASSERT_EQ(transport_.posts.size(), 2u);
  auto id = [](const HttpRequest& r) {
    for (const auto& [k, v] : r.headers)
      if (k == "webhook-id") return v;
    return std::string();
  };
  EXPECT_EQ(id(transport_.posts[0]), id(transport_.posts[1]));
  EXPECT_NE(logs_->text().find("database is locked"), std::string::npos);
}

TEST_F(DispatcherTest, AStoreReadFailureIsAnErrorNotACrash) {
  Dispatcher d(store_, transport_, {target({webhook()})}, fast(), clock_);
  store_.fail_reads = 1;
  auto r = d.run_once();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kUnavailable);
}

TEST_F(DispatcherTest, SendsMailWithBothPartsToEveryRecipient) {
  Target t = target({email()});
  Event e = event(EventType::kRolledBack);
  e.reason = "p99 latency 2.4x the live release";
  enqueue(t, e);
  Dispatcher d(store_, transport_, {t}, fast(), clock_);
  auto out = run(d);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].outcome, Outcome::kDelivered);
  EXPECT_EQ(out[0].detail, "SMTP accepted for 2 recipient(s)");
  ASSERT_EQ(transport_.mails.size(), 1u);
  const MailRequest& m = transport_.mails[0];
  EXPECT_EQ(m.smtp_url, "smtp://127.0.0.1:2525");
  EXPECT_EQ(m.user, "deploy");
  EXPECT_EQ(m.password.reveal(), kSmtpPassword);
  EXPECT_TRUE(m.require_starttls);
  EXPECT_EQ(m.from, "deploy@example.com");
  EXPECT_EQ(m.to, (std::vector<std::string>{"ops@example.com", "zoe@example.org"}));
  EXPECT_NE(m.message.find("text/plain"), std::string::npos);
  EXPECT_NE(m.message.find("text/html"), std::string::npos);
  EXPECT_NE(m.message.find("Message-ID: <" + row(0).event_id + "@example.com>"), std::string::npos);
  EXPECT_EQ(m.message.find(kSmtpPassword), std::string::npos);
}

TEST_F(DispatcherTest, SmtpRefusalsArePermanentAndTransientsRetry) {
  Target t = target({email()});
  enqueue(t, event(EventType::kStarted));
  enqueue(t, event(EventType::kSucceeded));
  transport_.push_mail([](const MailRequest&) {
    return Status(
        fail(Errc::kUnavailable, "SMTP: Failure when receiving data (server answered 451)", true));
  });
  transport_.push_mail([](const MailRequest&) {
    return Status(fail(Errc::kFailedPrecondition, "SMTP: (server answered 550)", false));
  });
  Dispatcher d(store_, transport_, {t}, fast(), clock_);
  auto out = run(d);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].outcome, Outcome::kRetrying);
  clock_.advance(Millis(1000));
  out = run(d);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].outcome, Outcome::kFailed);
  EXPECT_EQ(out[1].outcome, Outcome::kDelivered);
}

TEST_F(DispatcherTest, DrainDeliversWhatIsDueBeforeTheDeadlineAndLeavesTheRest) {
  Target t = target({webhook("a"), webhook("b")});
  enqueue(t, event(EventType::kStarted));
  // a fails twice, b once; both work within the drain's 30 s.
  transport_.push_status(503);                              // a1
  transport_.push_error(Errc::kUnavailable, "down", true);  // b1
  transport_.push_status(503);                              // a1 again, then 200s
  DispatcherOptions o = fast();
  Dispatcher d(store_, transport_, {t}, o, clock_);
  auto report = d.drain(Millis(30'000));
  int delivered = 0;
  for (const auto& x : report.deliveries) delivered += x.outcome == Outcome::kDelivered;
  EXPECT_EQ(delivered, 2);
  EXPECT_EQ(report.pending, 0);
  EXPECT_EQ(report.failed, 0);
  EXPECT_TRUE(report.store_error.empty());
}

TEST_F(DispatcherTest, DrainStopsAtTheDeadline) {
  Target t = target({webhook()});
  enqueue(t, event(EventType::kStarted));
  for (int i = 0; i < 100; ++i) transport_.push_status(500);
  Dispatcher d(store_, transport_, {t}, fast(), clock_);
  MonoTime start = clock_.mono();
  auto report = d.drain(Millis(10'000));
  EXPECT_LE(clock_.mono() - start, Millis(10'000));
  EXPECT_EQ(report.pending, 1);
  EXPECT_GE(report.deliveries.size(), 2u);
  EXPECT_EQ(row(0).status, state::OutboxStatus::kPending);
}

TEST_F(DispatcherTest, TheThreadDeliversAfterWake) {
  Target t = target({webhook()});
  FakeStore store(real_clock());
  FakeTransport transport;
  DispatcherOptions o = fast();
  o.poll_interval = Millis(60'000);  // only wake() can make it look again in time
  Dispatcher d(store, transport, {t}, o);
  std::atomic<int> seen{0};
  d.on_delivery([&](const Delivery&) { ++seen; });
  d.start();
  d.start();  // not an error
  state::Batch b;
  b.outbox = fan_out(t.notifications, event(EventType::kStarted));
  ASSERT_TRUE(store.commit(b));
  d.wake();
  for (int i = 0; i < 500 && seen == 0; ++i) std::this_thread::sleep_for(Millis(10));
  EXPECT_EQ(seen, 1);
  auto report = d.drain(Millis(1000));
  EXPECT_EQ(report.pending, 0);
  EXPECT_EQ(report.deliveries.size(), 1u);
}

TEST_F(DispatcherTest, AnExceptionInTheThreadIsLoggedAndTheNextPassDelivers) {
  Target t = target({webhook()});
  FakeStore store(real_clock());
  FakeTransport transport;
  transport.push([](const HttpRequest&) -> Result<HttpResponse> {
    throw std::runtime_error("transport blew up");
  });
  DispatcherOptions o = fast();
  o.poll_interval = Millis(20);
  Dispatcher d(store, transport, {t}, o);
  std::atomic<int> seen{0};
  d.on_delivery([&](const Delivery& del) {
    if (del.outcome == Delivery::Outcome::kDelivered) ++seen;
  });
  state::Batch b;
  b.outbox = fan_out(t.notifications, event(EventType::kStarted));
  ASSERT_TRUE(store.commit(b));
  d.start();  // before the fix: std::terminate, the whole test program aborts
  for (int i = 0; i < 1000 && seen == 0; ++i) std::this_thread::sleep_for(Millis(10));
  d.stop();
  EXPECT_EQ(seen, 1);
  EXPECT_GE(transport.posts.size(), 2u);
  bool logged = false;
  for (const auto& l : logs_->lines())
    logged |=
        l.find("notification dispatcher: uncaught exception (continuing): transport blew up") !=
        std::string::npos;
  EXPECT_TRUE(logged);
}

}  // namespace
}  // namespace md::notify
