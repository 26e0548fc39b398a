// The hand-off to the agent: its JSON form, the secrets it carries, and the
// Courier sending from a real SQLite store until stopped, across a restart.
#include "notify/courier.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "core/fs.h"
#include "notify/testing.h"

namespace md::notify {
namespace {

namespace stdfs = std::filesystem;

Handoff sample(const stdfs::path& dir) {
  config::Channel hook;
  hook.name = "hooks";
  hook.kind = config::ChannelKind::kWebhook;
  hook.url_secret = "HOOK_URL";
  hook.signing_secrets = {"HOOK_KEY"};
  hook.events = {"failed"};
  hook.timeout = Millis(2000);
  config::Channel mail;
  mail.name = "mail";
  mail.kind = config::ChannelKind::kEmail;
  mail.smtp_url = "smtp://127.0.0.1:2525";
  mail.smtp_user = "deploy";
  mail.smtp_password_secret = "SMTP_PASSWORD";
  mail.starttls = false;
  mail.from = "d@example.com";
  mail.to = {"ops@example.com"};
  mail.environments = {"production"};
  mail.retry_horizon = Millis(3'600'000);
  Handoff h;
  h.store_url = (dir / "state.db").string();
  h.target.environment = "production";
  h.target.notifications.channels = {hook, mail};
  h.target.notifications.dashboard_url = "https://deploy.example.com/{environment}";
  secrets::SecretMap all = {{"HOOK_URL", secrets::Secret("http://127.0.0.1:1/in/tok-1234")},
                            {"HOOK_KEY", secrets::Secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")},
                            {"SMTP_PASSWORD", secrets::Secret("pw-123456")},
                            {"DATABASE_URL", secrets::Secret("postgres://app:pw@db/app")}};
  h.target.secrets = channel_secrets(h.target.notifications, all);
  return h;
}

class CourierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (stdfs::temp_directory_path() / "md-courier-XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data());
  }
  void TearDown() override { stdfs::remove_all(dir_); }
  stdfs::path dir_;
};

TEST_F(CourierTest, HandoffCarriesOnlyTheChannelSecretsAndRoundTrips) {
  Handoff h = sample(dir_);
  EXPECT_EQ(h.target.secrets.size(), 3u);
  EXPECT_FALSE(h.target.secrets.count("DATABASE_URL")) << "an app secret went to the agent";
  std::string text = handoff_json(h);
  auto back = parse_handoff(text);
  ASSERT_TRUE(back) << back.error().what();
  EXPECT_EQ(handoff_json(*back), text);
  EXPECT_EQ(back->target.notifications.channels[1].retry_horizon, Millis(3'600'000));
  EXPECT_FALSE(back->target.notifications.channels[1].starttls);
  EXPECT_EQ(back->target.secrets.at("SMTP_PASSWORD").reveal(), "pw-123456");
}

TEST_F(CourierTest, MalformedHandoffsAreRefusedWithoutEchoingThem) {
  EXPECT_FALSE(parse_handoff("not json"));
  std::string text = handoff_json(sample(dir_));
  auto bad_env = text;
  const std::string field = "\"environment\":\"production\"";
  ASSERT_NE(bad_env.find(field), std::string::npos) << bad_env;
  bad_env.replace(bad_env.find(field), field.size(), "\"environment\":\"../etc\"");
  auto r = parse_handoff(bad_env);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(r.error().what().find("whsec_"), std::string::npos);
}

// A row committed after the hand-off is sent by the Courier on its own, with
// no other call (here after its short idle interval; an agent's is the lease
// TTL); a new Courier on the same folder (an agent restart) sends the next
// one. The saved hand-off is private.
TEST_F(CourierTest, SendsOnItsOwnUntilStoppedAndAgainAfterARestart) {
  Handoff h = sample(dir_);
  testing::FakeTransport transport;
  DispatcherOptions o;
  o.poll_interval = Millis(20);
  o.idle_interval = Millis(200);
  auto commit = [&](const std::string& deployment) {
    auto store = state::open_store(h.store_url);
    ASSERT_TRUE(store);
    Event e;
    e.type = EventType::kFailed;
    e.environment = "production";
    e.deployment_id = deployment;
    e.at = real_clock().now();
    state::Batch b;
    b.outbox = fan_out(h.target.notifications, e);
    ASSERT_EQ(b.outbox.size(), 2u);
    ASSERT_TRUE((*store)->commit(b));
  };
  // Each event goes to both channels: a webhook post and a mail.
  auto wait_posts = [&](size_t n) {
    MonoTime deadline = real_clock().mono() + Millis(20'000);
    while ((transport.post_count() < n || transport.mail_count() < n) &&
           real_clock().mono() < deadline)
      real_clock().sleep_for(Millis(10));
    return std::min(transport.post_count(), transport.mail_count());
  };
  {
    Courier c(dir_ / "notify", transport, o);
    ASSERT_TRUE(c.accept(h));
    EXPECT_EQ(c.environments(), std::vector<std::string>{"production"});
    commit("d-1");
    EXPECT_EQ(wait_posts(1), 1u);
  }
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "notify").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(::stat((dir_ / "notify" / "production.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  commit("d-2");
  Courier again(dir_ / "notify", transport, o);
  again.load();
  EXPECT_EQ(again.environments(), std::vector<std::string>{"production"});
  EXPECT_EQ(wait_posts(2), 2u);
  again.stop();
  auto store = state::open_store(h.store_url);
  ASSERT_TRUE(store);
  auto pending = (*store)->events(state::OutboxStatus::kPending, 0);
  ASSERT_TRUE(pending);
  for (const auto& r : *pending) ADD_FAILURE() << r.channel << " still pending: " << r.last_error;
  EXPECT_EQ(transport.mail_count(), 2u);
}

// An idle Courier does not look at the outbox every poll_interval: a row
// committed without a hand-off waits (the idle interval is long), and the
// same hand-off again, as a command sends when it ends, sends it at once.
TEST_F(CourierTest, IdleItSleepsUntilTheNextHandoff) {
  Handoff h = sample(dir_);
  testing::FakeTransport transport;
  DispatcherOptions o;
  o.poll_interval = Millis(20);
  o.idle_interval = Millis(600'000);
  Courier c(dir_ / "notify", transport, o);
  ASSERT_TRUE(c.accept(h));
  {
    auto store = state::open_store(h.store_url);
    ASSERT_TRUE(store);
    Event e;
    e.type = EventType::kFailed;
    e.environment = "production";
    e.deployment_id = "d-1";
    e.at = real_clock().now();
    state::Batch b;
    b.outbox = fan_out(h.target.notifications, e);
    ASSERT_TRUE((*store)->commit(b));
  }
  // WHY a fixed pause: it checks that nothing happens; 25 of the old polls.
  real_clock().sleep_for(Millis(500));
  EXPECT_EQ(transport.post_count(), 0u) << "the idle Courier polled the outbox";
  ASSERT_TRUE(c.accept(h));  // identical: wakes the sender
  MonoTime deadline = real_clock().mono() + Millis(20'000);
  while ((transport.post_count() < 1 || transport.mail_count() < 1) &&
         real_clock().mono() < deadline)
    real_clock().sleep_for(Millis(10));
  EXPECT_EQ(transport.post_count(), 1u);
  EXPECT_EQ(transport.mail_count(), 1u);
}

}  // namespace
}  // namespace md::notify
