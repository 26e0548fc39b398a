// `hosts setup` and `hosts check` over each host's ssh connection, one
// thread per host (host_setup.h).
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <thread>

#include "agent/api.h"
#include "agent/root.h"
#include "core/hash.h"
#include "core/process.h"
#include "deploy/adapters.h"
#include "deploy/host_setup.h"
#include "ssh/ssh.h"

namespace md::deploy {
namespace {

using ssh::shell_quote;

// Seconds since the epoch on the controller's wall clock.
double wall_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// The agent's version through `socket` ("" when none answers, with why).
std::string agent_version(const std::filesystem::path& socket, Millis timeout, std::string* why) {
  auto st = agent::Client(socket, timeout).status();
  if (!st) {
    if (why) *why = st.error().what();
    return "";
  }
  return st->agent_version;
}

// Runs `script` with sh on the host; a non-zero exit is an error with the
// last of its stderr.
Status run_step(ssh::Connection& c, const std::string& script, Millis timeout,
                std::optional<std::string> stdin_text = std::nullopt) {
  ssh::RunResult r = MD_TRY(c.run("sh -c " + shell_quote(script), std::move(stdin_text), timeout));
  if (r.exit_code != 0) {
    std::string err = r.err;
    while (!err.empty() && err.back() == '\n') err.pop_back();
    if (size_t nl = err.rfind('\n'); nl != std::string::npos) err = err.substr(nl + 1);
    return fail(Errc::kFailedPrecondition,
                fmt::format("exit {}{}{}", r.exit_code, err.empty() ? "" : ": ", err));
  }
  return ok();
}

Status apply(ssh::Connection& c, SetupAction a, const SetupTarget& t, const std::string& self,
             const std::string& unit_text) {
  const Millis quick(30000);
  if (a == SetupAction::kInstallBinary) MD_TRY_STATUS(c.put(self, upload_path(t), 0755));
  return run_step(
      c, setup_script(a, t), quick,
      a == SetupAction::kWriteUnit ? std::optional<std::string>(unit_text) : std::nullopt);
}

SetupReport setup_one(const config::Environment& env, size_t i, const secrets::SecretMap& secrets,
                      const std::string& self, SetupTarget& t) {
  const config::Host& h = env.hosts[i];
  SetupReport r;
  r.host = h.name;
  if (h.address == "local") {
    r.skipped = true;
    return r;
  }
  auto failed = [&r](std::string step, const Error& e) {
    r.step = std::move(step);
    r.error = e.what();
    return r;
  };
  auto conn = open_host_ssh(env, i, secrets);
  if (!conn) return failed("connect", conn.error());
  ssh::Connection& c = **conn;
  auto probe = c.run("sh -c " + shell_quote(probe_script(h)), std::nullopt, Millis(30000));
  if (!probe) return failed("probe", probe.error());
  auto o = parse_probe(probe->out);
  if (!o) return failed("probe", o.error());
  t.user = o->user;
  t.home = o->home;
  t.sudo = o->user != "root";
  t.root = h.agent_root.front() == '/' ? h.agent_root : o->home + "/" + h.agent_root;
  t.root = std::filesystem::path(t.root).lexically_normal().string();
  if (!t.root.empty() && t.root.size() > 1 && t.root.back() == '/') t.root.pop_back();
  r.systemd = o->systemd;
  r.binary_sha256 = t.binary_sha256;
  const std::string unit_text = agent_unit_text(t);
  auto socket = c.forward(t.root + "/agent.sock");
  if (!socket) return failed("probe", socket.error());
  o->agent_version = agent_version(*socket, Millis(5000), nullptr);

  for (SetupAction a : plan_setup(t, *o, sha256_hex(unit_text))) {
    if (Status s = apply(c, a, t, self, unit_text); !s)
      return failed(std::string(action_name(a)), s.error());
    r.done.push_back(a);
  }
  // The agent answers with our version: at once when nothing changed, else
  // within a while (a start, a re-exec, systemd's restart).
  std::string why, seen;
  for (int attempt = 0; attempt < 100; ++attempt) {
    seen = agent_version(*socket, Millis(5000), &why);
    if (seen == t.version) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  if (seen != t.version)
    return failed("check agent",
                  Error(Errc::kFailedPrecondition,
                        seen.empty() ? fmt::format("no agent answers on {}/agent.sock after 20 s "
                                                   "({}); see {}/agent.log",
                                                   t.root, why, t.root)
                                     : fmt::format("the agent answers with meshdeploy {}, not {}",
                                                   seen, t.version)));
  r.agent_version = seen;
  return r;
}

// The host's side of `hosts check`, over ssh or (local hosts) a local shell.
using Shell = std::function<Result<ssh::RunResult>(const std::string& script)>;

void measure(HostHealth& out, const Shell& sh, const std::string& root) {
  // WHY three samples, the shortest kept: the host read its clock somewhere
  // in the round trip, so the midpoint is off by at most half of it.
  for (int sample = 0; sample < 3; ++sample) {
    const double before = wall_now();
    auto date = sh("date +%s.%N");
    const double after = wall_now();
    const double rtt_ms = (after - before) * 1000;
    if (!date || date->exit_code != 0) continue;
    char* end = nullptr;
    const double remote = std::strtod(date->out.c_str(), &end);
    if (end == date->out.c_str() || remote <= 0) continue;
    if (out.skew_s && rtt_ms >= out.rtt_ms) continue;
    out.rtt_ms = rtt_ms;
    out.skew_s = clock_skew(before, remote, after);
    out.skew_error_s = rtt_ms / 2000;
  }
  const std::string q = shell_quote(root);
  auto df =
      sh(fmt::format("cd \"$HOME\" 2>/dev/null; df -Pk {} 2>/dev/null || df -Pk "
                     "\"$(dirname {})\"",
                     q, q));
  if (df && df->exit_code == 0)
    if (auto parsed = parse_df(df->out)) {
      out.disk_total_bytes = parsed->first;
      out.disk_free_bytes = parsed->second;
    }
}

HostHealth check_one(const config::Environment& env, size_t i, const secrets::SecretMap& secrets) {
  const config::Host& h = env.hosts[i];
  HostHealth out;
  out.host = h.name;
  out.address = h.address;
  out.binary = h.binary;
  if (h.address == "local") {
    out.reachable = true;
    Shell local = [](const std::string& script) -> Result<ssh::RunResult> {
      proc::RunOptions o;
      o.timeout = Millis(30000);
      proc::RunResult r = MD_TRY(proc::run(proc::Command::shell(script), o));
      return ssh::RunResult{r.ok() ? 0 : 1, r.out, r.err};
    };
    measure(out, local, agent_socket(env).parent_path().string());
    out.agent_version = agent_version(agent_socket(env), Millis(5000), &out.agent_error);
    return out;
  }
  const auto t0 = std::chrono::steady_clock::now();
  auto conn = open_host_ssh(env, i, secrets);
  out.connect_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (!conn) {
    out.connect_error = conn.error().what();
    return out;
  }
  out.reachable = true;
  out.host_key_verified = true;  // ssh::Connection checks strictly, or does not connect
  ssh::Connection& c = **conn;
  Shell remote = [&c](const std::string& script) {
    return c.run("sh -c " + shell_quote(script), std::nullopt, Millis(30000));
  };
  std::string root = h.agent_root;
  if (root.front() != '/') {
    auto home = remote("printf '%s' \"$HOME\"");
    if (home && home->exit_code == 0) root = home->out + "/" + root;
  }
  measure(out, remote, root);
  auto sha =
      remote(fmt::format("[ ! -f {0} ] || sha256sum {0} | cut -c1-64", shell_quote(h.binary)));
  if (sha && sha->exit_code == 0) {
    std::string v = sha->out;
    while (!v.empty() && v.back() == '\n') v.pop_back();
    out.binary_sha256 = v;
  }
  auto socket = c.forward(std::filesystem::path(root).lexically_normal().string() + "/agent.sock");
  if (!socket)
    out.agent_error = socket.error().what();
  else
    out.agent_version = agent_version(*socket, Millis(5000), &out.agent_error);
  return out;
}

template <class T, class F>
std::vector<T> each_host(const config::Environment& env, F fn) {
  std::vector<T> out(env.hosts.size());
  std::vector<std::thread> threads;
  threads.reserve(env.hosts.size());
  for (size_t i = 0; i < env.hosts.size(); ++i)
    threads.emplace_back([&out, &fn, i] { out[i] = fn(i); });
  for (std::thread& t : threads) t.join();
  return out;
}

}  // namespace

std::vector<SetupReport> setup_hosts(const config::Environment& env,
                                     const secrets::SecretMap& secrets, const std::string& self,
                                     const std::string& version,
                                     std::vector<SetupTarget>* targets) {
  std::vector<SetupTarget> local_targets(env.hosts.size());
  std::vector<SetupTarget>& ts = targets ? *targets : local_targets;
  ts.assign(env.hosts.size(), {});
  auto self_sha = sha256_file_hex(self);
  for (size_t i = 0; i < env.hosts.size(); ++i) {
    const config::Host& h = env.hosts[i];
    ts[i].host = h.name;
    ts[i].binary = h.binary;
    ts[i].unit_dir = h.unit_dir;
    ts[i].unit = h.unit;
    ts[i].listen = h.listen;
    ts[i].version = version;
    ts[i].binary_sha256 = self_sha ? *self_sha : "";
  }
  if (!self_sha) {
    std::vector<SetupReport> out(env.hosts.size());
    for (size_t i = 0; i < out.size(); ++i) {
      out[i].host = env.hosts[i].name;
      out[i].step = "read own binary";
      out[i].error = self_sha.error().what();
    }
    return out;
  }
  return each_host<SetupReport>(env,
                                [&](size_t i) { return setup_one(env, i, secrets, self, ts[i]); });
}

std::vector<HostHealth> check_hosts(const config::Environment& env,
                                    const secrets::SecretMap& secrets, const std::string& self,
                                    const std::string& version, const CheckLimits& limits) {
  auto self_sha = sha256_file_hex(self);
  std::vector<HostHealth> out =
      each_host<HostHealth>(env, [&](size_t i) { return check_one(env, i, secrets); });
  for (HostHealth& h : out) judge_health(h, version, self_sha ? *self_sha : "?", limits);
  return out;
}

}  // namespace md::deploy
