#include <gtest/gtest.h>

#include "notify/notify.h"

namespace md::notify {
namespace {

config::Channel channel(std::string name, std::vector<std::string> events = {},
                        std::vector<std::string> envs = {}) {
  config::Channel c;
  c.name = std::move(name);
  c.events = std::move(events);
  c.environments = std::move(envs);
  return c;
}

Event deploy_event(EventType t) {
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
  e.status = "running";
  e.at = from_unix_ms(1'790'000'000'123);
  return e;
}

TEST(EventType, NamesRoundTrip) {
  for (EventType t : all_event_types()) EXPECT_EQ(parse_event_type(event_type_name(t)), t);
  EXPECT_EQ(event_type_name(EventType::kRolledBack), "rolled_back");
  EXPECT_EQ(event_type_name(EventType::kApprovalNeeded), "approval_needed");
  EXPECT_FALSE(parse_event_type("rollback"));
  EXPECT_EQ(all_event_types().size(), 7u);
}

TEST(EventId, StablePerEventAndChannel) {
  Event e = deploy_event(EventType::kSucceeded);
  std::string id = event_id(e, "slack");
  EXPECT_EQ(id.size(), 4u + 24u);
  EXPECT_EQ(id.substr(0, 4), "evt_");
  EXPECT_EQ(id, event_id(e, "slack"));
  Event later = e;  // same event recomputed after a resume: other time, duration
  later.at += Millis(5000);
  later.duration = Millis(1);
  later.reason = "x";
  EXPECT_EQ(event_id(later, "slack"), id);
  EXPECT_NE(event_id(e, "hooks"), id);
  Event other = e;
  other.type = EventType::kStarted;
  EXPECT_NE(event_id(other, "slack"), id);
  other = e;
  other.deployment_id = "d-2";
  EXPECT_NE(event_id(other, "slack"), id);
  other = e;
  other.key = "2";
  EXPECT_NE(event_id(other, "slack"), id);
}

TEST(EventId, CanaryStepsDifferByWeightAndZeroIsNotAbsent) {
  Event a = deploy_event(EventType::kCanaryStep);
  a.canary_weight = 5;
  Event b = a;
  b.canary_weight = 25;
  EXPECT_NE(event_id(a, "c"), event_id(b, "c"));
  Event zero = a, none = a;
  zero.canary_weight = 0;
  none.canary_weight.reset();
  EXPECT_NE(event_id(zero, "c"), event_id(none, "c"));
}

TEST(EventId, FieldBoundariesMatter) {
  Event a = deploy_event(EventType::kTest), b = a;
  a.deployment_id = "d-1";
  a.key = "";
  b.deployment_id = "d-";
  b.key = "1";
  EXPECT_NE(event_id(a, "x"), event_id(b, "x"));
}

TEST(Wants, FiltersByEventAndEnvironment) {
  EXPECT_TRUE(wants(channel("all"), EventType::kStarted, "staging"));
  auto failures = channel("f", {"failed", "rolled_back"});
  EXPECT_TRUE(wants(failures, EventType::kFailed, "production"));
  EXPECT_TRUE(wants(failures, EventType::kRolledBack, "production"));
  EXPECT_FALSE(wants(failures, EventType::kSucceeded, "production"));
  auto prod = channel("p", {}, {"production"});
  EXPECT_TRUE(wants(prod, EventType::kSucceeded, "production"));
  EXPECT_FALSE(wants(prod, EventType::kSucceeded, "staging"));
}

TEST(Wants, TestEventsPassEventFiltersButNotEnvironmentFilters) {
  EXPECT_TRUE(wants(channel("f", {"failed"}), EventType::kTest, "production"));
  EXPECT_FALSE(wants(channel("p", {"failed"}, {"production"}), EventType::kTest, "staging"));
}

TEST(FanOut, OneRowPerInterestedChannelInChannelOrder) {
  config::Notifications n;
  n.channels = {channel("slack"), channel("failures", {"failed"}),
                channel("staging", {}, {"staging"}),
                channel("hooks", {"succeeded", "failed"}, {"production"})};
  Event e = deploy_event(EventType::kSucceeded);
  auto rows = fan_out(n, e);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].channel, "slack");
  EXPECT_EQ(rows[1].channel, "hooks");
  for (const auto& r : rows) {
    EXPECT_EQ(r.event_id, event_id(e, r.channel));
    EXPECT_EQ(r.environment, "production");
    EXPECT_EQ(r.event_type, "succeeded");
    EXPECT_EQ(r.payload, event_json(e));
    EXPECT_EQ(r.status, state::OutboxStatus::kPending);
    EXPECT_EQ(r.created_at, e.at);
    EXPECT_EQ(r.next_attempt_at, SysTime{});
    EXPECT_EQ(r.attempts, 0);
    EXPECT_EQ(r.id, 0);
  }
  EXPECT_TRUE(fan_out(config::Notifications{}, e).empty());
}

