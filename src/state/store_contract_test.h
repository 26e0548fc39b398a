// The Store contract as one typed suite, every behaviour of state.h, for any
// backend type B (state_test_util.h: set_up, tear_down, url, open, schema,
// raw). Instantiated for SQLite and Postgres in state_test.cc and for the
// store an agent serves in agent/state_store_test.cc.
#pragma once

#include <gtest/gtest.h>

#include "state/state.h"
#include "state/state_test_util.h"

namespace md::state::contract {

template <class B>
class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    backend_.set_up();
    auto s = backend_.open(clock_, backend_.schema());
    ASSERT_TRUE(s) << s.error().what();
    store_ = std::move(*s);
  }
  void TearDown() override {
    store_.reset();
    backend_.tear_down();
  }

  Deployment deployment(const std::string& id, const std::string& env = "production") {
    Deployment d;
    d.id = id;
    d.environment = env;
    d.version = "v2";
    d.previous_version = "v1";
    d.strategy = "canary";
    d.actor = "ana@ci";
    d.trigger = "ci";
    d.started_at = clock_.now();
    return d;
  }
  void commit(const Batch& b) {
    auto st = store_->commit(b);
    ASSERT_TRUE(st) << st.error().what();
  }

  B backend_;
  FakeClock clock_;
  std::unique_ptr<Store> store_;
};

TYPED_TEST_SUITE_P(StoreTest);

TYPED_TEST_P(StoreTest, DeploymentRoundTripsEveryField) {
  Deployment d = this->deployment("d-1");
  d.kind = "rollback";
  d.reason = "manual";
  this->commit({.upsert_deployment = d});
  auto got = this->store_->deployment("d-1");
  ASSERT_TRUE(got) << got.error().what();
  EXPECT_EQ(got->environment, "production");
  EXPECT_EQ(got->kind, "rollback");
  EXPECT_EQ(got->version, "v2");
  EXPECT_EQ(got->previous_version, "v1");
  EXPECT_EQ(got->strategy, "canary");
  EXPECT_EQ(got->actor, "ana@ci");
  EXPECT_EQ(got->trigger, "ci");
  EXPECT_EQ(got->reason, "manual");
  EXPECT_EQ(got->status, DeployStatus::kRunning);
  EXPECT_EQ(got->started_at, this->clock_.now());
  EXPECT_FALSE(got->finished_at);

  this->clock_.advance(Millis(1234));
  d.status = DeployStatus::kSucceeded;
  d.finished_at = this->clock_.now();
  this->commit({.upsert_deployment = d});
  got = this->store_->deployment("d-1");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status, DeployStatus::kSucceeded);
  ASSERT_TRUE(got->finished_at);
  EXPECT_EQ(*got->finished_at, this->clock_.now());

  auto missing = this->store_->deployment("d-404");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Errc::kNotFound);
}

TYPED_TEST_P(StoreTest, DeploymentsNewestFirstFilteredAndLimited) {
  for (int i = 1; i <= 3; ++i) {
    this->commit({.upsert_deployment = this->deployment("p-" + std::to_string(i))});
    this->commit({.upsert_deployment = this->deployment("s-" + std::to_string(i), "staging")});
    this->clock_.advance(Millis(1000));
  }
  auto prod = this->store_->deployments("production", 10);
  ASSERT_TRUE(prod);
  ASSERT_EQ(prod->size(), 3u);
  EXPECT_EQ((*prod)[0].id, "p-3");
  EXPECT_EQ((*prod)[2].id, "p-1");
  auto two = this->store_->deployments("", 2);
  ASSERT_TRUE(two);
  ASSERT_EQ(two->size(), 2u);
  EXPECT_EQ((*two)[0].id, "s-3");  // same time as p-3: id breaks the tie
  EXPECT_EQ((*two)[1].id, "p-3");
  auto all = this->store_->deployments("", 0);
  ASSERT_TRUE(all);
  EXPECT_EQ(all->size(), 6u);
}

