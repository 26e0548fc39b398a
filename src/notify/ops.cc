// The operations behind `meshdeploy notify test|retry|status`.
#include <algorithm>
#include <random>

#include "notify/notify.h"

namespace md::notify {
namespace {

std::string channel_names(const config::Notifications& n) {
  std::string s;
  for (const config::Channel& c : n.channels) s += (s.empty() ? "" : ", ") + c.name;
  return s.empty() ? "none" : s;
}

// "test-20261122-090000-1a2b": unique enough for one person's test runs.
std::string test_id(SysTime now) {
  std::string t = format_time(now);  // 2026-11-22T09:00:00.123Z
  std::string compact;
  for (char c : t.substr(0, 19))
    if (c != '-' && c != ':') compact += c == 'T' ? '-' : c;
  std::random_device rd;
  char hex[8];
  std::snprintf(hex, sizeof hex, "%04x", static_cast<unsigned>(rd() & 0xffff));
  return "test-" + compact + "-" + hex;
}

std::string live_version(state::Store& store, const std::string& environment) {
  auto releases = store.releases(environment);
  if (!releases) return "";
  for (const state::Release& r : *releases)
    if (r.state == "live") return r.version;
  return "";
}

// "Now, with everything queued before it": the pending rows of `env` on
// `channels` up to `last_id` that wait for a later attempt become due now,
// so they go first, in order, instead of holding the new row back (or
// being overtaken by it).
Status hurry_queued(state::Store& store, const std::string& env,
                    const std::vector<std::string>& channels, int64_t last_id, SysTime now) {
  auto rows = MD_TRY(store.events(state::OutboxStatus::kPending, 0));
  for (const state::OutboxEvent& r : rows) {
    if (r.environment != env || r.id > last_id || r.next_attempt_at <= now) continue;
    if (std::find(channels.begin(), channels.end(), r.channel) == channels.end()) continue;
    MD_TRY_STATUS(store.retry_event(r.id));
  }
  return ok();
}

// Delivers what is due for `env` (the rows `ids` among them) within `wait`
// and reports on `ids`.
Result<SendReport> deliver(state::Store& store, Transport& transport,
                           const config::Environment& env, const secrets::SecretMap& secrets,
                           const std::vector<int64_t>& ids, Millis wait, DispatcherOptions options,
                           Clock& clock) {
  Target t{env.name, env.notifications, secrets};
  Dispatcher d(store, transport, {t}, std::move(options), clock);
  Dispatcher::DrainReport drained = d.drain(wait);
  SendReport report;
  report.store_error = drained.store_error;
  for (const Delivery& x : drained.deliveries)
    if (x.outcome == Delivery::Outcome::kDelivered &&
        std::find(ids.begin(), ids.end(), x.id) == ids.end())
      ++report.other_delivered;
  auto rows = MD_TRY(store.events(std::nullopt, 0));
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  for (int64_t id : ids) {
    auto it = std::find_if(rows.begin(), rows.end(), [&](const auto& r) { return r.id == id; });
    if (it == rows.end())
      return fail(Errc::kNotFound, "outbox row " + std::to_string(id) + " vanished");
    RowResult r;
    r.id = it->id;
    r.channel = it->channel;
    r.event_id = it->event_id;
    r.status = std::string(state::outbox_status_name(it->status));
    r.attempts = it->attempts;
    r.last_error = it->last_error;
    if (it->status == state::OutboxStatus::kPending) {
      r.next_attempt = it->next_attempt_at;
      for (auto o = rows.begin(); o != it; ++o)
        r.waiting_behind += o->status == state::OutboxStatus::kPending &&
                            o->environment == it->environment && o->channel == it->channel;
    }
    report.rows.push_back(std::move(r));
  }
  return report;
}

}  // namespace

bool SendReport::all_delivered() const {
  return std::all_of(rows.begin(), rows.end(),
                     [](const RowResult& r) { return r.status == "delivered"; });
}

Result<SendReport> send_test(state::Store& store, Transport& transport,
                             const config::Environment& env, const secrets::SecretMap& secrets,
                             const std::string& channel, const std::string& actor, Millis wait,
                             DispatcherOptions options, Clock& clock) {
  const config::Notifications& n = env.notifications;
  if (n.channels.empty())
    return fail(
        Errc::kInvalidArgument,
        "environment '" + env.name + "' has no notification channels (notifications.channels)");
  config::Notifications selected = n;
  selected.channels.clear();
  for (const config::Channel& c : n.channels) {
    if (!channel.empty() && c.name != channel) continue;
    if (wants(c, EventType::kTest, env.name)) {
      selected.channels.push_back(c);
    } else if (!channel.empty()) {
      return fail(Errc::kInvalidArgument, "channel '" + channel + "' does not serve environment '" +
                                              env.name + "' (see its `environments:` list)");
    }
  }
  if (!channel.empty() && selected.channels.empty())
    return fail(Errc::kNotFound, "no channel '" + channel + "' in environment '" + env.name +
                                     "'; its channels: " + channel_names(n));
  if (selected.channels.empty())
    return fail(Errc::kInvalidArgument, "no channel serves environment '" + env.name + "'");

  Event e;
  e.type = EventType::kTest;
  e.environment = env.name;
  e.app = env.app;
  e.actor = actor;
  e.trigger = "cli";
  e.status = "test";
  e.at = clock.now();
  e.deployment_id = test_id(e.at);
  e.version = live_version(store, env.name);
  state::Batch batch;
  batch.outbox = fan_out(selected, e);
  MD_TRY_STATUS(store.commit(batch));

  auto rows = MD_TRY(store.events(std::nullopt, 0));
  std::vector<int64_t> ids;
  for (const state::OutboxEvent& want : batch.outbox)
    for (const state::OutboxEvent& r : rows)
      if (r.channel == want.channel && r.event_id == want.event_id) ids.push_back(r.id);
  std::vector<std::string> names;
  for (const config::Channel& c : selected.channels) names.push_back(c.name);
  if (!ids.empty())
    MD_TRY_STATUS(hurry_queued(store, env.name, names, *std::max_element(ids.begin(), ids.end()),
                               clock.now()));
  return deliver(store, transport, env, secrets, ids, wait, std::move(options), clock);
}

Result<state::OutboxEvent> find_row(state::Store& store, const std::string& id) {
  bool numeric =
      !id.empty() && std::all_of(id.begin(), id.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!numeric && id.rfind("evt_", 0) != 0)
    return fail(Errc::kInvalidArgument, "'" + id +
                                            "' is neither a delivery number nor an event id "
                                            "(evt_...): see `meshdeploy notify status`");
  auto rows = MD_TRY(store.events(std::nullopt, 0));
  for (const state::OutboxEvent& r : rows)
    if (numeric ? (id.size() < 19 && r.id == std::stoll(id)) : r.event_id == id) return r;
  return fail(Errc::kNotFound, "no notification delivery '" + id + "' in " + store.describe());
}

Result<SendReport> retry(state::Store& store, Transport& transport, const config::Environment& env,
                         const secrets::SecretMap& secrets, const std::string& id, Millis wait,
                         DispatcherOptions options, Clock& clock) {
  state::OutboxEvent row = MD_TRY(find_row(store, id));
  if (row.environment != env.name)
    return fail(Errc::kInvalidArgument, "delivery " + std::to_string(row.id) +
                                            " belongs to environment '" + row.environment +
                                            "', not '" + env.name + "'");
  if (row.status == state::OutboxStatus::kDelivered)
    return fail(Errc::kFailedPrecondition, "delivery " + std::to_string(row.id) + " (" +
                                               row.event_type + " to " + row.channel +
                                               ") was already delivered");
  MD_TRY_STATUS(store.retry_event(row.id));
  MD_TRY_STATUS(hurry_queued(store, env.name, {row.channel}, row.id, clock.now()));
  return deliver(store, transport, env, secrets, {row.id}, wait, std::move(options), clock);
}

Result<std::vector<state::OutboxEvent>> outstanding(state::Store& store,
                                                    const std::string& environment) {
  auto rows = MD_TRY(store.events(state::OutboxStatus::kPending, 0));
  auto failed = MD_TRY(store.events(state::OutboxStatus::kFailed, 0));
  rows.insert(rows.end(), failed.begin(), failed.end());
  std::erase_if(
      rows, [&](const auto& r) { return !environment.empty() && r.environment != environment; });
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  return rows;
}

}  // namespace md::notify
