#include "deploy/inspect.h"

#include <fmt/format.h>

#include "agent/api.h"
#include "deploy/adapters.h"
#include "deploy/recovery.h"

namespace md::deploy {
namespace {

using json = nlohmann::json;

std::string duration_text(const state::Deployment& d) {
  if (!d.finished_at) return "-";
  const auto ms = std::chrono::duration_cast<Millis>(*d.finished_at - d.started_at).count();
  if (ms < 60000) return fmt::format("{:.1f}s", static_cast<double>(ms) / 1000.0);
  return fmt::format("{}m{:02}s", ms / 60000, (ms / 1000) % 60);
}

std::string process_text(const ProcessView& p) {
  std::string t = fmt::format("{}.{} {}", p.service, p.index, p.state);
  if (p.web) t += p.healthy ? " healthy" : " unhealthy";
  if (p.restarts > 0) t += fmt::format(" ({} restarts)", p.restarts);
  if (!p.last_exit.empty() && p.state != "running") t += " [" + p.last_exit + "]";
  return t;
}

}  // namespace

Result<EnvironmentStatus> environment_status(state::Store& store, Host& host,
                                             const std::string& environment) {
  EnvironmentStatus s;
  s.environment = environment;
  s.state_store = store.describe();
  if (host.host_names().size() > 1) {
    // WHY each host apart: one unreachable host must not hide what the
    // others run (the merged view needs them all).
    for (auto& [name, v] : host.host_views()) {
      HostStatus hs;
      hs.name = name;
      if (v)
        hs.view = *v;
      else
        hs.error = v.error().what();
      s.hosts.push_back(std::move(hs));
    }
    if (auto hv = host.view())
      s.host = std::move(*hv);
    else
      s.host_error = hv.error().what();
  } else if (auto hv = host.view()) {
    s.host = std::move(*hv);
  } else {
    s.host_error = hv.error().what();
  }
  s.running = MD_TRY(store.running(environment));
  if (s.running) {
    const auto j = MD_TRY(store.journal(s.running->id));
    for (auto it = j.rbegin(); it != j.rend(); ++it)
      if (it->step != "control" && it->step != "resume") {
        s.running_step = it->step + " (" + (it->phase == "intent" ? "running" : it->outcome) + ")";
        break;
      }
  }
  s.lock = MD_TRY(store.lock_info(environment));
  for (const state::Deployment& d : MD_TRY(store.deployments(environment, 20)))
    if (d.status != state::DeployStatus::kRunning) {
      s.last_done = d;
      break;
    }
  s.releases = MD_TRY(store.releases(environment));
  return s;
}

std::string format_status(const EnvironmentStatus& s, SysTime now) {
  std::string out;
  const std::string live = s.host ? s.host->live() : "";
  out += fmt::format("{}: {}\n", s.environment,
                     !s.host        ? "agent unreachable: " + s.host_error
                     : live.empty() ? std::string("nothing live")
                                    : fmt::format("{} live", live));
  if (!s.state_store.empty()) out += fmt::format("  state: {}\n", s.state_store);
  if (s.last_done)
    out += fmt::format(
        "  last deployment: {} {} {} {} ({} ago, by {})\n", s.last_done->id, s.last_done->kind,
        s.last_done->version, state::status_name(s.last_done->status),
        fmt::format("{}s",
                    std::chrono::duration_cast<std::chrono::seconds>(now - s.last_done->started_at)
                        .count()),
        s.last_done->actor);
  if (s.running) {
    out += fmt::format("  in progress: {} {} {} -> {} at {}", s.running->id, s.running->kind,
                       s.running->previous_version.empty() ? "-" : s.running->previous_version,
                       s.running->version, s.running_step);
    out += s.lock ? fmt::format(" (lock held by {})\n", s.lock->holder)
                  : " (its controller is gone: `meshdeploy deploy --resume`)\n";
  }
  for (const HostStatus& h : s.hosts) {
    std::string what = !h.view                  ? "unreachable: " + h.error
                       : h.view->live().empty() ? std::string("nothing live")
                                                : fmt::format("{} live", h.view->live());
    if (h.view && h.view->weights.size() > 1) {
      std::string split;
      for (const auto& [v, w] : h.view->weights)
        split += fmt::format("{}{} {}%", split.empty() ? "" : ", ", v, w);
      what += " (" + split + ")";
    }
    out += fmt::format("  host {}: {}\n", h.name, what);
  }
  if (!s.host) return out;
  out += s.hosts.empty() ? "  releases on host:\n"
                         : fmt::format("  releases on {} hosts:\n", s.hosts.size());
  for (auto it = s.host->releases.rbegin(); it != s.host->releases.rend(); ++it) {
    const ReleaseView& r = *it;
    auto w = s.host->weights.find(r.version);
    const int weight = w == s.host->weights.end() ? 0 : w->second;
    std::string procs;
    for (const ProcessView& p : r.processes) procs += (procs.empty() ? "" : ", ") + process_text(p);
    out += fmt::format("    {:<16} {:>4}%  {}{}\n", r.version, weight,
                       procs.empty() ? "on disk" : procs,
                       r.warm_until.empty() ? "" : "; warm until " + r.warm_until);
  }
  return out;
}

json deployment_json(const state::Deployment& d) {
  json j{{"id", d.id},
         {"environment", d.environment},
         {"kind", d.kind},
         {"version", d.version},
         {"previous_version", d.previous_version},
         {"strategy", d.strategy},
         {"actor", d.actor},
         {"trigger", d.trigger},
         {"status", state::status_name(d.status)},
         {"reason", d.reason},
         {"started_at", format_time(d.started_at)}};
  j["finished_at"] = d.finished_at ? json(format_time(*d.finished_at)) : json(nullptr);
  if (d.finished_at)
    j["duration_ms"] = std::chrono::duration_cast<Millis>(*d.finished_at - d.started_at).count();
  return j;
}

json status_json(const EnvironmentStatus& s) {
  json j{{"environment", s.environment}};
  j["reachable"] = s.host.has_value();
  j["state_store"] = s.state_store;
  if (!s.host) j["host_error"] = s.host_error;
  j["live"] = s.host ? s.host->live() : "";
  j["weights"] = s.host ? json(s.host->weights) : json::object();
  j["running"] = s.running ? deployment_json(*s.running) : json(nullptr);
  if (s.running) j["running"]["step"] = s.running_step;
  j["lock"] = s.lock ? json{{"holder", s.lock->holder},
                            {"deployment_id", s.lock->deployment_id},
                            {"expires_at", format_time(s.lock->expires_at)}}
                     : json(nullptr);
  j["last"] = s.last_done ? deployment_json(*s.last_done) : json(nullptr);
  if (!s.hosts.empty()) {
    j["hosts"] = json::array();
    for (const HostStatus& h : s.hosts)
      j["hosts"].push_back({{"name", h.name},
                            {"reachable", h.view.has_value()},
                            {"error", h.error},
                            {"live", h.view ? h.view->live() : ""},
                            {"weights", h.view ? json(h.view->weights) : json::object()}});
  }
  j["releases"] = json::array();
  if (s.host) {
    for (const ReleaseView& r : s.host->releases) {
      json procs = json::array();
      for (const ProcessView& p : r.processes)
        procs.push_back({{"service", p.service},
                         {"index", p.index},
                         {"web", p.web},
                         {"state", p.state},
                         {"healthy", p.healthy},
                         {"restarts", p.restarts},
                         {"last_exit", p.last_exit}});
      auto w = s.host->weights.find(r.version);
      j["releases"].push_back({{"version", r.version},
                               {"sha256", r.sha256},
                               {"weight", w == s.host->weights.end() ? 0 : w->second},
                               {"processes", procs},
                               {"warm_until", r.warm_until}});
    }
  }
  return j;
}

std::vector<std::string> deployment_hosts(const std::vector<state::JournalEntry>& journal) {
  for (const state::JournalEntry& e : journal) {
    if (e.step != "preflight" || e.phase != "intent") continue;
    json d = json::parse(e.detail.empty() ? "{}" : e.detail, nullptr, false);
    std::vector<std::string> out;
    if (d.is_object() && d.contains("hosts") && d["hosts"].is_array())
      for (const json& h : d["hosts"])
        if (h.is_string()) out.push_back(h.get<std::string>());
    return out;
  }
  return {};
}

std::string format_history(const std::vector<state::Deployment>& ds,
                           const std::map<std::string, std::vector<std::string>>& hosts) {
  std::string out =
      fmt::format("{:<24} {:<8} {:<14} {:<14} {:<10} {:<11} {:<24} {:>8}  {}\n", "ID", "KIND",
                  "VERSION", "FROM", "STRATEGY", "STATUS", "STARTED", "TOOK", "BY");
  for (const state::Deployment& d : ds) {
    out += fmt::format("{:<24} {:<8} {:<14} {:<14} {:<10} {:<11} {:<24} {:>8}  {}\n", d.id, d.kind,
                       d.version, d.previous_version.empty() ? "-" : d.previous_version, d.strategy,
                       state::status_name(d.status), format_time(d.started_at), duration_text(d),
                       d.actor);
    if (auto h = hosts.find(d.id); h != hosts.end() && !h->second.empty()) {
      std::string names;
      for (const std::string& n : h->second) names += (names.empty() ? "" : ", ") + n;
      out += "    hosts: " + names + "\n";
    }
    if (!d.reason.empty()) out += "    reason: " + d.reason + "\n";
  }
  return out;
}

json history_json(const std::vector<state::Deployment>& ds,
                  const std::map<std::string, std::vector<std::string>>& hosts) {
  json j = json::array();
  for (const state::Deployment& d : ds) {
    j.push_back(deployment_json(d));
    if (auto h = hosts.find(d.id); h != hosts.end() && !h->second.empty())
      j.back()["hosts"] = h->second;
  }
  return j;
}

std::string format_journal(const state::Deployment& d, const std::vector<state::JournalEntry>& j) {
  std::string out =
      fmt::format("{} {} {} -> {} ({}, {}){}\n", d.id, d.kind,
                  d.previous_version.empty() ? "-" : d.previous_version, d.version, d.strategy,
                  state::status_name(d.status), d.reason.empty() ? "" : ": " + d.reason);
  for (const state::JournalEntry& e : j)
    out +=
        fmt::format("  {:>4} {} {:<17} {:<8} {}\n", e.seq, format_time(e.at), e.step,
                    e.phase == "intent" ? "intent" : e.outcome, e.detail == "{}" ? "" : e.detail);
  if (!journal_complete(j)) out += "  (incomplete: a step has an intent without an outcome)\n";
  return out;
}

json journal_json(const state::Deployment& d, const std::vector<state::JournalEntry>& j) {
  json rows = json::array();
  for (const state::JournalEntry& e : j) {
    json detail = json::parse(e.detail.empty() ? "{}" : e.detail, nullptr, false);
    rows.push_back({{"seq", e.seq},
                    {"at", format_time(e.at)},
                    {"step", e.step},
                    {"phase", e.phase},
                    {"outcome", e.outcome},
                    {"detail", detail.is_discarded() ? json(e.detail) : detail}});
  }
  return json{
      {"deployment", deployment_json(d)}, {"complete", journal_complete(j)}, {"journal", rows}};
}

Status stream_logs(const AgentLink& link, const config::Environment& env,
                   const std::string& version, const std::string& process, int tail, bool follow,
                   const std::function<bool(const std::string&)>& sink) {
  agent::Client client(link.socket);
  std::string v = version;
  if (v.empty()) {
    const agent::AgentStatus st =
        MD_TRY_CTX(client.status(), link.connection
                                        ? "agent of host " + link.host + " at " + link.remote_socket
                                        : "agent at " + link.socket.string());
    int best = 0;
    for (const auto& [ver, w] : st.weights)
      if (w > best) {
        best = w;
        v = ver;
      }
    if (v.empty())
      return fail(Errc::kNotFound,
                  fmt::format("nothing is live in {}: name a --release", env.name));
  }
  agent::Logs req;
  req.version = v;
  req.process = process;
  req.tail = tail;
  auto emit = [&](const agent::LogLine& l) {
    return sink(fmt::format("{} {} {}", l.time, l.process, l.text));
  };
  if (follow) return client.follow_logs(req, emit);
  const agent::LogsResult r = MD_TRY(client.logs(req));
  for (const agent::LogLine& l : r.lines)
    if (!emit(l)) break;
  return ok();
}

}  // namespace md::deploy