TYPED_TEST_P(StoreTest, RunningIsTheRunningDeploymentOfThatEnvironment) {
  auto none = this->store_->running("production");
  ASSERT_TRUE(none);
  EXPECT_FALSE(*none);
  Deployment done = this->deployment("d-1");
  done.status = DeployStatus::kFailed;
  this->commit({.upsert_deployment = done});
  this->commit({.upsert_deployment = this->deployment("d-2")});
  this->commit({.upsert_deployment = this->deployment("d-3", "staging")});
  auto r = this->store_->running("production");
  ASSERT_TRUE(r);
  ASSERT_TRUE(*r);
  EXPECT_EQ((*r)->id, "d-2");
}

TYPED_TEST_P(StoreTest, JournalSequenceIsAssignedPerDeployment) {
  Batch b{.upsert_deployment = this->deployment("d-1")};
  b.journal.push_back({0, "d-1", "migrate_expand", "intent", "", "", {}});
  this->commit(b);
  this->clock_.advance(Millis(5));
  this->commit(
      {.journal = {{99, "d-1", "migrate_expand", "outcome", "ok", R"({"applied":2})", {}}}});
  this->commit({.upsert_deployment = this->deployment("d-2")});
  this->commit({.journal = {{0, "d-2", "ship", "intent", "", "{}", {}}}});
  auto j = this->store_->journal("d-1");
  ASSERT_TRUE(j) << j.error().what();
  ASSERT_EQ(j->size(), 2u);
  EXPECT_EQ((*j)[0].seq, 1);
  EXPECT_EQ((*j)[0].phase, "intent");
  EXPECT_EQ((*j)[0].detail, "{}");
  EXPECT_EQ((*j)[1].seq, 2);
  EXPECT_EQ((*j)[1].outcome, "ok");
  EXPECT_EQ((*j)[1].detail, R"({"applied":2})");
  EXPECT_EQ((*j)[1].at - (*j)[0].at, Millis(5));
  auto j2 = this->store_->journal("d-2");
  ASSERT_TRUE(j2);
  ASSERT_EQ(j2->size(), 1u);
  EXPECT_EQ((*j2)[0].seq, 1);
}

TYPED_TEST_P(StoreTest, BadBatchWritesNothing) {
  // Rejected before the database: detail is not a JSON object.
  Batch bad{.upsert_deployment = this->deployment("d-1")};
  bad.journal.push_back({0, "d-1", "ship", "intent", "", "not json", {}});
  auto st = this->store_->commit(bad);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(this->store_->deployment("d-1").error().code(), Errc::kNotFound);

  // Rejected by the database half-way: the journal names an unknown deployment.
  Batch half{.upsert_deployment = this->deployment("d-2")};
  half.audit.push_back({0, {}, "ana", "deploy.start", "production", "v2", ""});
  half.journal.push_back({0, "d-unknown", "ship", "intent", "", "", {}});
  st = this->store_->commit(half);
  ASSERT_FALSE(st);
  EXPECT_EQ(this->store_->deployment("d-2").error().code(), Errc::kNotFound);
  auto audit = this->store_->audit("", 0);
  ASSERT_TRUE(audit);
  EXPECT_TRUE(audit->empty());

  for (auto [phase, outcome] :
       {std::pair{"intent", "ok"}, {"outcome", ""}, {"outcome", "maybe"}, {"later", ""}}) {
    Batch b{.upsert_deployment = this->deployment("d-3")};
    b.journal.push_back({0, "d-3", "ship", phase, outcome, "", {}});
    auto r = this->store_->commit(b);
    ASSERT_FALSE(r) << phase << "/" << outcome;
    EXPECT_EQ(r.error().code(), Errc::kInvalidArgument);
  }
}

TYPED_TEST_P(StoreTest, ReleasesUpsertKeepsCreationTime) {
  SysTime t0 = this->clock_.now();
  this->commit({.upsert_releases = {{"production", "v1", "aa", "live", {}, {}}}});
  this->clock_.advance(Millis(60000));
  this->commit({.upsert_releases = {{"production", "v1", "aa", "warm", {}, {}},
                                    {"production", "v2", "bb", "live", {}, {}},
                                    {"staging", "v9", "cc", "live", {}, {}}}});
  auto r = this->store_->releases("production");
  ASSERT_TRUE(r) << r.error().what();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].version, "v2");
  EXPECT_EQ((*r)[1].version, "v1");
  EXPECT_EQ((*r)[1].state, "warm");
  EXPECT_EQ((*r)[1].created_at, t0);
  EXPECT_EQ((*r)[1].updated_at, this->clock_.now());
  EXPECT_EQ((*r)[1].artifact_sha256, "aa");
  // A state change that does not know the artifact keeps the recorded one.
  this->commit({.upsert_releases = {{"production", "v1", "", "stopped", {}, {}}}});
  r = this->store_->releases("production");
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ((*r)[1].state, "stopped");
  EXPECT_EQ((*r)[1].artifact_sha256, "aa");
}

