#include <gtest/gtest.h>

#include "notify/notify.h"
#include "notify/testing.h"

namespace md::notify {
namespace {

using testing::FakeStore;
using testing::FakeTransport;

config::Channel channel(std::string name, std::vector<std::string> events = {},
                        std::vector<std::string> envs = {}) {
  config::Channel c;
  c.name = std::move(name);
  c.kind = config::ChannelKind::kWebhook;
  c.url_secret = "URL";
  c.events = std::move(events);
  c.environments = std::move(envs);
  return c;
}

class OpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_.name = "production";
    env_.app = "meshhook";
    env_.notifications.channels = {channel("slack", {"failed"}), channel("hooks"),
                                   channel("staging-only", {}, {"staging"})};
    secrets_ = {{"URL", secrets::Secret("https://hooks.example.com/secret-token-1")}};
  }
  DispatcherOptions opts() {
    DispatcherOptions o;
    o.initial_backoff = Millis(1000);
    o.seed = 7;
    return o;
  }

  FakeClock clock_;
  FakeStore store_{clock_};
  FakeTransport transport_;
  config::Environment env_;
  secrets::SecretMap secrets_;
};

TEST_F(OpsTest, TestReachesEveryChannelServingTheEnvironmentWhateverItsEventFilter) {
  auto r = send_test(store_, transport_, env_, secrets_, "", "alice", Millis(5000), opts(), clock_);
  ASSERT_TRUE(r) << r.error().what();
  ASSERT_EQ(r->rows.size(), 2u);
  EXPECT_EQ(r->rows[0].channel, "slack");
  EXPECT_EQ(r->rows[1].channel, "hooks");
  EXPECT_TRUE(r->all_delivered());
  EXPECT_EQ(transport_.posts.size(), 2u);
  auto rows = store_.rows();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].event_type, "test");
  auto e = parse_event_json(rows[0].payload);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->actor, "alice");
  EXPECT_EQ(e->trigger, "cli");
  EXPECT_EQ(e->deployment_id.substr(0, 5), "test-");
}

TEST_F(OpsTest, TestOneChannel) {
  auto r =
      send_test(store_, transport_, env_, secrets_, "hooks", "alice", Millis(5000), opts(), clock_);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->rows.size(), 1u);
  EXPECT_EQ(r->rows[0].channel, "hooks");
  EXPECT_EQ(r->rows[0].status, "delivered");
  EXPECT_EQ(r->rows[0].attempts, 1);
}

TEST_F(OpsTest, TestRefusesUnknownOrForeignChannelsAndEmptyConfigs) {
  auto r = send_test(store_, transport_, env_, secrets_, "nope", "a", Millis(0), opts(), clock_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kNotFound);
  EXPECT_EQ(
      r.error().what(),
      "no channel 'nope' in environment 'production'; its channels: slack, hooks, staging-only");
  r = send_test(store_, transport_, env_, secrets_, "staging-only", "a", Millis(0), opts(), clock_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kInvalidArgument);
  env_.notifications.channels.clear();
  r = send_test(store_, transport_, env_, secrets_, "", "a", Millis(0), opts(), clock_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kInvalidArgument);
  EXPECT_TRUE(store_.rows().empty());
}

