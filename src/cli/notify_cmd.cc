// `meshdeploy notify test|status|retry`: deployment notifications by hand.
#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iomanip>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <ostream>
#include <set>

#include "cli/commands.h"
#include "core/json.h"
#include "deploy/session.h"
#include "deploy/state_place.h"
#include "notify/notify.h"
#include "secrets/secrets.h"
#include "state/state.h"

namespace md::cli {
namespace {

constexpr char kDefaultWait[] = "30s";

struct SendArgs {
  std::string config;
  std::string env;
  std::string channel;
  std::string id;
  std::string wait = kDefaultWait;
};

struct StatusArgs {
  std::string config;
  std::string env;
  bool json = false;
};

void add_wait_option(CLI::App& cmd, std::string& wait) {
  cmd.add_option("--wait", wait,
                 "how long to keep retrying before leaving the rest queued (default 30s)")
      ->type_name("DURATION");
}

std::string actor() {
  const char* user = std::getenv("USER");
  return user && *user ? user : "unknown";
}

// The environment's secrets, with every later log line masked by them.
Result<secrets::SecretMap> environment_secrets(const config::Environment& env) {
  secrets::SecretMap values = MD_TRY_CTX(secrets::load_secrets(env), "notify");
  auto redactor = MD_TRY(secrets::Redactor::create(values));
  secrets::install_log_redactor(redactor);
  return values;
}

// `agent_error`: "" when the agent took the environment's notifications.
void print_report(Io& io, const notify::SendReport& r, const std::string& env,
                  const std::string& agent_error) {
  size_t width = 8;
  for (const auto& row : r.rows) width = std::max(width, row.channel.size() + 2);
  bool pending = false, failed = false;
  for (const notify::RowResult& row : r.rows) {
    std::string status = row.status;
    std::string detail;
    if (row.status == "pending" && row.attempts == 0) {
      detail = row.waiting_behind > 0 ? "queued behind " + std::to_string(row.waiting_behind) +
                                            " earlier undelivered event(s)"
                                      : "queued, next attempt at " + format_time(row.next_attempt);
    } else if (row.status == "pending") {
      status = "retrying";
      detail = "attempt " + std::to_string(row.attempts) + " failed: " + row.last_error +
               "; next attempt at " + format_time(row.next_attempt);
    } else if (row.status == "failed") {
      detail = row.last_error + " (delivery " + std::to_string(row.id) + ")";
    }
    pending |= row.status == "pending";
    failed |= row.status == "failed";
    io.out << "  " << std::left << std::setw(static_cast<int>(width)) << row.channel;
    if (detail.empty()) {
      io.out << status << "\n";
    } else {
      io.out << std::setw(10) << status << detail << "\n";
    }
  }
  if (r.other_delivered > 0)
    io.out << "Also delivered " << r.other_delivered << " earlier queued notification(s).\n";
  if (!r.store_error.empty())
    io.err << "meshdeploy: notify: state store: " << r.store_error << "\n";
  if (pending && agent_error.empty())
    io.out << "The host agent sends the queued notifications of " << env
           << " as they fall due; `meshdeploy notify status --env " << env << "` lists them.\n";
  else if (pending)
    io.out << "Queued notifications are sent by the next deploy or notify command of " << env
           << " (the host agent could not take them: " << agent_error
           << "); `meshdeploy notify status --env " << env << "` lists them.\n";
  if (failed)
    io.out << "Failed deliveries are not retried on their own: fix the channel, then run "
              "`meshdeploy notify retry ID --env "
           << env << "`.\n";
}

// Loads what sending needs: the environment, its secrets, its store.
struct Sending {
  config::Environment env;
  secrets::SecretMap secrets;
  std::unique_ptr<state::Store> store;
  Millis wait{0};
};

Result<Sending> prepare(Io& io, const SendArgs& a) {
  Sending s;
  s.wait = MD_TRY_CTX(config::parse_duration(a.wait), "--wait");
  s.env = MD_TRY(load_environment(io, a.config, a.env));
  s.secrets = MD_TRY(environment_secrets(s.env));
  s.store = MD_TRY(deploy::open_state(s.env, &s.secrets));
  return s;
}

nlohmann::json row_json(const state::OutboxEvent& r) {
  using nlohmann::json;
  return {{"id", r.id},
          {"event_id", r.event_id},
          {"status", state::outbox_status_name(r.status)},
          {"environment", r.environment},
          {"channel", r.channel},
          {"event", r.event_type},
          {"attempts", r.attempts},
          {"created_at", format_time(r.created_at)},
          {"next_attempt_at", r.status == state::OutboxStatus::kPending
                                  ? json(format_time(r.next_attempt_at))
                                  : json(nullptr)},
          {"last_error", r.last_error}};
}

void print_table(Io& io, const std::vector<state::OutboxEvent>& rows) {
  if (rows.empty()) {
    io.out << "No pending or failed notification deliveries.\n";
    return;
  }
  std::vector<std::vector<std::string>> table = {{"ID", "STATUS", "ENVIRONMENT", "CHANNEL", "EVENT",
                                                  "ATTEMPTS", "NEXT ATTEMPT", "LAST ERROR"}};
  int pending = 0, failed = 0;
  for (const state::OutboxEvent& r : rows) {
    bool is_pending = r.status == state::OutboxStatus::kPending;
    (is_pending ? pending : failed)++;
    table.push_back({std::to_string(r.id), std::string(state::outbox_status_name(r.status)),
                     r.environment, r.channel, r.event_type, std::to_string(r.attempts),
                     is_pending ? format_time(r.next_attempt_at) : "-",
                     r.last_error.empty() ? "-" : r.last_error});
  }
  std::vector<size_t> width(table[0].size(), 0);
  for (const auto& line : table)
    for (size_t i = 0; i + 1 < line.size(); ++i) width[i] = std::max(width[i], line[i].size());
  for (const auto& line : table) {
    for (size_t i = 0; i < line.size(); ++i) {
      io.out << line[i];
      if (i + 1 < line.size()) io.out << std::string(width[i] - line[i].size() + 2, ' ');
    }
    io.out << "\n";
  }
  io.out << pending << " pending, " << failed << " failed\n";
}

}  // namespace

Action setup_notify_test(CLI::App& cmd, Io& io) {
  auto a = std::make_shared<SendArgs>();
  add_config_option(cmd, a->config);
  add_env_option(cmd, a->env);
  cmd.add_option("--channel", a->channel, "only this channel (default: every channel of ENV)")
      ->type_name("NAME");
  add_wait_option(cmd, a->wait);
  return [a, &io] {
    auto s = prepare(io, *a);
    if (!s) return report(io, s.error());
    const std::string agent_error = deploy::hand_over_notifications(s->env, s->secrets);
    auto transport = notify::make_curl_transport();
    auto r =
        notify::send_test(*s->store, *transport, s->env, s->secrets, a->channel, actor(), s->wait);
    if (!r) return report(io, std::move(r.error()).with_context("notify test"));
    // Again: it wakes the agent's sender for what this command left pending.
    if (agent_error.empty()) (void)deploy::hand_over_notifications(s->env, s->secrets);
    io.out << "Test notification for " << s->env.name << ":\n";
    print_report(io, *r, s->env.name, agent_error);
    return r->all_delivered() ? Exit::kOk : Exit::kFailed;
  };
}

Action setup_notify_status(CLI::App& cmd, Io& io) {
  auto a = std::make_shared<StatusArgs>();
  add_config_option(cmd, a->config);
  add_env_option(cmd, a->env, /*required=*/false);
  cmd.add_flag("--json", a->json, "print a JSON array of deliveries");
  return [a, &io] {
    auto c = load_config(io, a->config);
    if (!c) return report(io, c.error());
    // Every store the environments use (usually one), each read once.
    std::map<std::string, config::Environment> stores;  // url -> an environment using it
    for (const std::string& name : c->environments) {
      if (!a->env.empty() && name != a->env) continue;
      auto env = config::resolve(*c, name);
      if (!env) return report(io, env.error());
      stores.emplace(state::store_url(*env), std::move(*env));
    }
    if (!a->env.empty() && stores.empty()) {
      auto env = config::resolve(*c, a->env);  // the "unknown environment" error
      if (!env) return report(io, env.error());
    }
    std::vector<state::OutboxEvent> rows;
    for (const auto& [url, env] : stores) {
      auto store = deploy::open_state(env);
      if (!store) return report(io, store.error());
      auto got = notify::outstanding(**store, a->env);
      if (!got) return report(io, std::move(got.error()).with_context("notify status"));
      rows.insert(rows.end(), got->begin(), got->end());
    }
    if (a->json) {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& r : rows) out.push_back(row_json(r));
      io.out << to_json_text(out, 2) << "\n";
    } else {
      print_table(io, rows);
    }
    return Exit::kOk;
  };
}

Action setup_notify_retry(CLI::App& cmd, Io& io) {
  auto a = std::make_shared<SendArgs>();
  cmd.add_option("id", a->id, "the delivery's ID or event id, from `meshdeploy notify status`")
      ->required();
  add_config_option(cmd, a->config);
  add_env_option(cmd, a->env);
  add_wait_option(cmd, a->wait);
  return [a, &io] {
    auto s = prepare(io, *a);
    if (!s) return report(io, s.error());
    const std::string agent_error = deploy::hand_over_notifications(s->env, s->secrets);
    auto transport = notify::make_curl_transport();
    auto r = notify::retry(*s->store, *transport, s->env, s->secrets, a->id, s->wait);
    if (!r) return report(io, std::move(r.error()).with_context("notify retry"));
    // Again: it wakes the agent's sender for what this command left pending.
    if (agent_error.empty()) (void)deploy::hand_over_notifications(s->env, s->secrets);
    io.out << "Retried delivery " << a->id << ":\n";
    print_report(io, *r, s->env.name, agent_error);
    return r->all_delivered() ? Exit::kOk : Exit::kFailed;
  };
}

}  // namespace md::cli