TYPED_TEST_P(StoreTest, AuditIsAppendOnly) {
  this->commit({.audit = {{0, {}, "ana@laptop", "secrets.set", "production", "DATABASE_URL", ""},
                          {0, {}, "ci", "deploy.start", "staging", "v2", R"({"n":1})"}}});
  this->commit({.audit = {{0, {}, "bo@laptop", "secrets.rm", "production", "OLD", ""}}});
  auto all = this->store_->audit("", 10);
  ASSERT_TRUE(all) << all.error().what();
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].action, "secrets.rm");  // newest first
  EXPECT_GT((*all)[0].id, (*all)[1].id);
  auto prod = this->store_->audit("production", 10);
  ASSERT_TRUE(prod);
  ASSERT_EQ(prod->size(), 2u);
  EXPECT_EQ((*prod)[1].target, "DATABASE_URL");
  EXPECT_EQ((*prod)[1].actor, "ana@laptop");
  EXPECT_EQ((*prod)[1].detail, "{}");
  EXPECT_EQ((*prod)[1].at, this->clock_.now());

  // Not even another program with SQL access can rewrite history.
  EXPECT_FALSE(this->backend_.raw("UPDATE audit_log SET actor = 'mallory'"));
  EXPECT_FALSE(this->backend_.raw("DELETE FROM audit_log"));
  auto again = this->store_->audit("", 10);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->size(), 3u);
  EXPECT_EQ((*again)[2].actor, "ana@laptop");
}

TYPED_TEST_P(StoreTest, LockIsALeaseWithTakeover) {
  Store& s = *this->store_;
  auto a = s.acquire_lock("production", "ana@laptop pid 1", "d-1", Millis(30000));
  ASSERT_TRUE(a) << a.error().what();
  EXPECT_EQ(a->holder, "ana@laptop pid 1");
  EXPECT_EQ(a->expires_at, this->clock_.now() + Millis(30000));
  SysTime since = this->clock_.now();

  this->clock_.advance(Millis(10000));
  auto b = s.acquire_lock("production", "bo@ci pid 2", "d-2", Millis(30000));
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().code(), Errc::kConflict);
  EXPECT_EQ(b.error().message(),
            "environment production is locked by ana@laptop pid 1 "
            "(deployment d-1) since " +
                format_time(since));
  // Other environments are independent.
  ASSERT_TRUE(s.acquire_lock("staging", "bo@ci pid 2", "d-3", Millis(30000)));

  // The holder renews, re-acquiring keeps acquired_at.
  ASSERT_TRUE(s.renew_lock("production", "ana@laptop pid 1", Millis(30000)));
  auto again = s.acquire_lock("production", "ana@laptop pid 1", "d-1", Millis(30000));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->acquired_at, since);
  auto info = s.lock_info("production");
  ASSERT_TRUE(info);
  ASSERT_TRUE(*info);
  EXPECT_EQ((*info)->deployment_id, "d-1");
  EXPECT_EQ((*info)->expires_at, this->clock_.now() + Millis(30000));

  // Expired: anyone may take it over; the old holder's renew fails.
  this->clock_.advance(Millis(30001));
  auto none = s.lock_info("production");
  ASSERT_TRUE(none);
  EXPECT_FALSE(*none);
  auto taken = s.acquire_lock("production", "bo@ci pid 2", "d-2", Millis(30000));
  ASSERT_TRUE(taken) << taken.error().what();
  EXPECT_EQ(taken->acquired_at, this->clock_.now());
  auto lost = s.renew_lock("production", "ana@laptop pid 1", Millis(30000));
  ASSERT_FALSE(lost);
  EXPECT_EQ(lost.error().code(), Errc::kConflict);
  EXPECT_NE(lost.error().message().find("locked by bo@ci pid 2 (deployment d-2)"),
            std::string::npos);

  // Releasing someone else's lock is a no-op; releasing one's own frees it.
  ASSERT_TRUE(s.release_lock("production", "ana@laptop pid 1"));
  EXPECT_FALSE(s.acquire_lock("production", "cy", "d-4", Millis(1000)));
  ASSERT_TRUE(s.release_lock("production", "bo@ci pid 2"));
  auto renew_released = s.renew_lock("production", "bo@ci pid 2", Millis(1000));
  ASSERT_FALSE(renew_released);
  EXPECT_EQ(renew_released.error().code(), Errc::kConflict);
  ASSERT_TRUE(s.acquire_lock("production", "cy", "d-4", Millis(1000)));

  // An expired lease nobody took is still renewable by its holder.
  this->clock_.advance(Millis(5000));
  ASSERT_TRUE(s.renew_lock("production", "cy", Millis(1000)));
  EXPECT_FALSE(s.acquire_lock("production", "dee", "d-5", Millis(1000)));
}