TEST(FanOut, RowsCarryNoSecretValuesOnlyNames) {
  config::Notifications n;
  auto c = channel("hooks");
  c.url_secret = "HOOK_URL";
  c.signing_secrets = {"HOOK_KEY"};
  n.channels = {c};
  auto rows = fan_out(n, deploy_event(EventType::kFailed));
  ASSERT_EQ(rows.size(), 1u);
  // Names are not even needed in the row: the channel name resolves them.
  EXPECT_EQ(rows[0].payload.find("HOOK_URL"), std::string::npos);
}

TEST(EventJson, RoundTripsEveryField) {
  Event e = deploy_event(EventType::kCanaryStep);
  e.canary_weight = 25;
  e.reason = "p99 \"1200 ms\"\nabove 2x";
  e.key = "k";
  e.hosts = {"h1", "h2"};
  auto back = parse_event_json(event_json(e));
  ASSERT_TRUE(back) << back.error().what();
  EXPECT_EQ(back->type, e.type);
  EXPECT_EQ(back->environment, e.environment);
  EXPECT_EQ(back->app, e.app);
  EXPECT_EQ(back->version, e.version);
  EXPECT_EQ(back->previous_version, e.previous_version);
  EXPECT_EQ(back->deployment_id, e.deployment_id);
  EXPECT_EQ(back->actor, e.actor);
  EXPECT_EQ(back->trigger, e.trigger);
  EXPECT_EQ(back->strategy, e.strategy);
  EXPECT_EQ(back->hosts, e.hosts);
  EXPECT_EQ(back->duration, e.duration);
  EXPECT_EQ(back->status, e.status);
  EXPECT_EQ(back->reason, e.reason);
  EXPECT_EQ(back->canary_weight, e.canary_weight);
  EXPECT_EQ(back->at, e.at);
  EXPECT_EQ(back->key, e.key);
}

TEST(EventJson, OptionalFieldsStayAbsent) {
  Event e = deploy_event(EventType::kStarted);
  e.duration.reset();
  auto back = parse_event_json(event_json(e));
  ASSERT_TRUE(back);
  EXPECT_FALSE(back->duration);
  EXPECT_FALSE(back->canary_weight);
}

TEST(EventJson, InvalidUtf8IsReplacedNotFatal) {
  Event e = deploy_event(EventType::kFailed);
  e.reason = "bad \xff byte";
  auto back = parse_event_json(event_json(e));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->reason, "bad \xEF\xBF\xBD byte");
}

TEST(EventJson, RejectsWhatItDidNotWrite) {
  for (const char* bad :
       {"", "[]", "{", R"({"type":"nope"})", R"({"type":"failed","version":3})",
        R"({"type":"failed","canary_weight":101})", R"({"type":"failed","duration_ms":"5"})"}) {
    auto r = parse_event_json(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), Errc::kInvalidArgument);
  }
}

}  // namespace
}  // namespace md::notify
