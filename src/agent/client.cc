// The typed, blocking client of the agent's control API (api.h). Every call
// has a deadline: the client's timeout plus what the call itself waits for
// (register: 1 s per 10 MB of artifact; unpack: at least 10 min; wait_ready,
// route, drain, stop: their own limits). A SIGINT/SIGTERM under a
// core/interrupt.h Watch cuts a call at once (kCancelled).
#include <fstream>
#include <thread>

#include "agent/agent.h"
#include "agent/api.h"
#include "core/json.h"
#include "http/http.h"

namespace md::agent {
namespace {
using json = nlohmann::json;

constexpr size_t kChunkBytes = 4 << 20;  // upload chunk; the agent accepts up to 8 MiB

template <class T>
Result<T> decode_answer(Result<json> j) {
  if (!j) return fail(std::move(j.error()));
  return decode<T>(*j).map_error([](const Error& e) {
    return Error(Errc::kInternal, "unexpected answer from the agent: " + e.message());
  });
}

}  // namespace

Client::Client(std::filesystem::path socket, Millis timeout)
    : socket_(std::move(socket)), timeout_(timeout) {}

Result<json> Client::call(std::string_view method, std::string_view path, const json* body,
                          Millis timeout) {
  http::UnixClient c(socket_, timeout);
  std::string text = body ? to_json_text(*body) : std::string();
  auto r = MD_TRY(c.request_with_timeout(timeout, method, path, text, "application/json"));
  MD_TRY_STATUS(r.to_status());
  return r.json();
}

Result<AgentStatus> Client::status() {
  return decode_answer<AgentStatus>(call("GET", "/v1/agent/status", nullptr, timeout_));
}

Result<ReleaseInfo> Client::register_artifact(const RegisterArtifact& r) {
  json body = to_json(r);
  // The agent hashes and copies the file: the timeout plus 1 s per 10 MB.
  std::error_code ec;
  const uintmax_t size = std::filesystem::file_size(r.path, ec);
  const Millis limit = timeout_ + Millis(ec ? 0 : static_cast<int64_t>(size / 10'000));
  return decode_answer<ReleaseInfo>(call("POST", "/v1/agent/artifacts", &body, limit));
}

Result<ReleaseInfo> Client::upload_artifact(const std::string& version, const std::string& sha256,
                                            const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return fail(Errc::kNotFound, "upload: cannot read " + file.string());
  http::UnixClient c(socket_, timeout_);
  std::string base = "/v1/agent/artifacts/" + http::percent_encode(version);
  std::string chunk(kChunkBytes, '\0');
  uint64_t offset = 0;
  for (;;) {
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    size_t n = static_cast<size_t>(in.gcount());
    if (n == 0 && offset > 0) break;
    auto r = MD_TRY(c.request("PUT", base + "/chunks?offset=" + std::to_string(offset),
                              std::string_view(chunk.data(), n), "application/octet-stream"));
    MD_TRY_STATUS(r.to_status());
    offset += n;
    if (n < chunk.size()) break;
  }
  json body = {{"sha256", sha256}, {"size", offset}};
  return decode_answer<ReleaseInfo>(call("POST", base + "/commit", &body, timeout_));
}

Result<ReleaseInfo> Client::unpack(const Unpack& r) {
  json body = to_json(r);
  // Unpacking a large artifact takes a while: no short limit here.
  return decode_answer<ReleaseInfo>(
      call("POST", "/v1/agent/unpack", &body, std::max(timeout_, Millis(600000))));
}

Result<ReleaseInfo> Client::start(const Start& r) {
  json body = to_json(r);
  return decode_answer<ReleaseInfo>(call("POST", "/v1/agent/start", &body, timeout_));
}

Result<ReleaseInfo> Client::wait_ready(const WaitReady& r) {
  json body = to_json(r);
  return decode_answer<ReleaseInfo>(
      call("POST", "/v1/agent/wait-ready", &body, r.timeout + timeout_));
}

Result<AgentStatus> Client::route(const Route& r) {
  json body = to_json(r);
  return decode_answer<AgentStatus>(
      call("POST", "/v1/agent/route", &body, r.health_timeout + timeout_));
}

Result<AgentStatus> Client::switch_to(const std::string& version) {
  return route(Route{{{version, 100}}});
}

Result<AgentStatus> Client::set_canary(const std::string& version, int weight) {
  json body = {{"version", version}, {"weight", weight}};
  return decode_answer<AgentStatus>(call("POST", "/v1/agent/canary", &body, timeout_ * 2));
}

Result<AgentStatus> Client::promote(const std::string& version) {
  json body = {{"version", version}};
  return decode_answer<AgentStatus>(call("POST", "/v1/agent/promote", &body, timeout_));
}

Result<AgentStatus> Client::abort_canary(const std::string& version) {
  json body = {{"version", version}};
  return decode_answer<AgentStatus>(call("POST", "/v1/agent/abort", &body, timeout_));
}

Result<AgentStatus> Client::maintenance(const Maintenance& r) {
  json body = to_json(r);
  return decode_answer<AgentStatus>(call("POST", "/v1/agent/maintenance", &body, timeout_));
}

Status Client::drain(const Drain& r) {
  json body = to_json(r);
  MD_TRY(call("POST", "/v1/agent/drain", &body, r.timeout + timeout_));
  return ok();
}

Result<ReleaseInfo> Client::stop(const Stop& r) {
  json body = to_json(r);
  // Drain deadline + grace period + margin: the agent bounds both.
  Millis limit = r.wait ? Millis(30000) + std::max(r.grace, Millis(30000)) + timeout_ : timeout_;
  return decode_answer<ReleaseInfo>(call("POST", "/v1/agent/stop", &body, limit));
}

Result<ReleaseInfo> Client::keep_warm(const KeepWarm& r) {
  json body = to_json(r);
  return decode_answer<ReleaseInfo>(call("POST", "/v1/agent/keep-warm", &body, timeout_));
}

Status Client::replace_workers(const Start& to, const std::string& from, Millis ready_timeout) {
  Start s = to;
  s.role = Role::kWorkers;
  MD_TRY(start(s));
  MD_TRY(wait_ready(WaitReady{to.version, Role::kWorkers, ready_timeout}));
  if (from.empty() || from == to.version) return ok();
  MD_TRY(stop(Stop{from, Role::kWorkers, Millis(0), false, true}));
  return ok();
}

Result<VersionMetrics> Client::metrics() {
  return decode_answer<VersionMetrics>(call("GET", "/v1/agent/metrics", nullptr, timeout_));
}

Result<proxy::MetricsSnapshot> Client::proxy_metrics() {
  auto j = MD_TRY(call("GET", "/v1/agent/proxy/metrics", nullptr, timeout_));
  return proxy::metrics_from_json(j);
}

Result<LogsResult> Client::logs(const Logs& r) {
  json body = to_json(r);
  return decode_answer<LogsResult>(call("POST", "/v1/agent/logs", &body, timeout_));
}

Status Client::follow_logs(Logs r, const std::function<bool(const LogLine&)>& sink, Millis every) {
  for (;;) {
    LogsResult got = MD_TRY(logs(r));
    for (const LogLine& l : got.lines)
      if (!sink(l)) return ok();
    r.cursor = std::move(got.cursor);
    if (got.lines.empty()) real_clock().sleep_for(every);
  }
}

Result<std::vector<std::string>> Client::prune(const Prune& r) {
  json body = to_json(r);
  auto j = MD_TRY(call("POST", "/v1/agent/prune", &body, timeout_));
  try {
    return j.at("removed").get<std::vector<std::string>>();
  } catch (const json::exception&) {
    return fail(Errc::kInternal, "unexpected answer from the agent to prune");
  }
}

Status Client::shutdown(bool all) {
  json body = {{"all", all}};
  auto r = call("POST", "/v1/agent/shutdown", &body, all ? Millis(600000) : timeout_);
  if (r || r.error().code() != Errc::kIo) return r ? ok() : fail(std::move(r.error()));
  // The connection broke: fine if the agent is on its way out.
  for (int i = 0; i < 100; ++i) {
    auto st = status();
    if (!st && st.error().code() == Errc::kUnavailable) return ok();
    real_clock().sleep_for(Millis(50));
  }
  return fail(std::move(r.error()));
}

Result<AgentStatus> Client::restart(Millis wait) {
  AgentStatus before = MD_TRY(status());
  json body = {{"restart", true}};
  auto r = call("POST", "/v1/agent/shutdown", &body, timeout_);
  if (!r && r.error().code() != Errc::kIo) return fail(std::move(r.error()));
  auto deadline = real_clock().mono() + wait;
  while (real_clock().mono() < deadline) {
    real_clock().sleep_for(Millis(50));
    auto st = status();
    if (st && st->started_at != before.started_at) return st;
  }
  return fail(Errc::kTimeout, "the agent did not answer within " +
                                  std::to_string(wait.count() / 1000) +
                                  " s of its restart (see its log)");
}

Status send_notify_handoff(const std::filesystem::path& socket, const std::string& body,
                           Millis timeout) {
  http::UnixClient c(socket, timeout);
  auto r =
      MD_TRY(c.request_with_timeout(timeout, "PUT", "/v1/agent/notify", body, "application/json"));
  return r.to_status();
}

}  // namespace md::agent