TYPED_TEST_P(StoreTest, LockArgumentsAreChecked) {
  EXPECT_EQ(this->store_->acquire_lock("production", "", "d", Millis(1000)).error().code(),
            Errc::kInvalidArgument);
  EXPECT_EQ(this->store_->acquire_lock("production", "a", "d", Millis(0)).error().code(),
            Errc::kInvalidArgument);
}

TYPED_TEST_P(StoreTest, OutboxDeliveryLifecycle) {
  Store& s = *this->store_;
  OutboxEvent e1{.event_id = "e-1",
                 .channel = "slack",
                 .environment = "production",
                 .event_type = "started",
                 .payload = R"({"text":"hi"})"};
  OutboxEvent e2 = e1;
  e2.event_id = "";
  e2.channel = "hook";
  e2.next_attempt_at = this->clock_.now() + Millis(60000);
  this->commit({.outbox = {e1, e2}});
  this->commit({.outbox = {e1}});  // the same event again: no duplicate

  auto all = s.events(std::nullopt, 10);
  ASSERT_TRUE(all) << all.error().what();
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].channel, "hook");  // newest first
  EXPECT_TRUE((*all)[0].event_id.starts_with("evt_"));
  EXPECT_EQ((*all)[0].event_id.size(), 28u);

  auto due = s.due_events(this->clock_.now(), 10);
  ASSERT_TRUE(due);
  ASSERT_EQ(due->size(), 1u);
  const OutboxEvent d = (*due)[0];  // a copy: `due` is reassigned below
  EXPECT_EQ(d.event_id, "e-1");
  EXPECT_EQ(d.payload, R"({"text":"hi"})");
  EXPECT_EQ(d.status, OutboxStatus::kPending);
  EXPECT_EQ(d.attempts, 0);

  // A failed attempt reschedules; a permanent one gives up.
  SysTime later = this->clock_.now() + Millis(5000);
  ASSERT_TRUE(s.mark_attempt_failed(d.id, "HTTP 503", later, false));
  EXPECT_TRUE(s.due_events(this->clock_.now(), 10)->empty());
  due = s.due_events(later, 10);
  ASSERT_EQ(due->size(), 1u);
  EXPECT_EQ((*due)[0].attempts, 1);
  EXPECT_EQ((*due)[0].last_error, "HTTP 503");
  EXPECT_EQ((*due)[0].next_attempt_at, later);
  auto perm = s.mark_attempt_failed(d.id, "HTTP 410", later, true);
  ASSERT_TRUE(perm) << perm.error().what();
  auto failed = s.events(OutboxStatus::kFailed, 10);
  ASSERT_TRUE(failed);
  ASSERT_EQ(failed->size(), 1u);
  EXPECT_EQ((*failed)[0].attempts, 2);
  EXPECT_TRUE(s.due_events(later + Millis(600000), 10)->size() == 1u);  // only e2

  // Retried by hand: due now; then delivered.
  ASSERT_TRUE(s.retry_event(d.id));
  due = s.due_events(this->clock_.now(), 10);
  ASSERT_EQ(due->size(), 1u);
  ASSERT_TRUE(s.mark_delivered(d.id));
  auto delivered = s.events(OutboxStatus::kDelivered, 10);
  ASSERT_EQ(delivered->size(), 1u);
  EXPECT_EQ((*delivered)[0].attempts, 3);
  EXPECT_TRUE(s.due_events(this->clock_.now(), 10)->empty());

  EXPECT_EQ(s.mark_delivered(424242).error().code(), Errc::kNotFound);
  EXPECT_EQ(s.retry_event(424242).error().code(), Errc::kNotFound);
  EXPECT_EQ(s.mark_attempt_failed(424242, "x", later, false).error().code(), Errc::kNotFound);
}

