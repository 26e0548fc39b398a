// When the state store fails mid-run, the journal can no longer tell anyone
// what the hosts are in: the error says it instead, and the lock is let go.
#include <fmt/format.h>

#include "deploy/executor.h"

namespace md::deploy {

std::string Deployer::Impl::describe_hosts() {
  auto hv = view_host();
  if (!hv) return fmt::format("host {}: could not be asked ({})", s.host.name(), hv.error().what());
  std::string traffic;
  for (auto it = hv->weights.rbegin(); it != hv->weights.rend(); ++it)
    traffic += fmt::format("{}{} {}%", traffic.empty() ? "" : ", ", it->first, it->second);
  std::string running;
  for (const ReleaseView& r : hv->releases)
    if (!r.processes.empty())
      running += fmt::format("{}{} ({})", running.empty() ? "" : ", ", r.version,
                             release_state_note(&r, web_count()));
  return fmt::format("host {}: traffic {}; running {}", s.host.name(),
                     traffic.empty() ? "to no release" : traffic,
                     running.empty() ? "nothing" : running);
}

Result<Outcome> Deployer::Impl::settle_store_failure(Result<Outcome> r) {
  if (r || !store_failed || dep.id.empty()) return r;
  const std::string hosts = describe_hosts();
  const std::string at = last_step ? std::string(step_name(*last_step)) : "the start";
  lease.reset();  // stops renewing and releases the lock (errors ignored)
  const Status freed = s.store.release_lock(env.name, o.holder);
  const std::string lock =
      freed ? fmt::format("the lock of {} was released", env.name)
            : fmt::format(
                  "the lock of {} could not be released in that store; it expires on its "
                  "own within {:.0f}s",
                  env.name, o.lock_ttl.count() / 1000.0);
  return fail(
      r.error().code(),
      fmt::format("{}\n{} {} of {} stopped at {} with its journal unwritable; {}.\n"
                  "Now: {}.\n{}. Once the store is back, `meshdeploy deploy --resume` "
                  "finishes the {} or `meshdeploy rollback` returns to {}.",
                  r.error().what(), dep.kind, dep.version, env.name, at,
                  traffic_moved ? "traffic HAD moved to " + dep.version
                                : "no traffic had moved to " + dep.version,
                  hosts, lock, dep.kind,
                  dep.previous_version.empty() ? "the previous release" : dep.previous_version));
}

}  // namespace md::deploy
