#include "deploy/session.h"

#include <fmt/format.h>

#include "deploy/adapters.h"

namespace md::deploy {

Session::~Session() {
  if (dispatcher_) dispatcher_->stop();
}

Result<std::unique_ptr<Session>> Session::open(const config::Environment& env,
                                               secrets::SecretMap secrets, const std::string& actor,
                                               SessionOptions options) {
  std::unique_ptr<Session> s(new Session());
  s->store_ = MD_TRY_CTX(state::open_store(state::store_url(env)), "state store");
  // WHY retries: the agent may restart mid-deploy (upgrade, crash); its
  // calls are idempotent and a restarted agent re-adopts everything.
  s->host_ = with_retries(MD_TRY(make_agent_host(env)), real_clock(), options.agent_patience,
                          options.on_retry);
  if (options.migrations) s->migrator_ = MD_TRY(make_migrator(env, secrets, actor, &s->why_no_migrator_));
  s->hooks_ = make_shell_hooks(env.base_dir, options.hook_line);
  if (options.notifications && !env.notifications.channels.empty()) {
    s->transport_ = notify::make_curl_transport();
    notify::Target t;
    t.environment = env.name;
    t.notifications = env.notifications;
    t.secrets = std::move(secrets);
    s->dispatcher_ = std::make_unique<notify::Dispatcher>(*s->store_, *s->transport_,
                                                          std::vector<notify::Target>{std::move(t)});
  }
  return s;
}

Seams Session::seams(Observer& observer, Clock& clock) {
  Seams seams{*host_, *store_, migrator_.get(), *hooks_, clock, observer, {}};
  if (dispatcher_) seams.outbox_written = [d = dispatcher_.get()] { d->wake(); };
  if (!why_no_migrator_.empty()) seams.no_migrator = why_no_migrator_;
  return seams;
}

void Session::start_notifications() {
  if (dispatcher_) dispatcher_->start();
}

std::string Session::finish_notifications(Millis max_wait) {
  if (!dispatcher_) return "";
  const notify::Dispatcher::DrainReport r = dispatcher_->drain(max_wait);
  if (r.pending == 0 && r.failed == 0 && r.store_error.empty()) return "";
  return fmt::format("notifications: {} pending, {} failed{} (`meshdeploy notify status`)", r.pending,
                     r.failed, r.store_error.empty() ? "" : "; store: " + r.store_error);
}

}  // namespace md::deploy
