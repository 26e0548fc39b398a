#include "deploy/session.h"

#include <fmt/format.h>

#include "agent/agent.h"
#include "deploy/adapters.h"
#include "deploy/state_place.h"
#include "notify/courier.h"

namespace md::deploy {

Session::~Session() {
  if (dispatcher_) dispatcher_->stop();
}

Result<std::unique_ptr<Session>> Session::open(const config::Environment& env,
                                               secrets::SecretMap secrets, const std::string& actor,
                                               const SessionOptions& options) {
  std::unique_ptr<Session> s(new Session());
  s->store_ = MD_TRY_CTX(open_state(env, &secrets), "state store");
  // WHY retries: the agent may restart mid-deploy (upgrade, crash); its
  // calls are idempotent and a restarted agent re-adopts everything.
  s->host_ =
      MD_TRY(make_hosts(env, secrets, real_clock(), options.agent_patience, options.on_retry));
  if (options.migrations)
    s->migrator_ = MD_TRY(make_migrator(env, secrets, actor, &s->why_no_migrator_));
  s->hooks_ = make_shell_hooks(env.base_dir, options.hook_line);
  if (options.notifications && !env.notifications.channels.empty()) {
    s->transport_ = notify::make_curl_transport();
    notify::Target t;
    t.environment = env.name;
    t.notifications = env.notifications;
    t.secrets = std::move(secrets);
    s->env_ = env;
    s->channel_secrets_ = notify::channel_secrets(env.notifications, t.secrets);
    s->dispatcher_ = std::make_unique<notify::Dispatcher>(
        *s->store_, *s->transport_, std::vector<notify::Target>{std::move(t)});
  }
  return s;
}

Seams Session::seams(Observer& observer, Clock& clock) {
  Seams seams{*host_, *store_, migrator_.get(), *hooks_, clock, observer, {}};
  if (dispatcher_) seams.outbox_written = [d = dispatcher_.get()] { d->wake(); };
  if (!why_no_migrator_.empty()) seams.no_migrator = why_no_migrator_;
  return seams;
}

std::string hand_over_notifications(const config::Environment& env,
                                    const secrets::SecretMap& secrets) {
  if (env.notifications.channels.empty()) return "";
  notify::Handoff h;
  h.store_url = state::store_url(env);
  std::filesystem::path socket = agent_socket(env);
  AgentLink link;  // an ssh host's forward, open for the call
  if (const config::Host* sh = state_host(env)) {
    // WHY that host's agent: its courier sends from the store it serves
    // ("agent:<host>" names it), and outlives a throw-away controller.
    if (sh->address == "local") {
      socket = local_agent_socket(env, *sh);
    } else {
      secrets::SecretMap ssh_secrets;
      if (needs_ssh_secrets(env)) {
        auto loaded = secrets::load_secrets(env);
        if (!loaded) return loaded.error().what();
        ssh_secrets = std::move(*loaded);
      }
      auto l = open_agent_link(env, static_cast<size_t>(sh - env.hosts.data()), ssh_secrets);
      if (!l) return l.error().what();
      link = std::move(*l);
      socket = link.socket;
    }
  } else if (env.hosts.size() != 1 || env.hosts[0].address != "local") {
    // WHY: the agent of an ssh host cannot reach this machine's state store.
    return "the agent runs on another machine";
  } else if (h.store_url.rfind("postgres", 0) != 0) {
    std::string path = h.store_url.rfind("sqlite:", 0) == 0 ? h.store_url.substr(7) : h.store_url;
    std::error_code ec;
    auto abs = std::filesystem::absolute(path, ec);
    if (!ec) h.store_url = abs.string();
  }
  h.target.environment = env.name;
  h.target.notifications = env.notifications;
  h.target.secrets = notify::channel_secrets(env.notifications, secrets);
  auto st = agent::send_notify_handoff(socket, notify::handoff_json(h), Millis(5000));
  return st ? "" : st.error().what();
}

void Session::start_notifications() {
  if (!dispatcher_) return;
  // WHY first: should this command die, the agent already sends what it wrote.
  handoff_error_ = hand_over_notifications(*env_, channel_secrets_);
  dispatcher_->start();
}

std::string Session::finish_notifications(Millis max_wait) {
  if (!dispatcher_) return "";
  const notify::Dispatcher::DrainReport r = dispatcher_->drain(max_wait);
  // Again even when the first hand-off worked: it wakes the agent's sender,
  // which otherwise looks at an idle outbox only once per lease TTL.
  handoff_error_ = hand_over_notifications(*env_, channel_secrets_);
  if (r.pending == 0 && r.failed == 0 && r.store_error.empty()) return "";
  std::string who = handoff_error_.empty()
                        ? "the agent sends the pending ones"
                        : "the agent could not take them (" + handoff_error_ +
                              "): the next command of this environment sends them";
  return fmt::format("notifications: {} pending, {} failed{}; {} (`meshdeploy notify status`)",
                     r.pending, r.failed, r.store_error.empty() ? "" : "; store: " + r.store_error,
                     who);
}

}  // namespace md::deploy