TEST_F(OpsTest, UndeliveredTestsStayQueuedAndSayWhy) {
  for (int i = 0; i < 3; ++i) transport_.push_error(Errc::kUnavailable, "connect refused", true);
  auto r = send_test(store_, transport_, env_, secrets_, "hooks", "a", Millis(0), opts(), clock_);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->rows.size(), 1u);
  EXPECT_EQ(r->rows[0].status, "pending");
  EXPECT_EQ(r->rows[0].attempts, 1);
  EXPECT_EQ(r->rows[0].last_error, "connect refused");
  EXPECT_FALSE(r->all_delivered());
  // A second test waits behind the first (order per channel).
  clock_.advance(Millis(10));
  auto r2 = send_test(store_, transport_, env_, secrets_, "hooks", "a", Millis(0), opts(), clock_);
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->rows[0].status, "pending");
  EXPECT_EQ(r2->rows[0].attempts, 0);
  EXPECT_EQ(r2->rows[0].waiting_behind, 1);
  auto out = outstanding(store_, "production");
  ASSERT_TRUE(out);
  EXPECT_EQ(out->size(), 2u);
  // Later, one run sends both, oldest first.
  auto r3 =
      send_test(store_, transport_, env_, secrets_, "hooks", "a", Millis(60'000), opts(), clock_);
  ASSERT_TRUE(r3);
  EXPECT_TRUE(r3->all_delivered());
  EXPECT_EQ(r3->other_delivered, 2);
  EXPECT_TRUE(outstanding(store_, "")->empty());
}

// The docs promise `notify test` delivers "with everything queued before it":
// four earlier events in backoff go first, in order, then the test — the
// test never overtakes them, nor waits an hour behind them.
TEST_F(OpsTest, TestGoesAfterEverythingQueuedBeforeItAndSendsThatNow) {
  for (int i = 0; i < 4; ++i) transport_.push_error(Errc::kUnavailable, "connect refused", true);
  for (int i = 0; i < 4; ++i) {
    auto r = send_test(store_, transport_, env_, secrets_, "hooks", "a", Millis(0), opts(), clock_);
    ASSERT_TRUE(r);
    clock_.advance(Millis(10));
  }
  // The first row failed once and waits for its retry; push it an hour away.
  auto queued = outstanding(store_, "production");
  ASSERT_TRUE(queued);
  ASSERT_EQ(queued->size(), 4u);
  for (const auto& row : *queued)
    ASSERT_TRUE(store_.mark_attempt_failed(row.id, "connect refused",
                                           clock_.now() + Millis(3'600'000), false));
  size_t before = transport_.posts.size();
  auto r =
      send_test(store_, transport_, env_, secrets_, "hooks", "a", Millis(5000), opts(), clock_);
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_TRUE(r->all_delivered());
  EXPECT_EQ(r->other_delivered, 4);
  ASSERT_EQ(transport_.posts.size(), before + 5);
  std::vector<std::string> ids;
  for (size_t i = before; i < transport_.posts.size(); ++i)
    for (const auto& [k, v] : transport_.posts[i].headers)
      if (k == "webhook-id") ids.push_back(v);
  std::vector<std::string> want;
  for (const auto& row : *queued) want.push_back(row.event_id);
  want.push_back(r->rows[0].event_id);
  EXPECT_EQ(ids, want);
  EXPECT_TRUE(outstanding(store_, "")->empty());
}

TEST_F(OpsTest, RetryPutsAFailedRowBackAndSendsIt) {
  transport_.push_status(410, "gone");
  auto r = send_test(store_, transport_, env_, secrets_, "hooks", "a", Millis(0), opts(), clock_);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->rows[0].status, "failed");
  EXPECT_EQ(r->rows[0].last_error, "HTTP 410: gone");
  int64_t id = r->rows[0].id;

  auto by_event = find_row(store_, r->rows[0].event_id);
  ASSERT_TRUE(by_event);
  EXPECT_EQ(by_event->id, id);

  auto again =
      retry(store_, transport_, env_, secrets_, std::to_string(id), Millis(5000), opts(), clock_);
  ASSERT_TRUE(again) << again.error().what();
  EXPECT_TRUE(again->all_delivered());
  EXPECT_EQ(again->rows[0].attempts, 2);

  auto done =
      retry(store_, transport_, env_, secrets_, std::to_string(id), Millis(0), opts(), clock_);
  ASSERT_FALSE(done);
  EXPECT_EQ(done.error().code(), Errc::kFailedPrecondition);
}

TEST_F(OpsTest, RetryRefusesUnknownIdsAndOtherEnvironments) {
  auto r = retry(store_, transport_, env_, secrets_, "42", Millis(0), opts(), clock_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kNotFound);
  r = retry(store_, transport_, env_, secrets_, "delete-all", Millis(0), opts(), clock_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kInvalidArgument);
  r = retry(store_, transport_, env_, secrets_, "99999999999999999999999", Millis(0), opts(),
            clock_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kNotFound);

  transport_.push_status(404);
  ASSERT_TRUE(
      send_test(store_, transport_, env_, secrets_, "hooks", "a", Millis(0), opts(), clock_));
  config::Environment staging = env_;
  staging.name = "staging";
  r = retry(store_, transport_, staging, secrets_, "1", Millis(0), opts(), clock_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().what(), "delivery 1 belongs to environment 'production', not 'staging'");
}

}  // namespace
}  // namespace md::notify