TYPED_TEST_P(StoreTest, DueEventsOldestFirstWithLimit) {
  for (int i = 0; i < 5; ++i) {
    OutboxEvent e{.event_id = "e-" + std::to_string(i), .channel = "c", .event_type = "test"};
    e.next_attempt_at = this->clock_.now() - Millis(1000 * i);
    this->commit({.outbox = {e}});
  }
  auto due = this->store_->due_events(this->clock_.now(), 3);
  ASSERT_TRUE(due);
  ASSERT_EQ(due->size(), 3u);
  EXPECT_EQ((*due)[0].event_id, "e-4");
  EXPECT_EQ((*due)[2].event_id, "e-2");
}

TYPED_TEST_P(StoreTest, SchemaIsVersionedAndReopenIsIdempotent) {
  EXPECT_EQ(this->store_->schema_version(), latest_schema_version());
  this->commit({.upsert_deployment = this->deployment("d-1")});
  this->store_.reset();
  auto again = open_store(this->backend_.url(), this->clock_);
  ASSERT_TRUE(again) << again.error().what();
  EXPECT_EQ((*again)->schema_version(), latest_schema_version());
  EXPECT_TRUE((*again)->deployment("d-1"));
}

TYPED_TEST_P(StoreTest, OlderSchemaIsUpgradedInOrderKeepingData) {
  this->commit({.upsert_deployment = this->deployment("d-1")});
  this->store_.reset();
  // A later binary adds steps 2 and 3; step 3 relies on step 2.
  std::vector<internal::SchemaStep> next(this->backend_.schema().begin(),
                                         this->backend_.schema().end());
  int v = next.back().version;
  next.push_back({v + 1, "CREATE TABLE upgrade_probe (n INTEGER)"});
  next.push_back({v + 2, "INSERT INTO upgrade_probe (n) VALUES (42)"});
  auto up = this->backend_.open(this->clock_, next);
  ASSERT_TRUE(up) << up.error().what();
  EXPECT_EQ((*up)->schema_version(), v + 2);
  EXPECT_TRUE((*up)->deployment("d-1"));
  EXPECT_TRUE(this->backend_.raw("UPDATE upgrade_probe SET n = 43 WHERE n = 42"));
  up->reset();

  // This binary (which knows only up to v) refuses the newer store.
  auto old = this->backend_.open(this->clock_, this->backend_.schema());
  ASSERT_FALSE(old);
  EXPECT_EQ(old.error().code(), Errc::kFailedPrecondition);
  EXPECT_NE(
      old.error().message().find("schema version " + std::to_string(v + 2) +
                                 ", newer than this meshdeploy knows (" + std::to_string(v) + ")"),
      std::string::npos)
      << old.error().message();
}

TYPED_TEST_P(StoreTest, TwoStoresInOneProcessShareTheLock) {
  auto other = open_store(this->backend_.url(), this->clock_);
  ASSERT_TRUE(other) << other.error().what();
  ASSERT_TRUE(this->store_->acquire_lock("production", "a", "d-1", Millis(1000)));
  auto b = (*other)->acquire_lock("production", "b", "d-2", Millis(1000));
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().code(), Errc::kConflict);
}

REGISTER_TYPED_TEST_SUITE_P(
    StoreTest, DeploymentRoundTripsEveryField, DeploymentsNewestFirstFilteredAndLimited,
    RunningIsTheRunningDeploymentOfThatEnvironment, JournalSequenceIsAssignedPerDeployment,
    BadBatchWritesNothing, ReleasesUpsertKeepsCreationTime, AuditIsAppendOnly,
    LockIsALeaseWithTakeover, LockArgumentsAreChecked, OutboxDeliveryLifecycle,
    DueEventsOldestFirstWithLimit, SchemaIsVersionedAndReopenIsIdempotent,
    OlderSchemaIsUpgradedInOrderKeepingData, TwoStoresInOneProcessShareTheLock);

}  // namespace md::state::contract
