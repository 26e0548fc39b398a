// The pure parts of `hosts setup` and `hosts check` (host_setup.h).
#include "deploy/host_setup.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <sstream>

#include "agent/root.h"
#include "ssh/ssh.h"

namespace md::deploy {
namespace {

// One word of a unit's command line or value: '%' and '$' escaped as systemd
// reads them; double quotes around words with blanks or quotes.
std::string unit_word(std::string_view s) {
  std::string out;
  bool quote = s.empty();
  for (char c : s) {
    if (c == '%')
      out += "%%";
    else if (c == '$')
      out += "$$";
    else if (c == '\\' || c == '"')
      out += std::string("\\") + c;
    else
      out += c;
    quote = quote || c == ' ' || c == '\t' || c == '"' || c == '\'' || c == '\\';
  }
  return quote ? "\"" + out + "\"" : out;
}

// The port of "HOST:PORT" ("[v6]:PORT"), 0 when there is none.
int listen_port(std::string_view listen) {
  size_t colon = listen.rfind(':');
  if (colon == std::string_view::npos) return 0;
  int port = 0;
  std::from_chars(listen.data() + colon + 1, listen.data() + listen.size(), port);
  return port;
}

std::string short_sha(std::string_view sha) {
  return sha.size() > 12 ? std::string(sha.substr(0, 12)) + "…" : std::string(sha);
}

std::string describe(SetupAction a, const SetupTarget& t) {
  switch (a) {
    case SetupAction::kInstallBinary:
      return fmt::format("installed binary {} (sha256 {})", t.binary, short_sha(t.binary_sha256));
    case SetupAction::kWriteUnit:
      return "wrote unit " + t.unit_path();
    case SetupAction::kCreateRoot:
      return fmt::format("created root {} ({:04o}, {})", t.root, kAgentRootMode, t.user);
    case SetupAction::kFixRoot:
      return fmt::format("fixed root {} ({:04o}, {})", t.root, kAgentRootMode, t.user);
    case SetupAction::kDaemonReload:
      return "reloaded systemd";
    case SetupAction::kEnableStart:
      return "enabled and started " + t.unit + ".service";
    case SetupAction::kRestartUnit:
      return "restarted " + t.unit + ".service";
    case SetupAction::kStartDetached:
      return "started the agent (detached)";
    case SetupAction::kRestartDetached:
      return "restarted the agent (agent restart)";
  }
  return "?";
}

std::string human_bytes(uint64_t b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", b) : fmt::format("{:.1f} {}", v, units[u]);
}

// Terminal columns of a UTF-8 cell (code points; no wide characters here).
size_t columns(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::optional<double> free_percent(const HostHealth& h) {
  if (!h.disk_free_bytes || !h.disk_total_bytes || *h.disk_total_bytes == 0) return std::nullopt;
  return 100.0 * static_cast<double>(*h.disk_free_bytes) / static_cast<double>(*h.disk_total_bytes);
}

}  // namespace

std::string agent_unit_text(const SetupTarget& t) {
  std::string s;
  s += "# Written by `meshdeploy hosts setup` (host " + t.host +
       "); the next setup rewrites it.\n"
       "# Docs: docs/hosts.md, docs/installation.md.\n"
       "[Unit]\n"
       "Description=meshdeploy host agent (" +
       unit_word(t.root) +
       ")\n"
       "After=network-online.target\n"
       "Wants=network-online.target\n"
       "\n"
       "[Service]\n"
       "Type=notify\n"
       "NotifyAccess=main\n";
  s += "User=" + unit_word(t.user) + "\n";
  s += "ExecStart=" + unit_word(t.binary) + " agent run --root " + unit_word(t.root) +
       " --listen " + unit_word(t.listen) + "\n";
  s += "ExecReload=" + unit_word(t.binary) + " agent restart --root " + unit_word(t.root) + "\n";
  s += "Restart=on-failure\n"
       "RestartSec=1s\n"
       "WatchdogSec=30s\n"
       "TimeoutStopSec=90s\n"
       "# Release processes outlive the agent (a restarted agent re-adopts them).\n"
       "KillMode=process\n"
       "Delegate=yes\n"
       "LimitNOFILE=65536\n";
  const int port = listen_port(t.listen);
  if (port > 0 && port < 1024 && t.user != "root")
    s += "# The proxy listens on a privileged port.\nAmbientCapabilities=CAP_NET_BIND_SERVICE\n";
  s += "\n"
       "[Install]\n"
       "WantedBy=multi-user.target\n";
  return s;
}

std::string probe_script(const config::Host& h) {
  using ssh::shell_quote;
  const std::string unit_path = h.unit_dir + "/" + h.unit + ".service";
  return fmt::format(
      "cd \"$HOME\" 2>/dev/null; printf 'user=%s\\nhome=%s\\n' \"$(id -un)\" \"$HOME\"; "
      "b={}; u={}; r={}; "
      "[ -f \"$b\" ] && printf 'binary=%s\\n' \"$(sha256sum \"$b\" | cut -c1-64)\"; "
      "[ -f \"$u\" ] && printf 'unit=%s\\n' \"$(sha256sum \"$u\" | cut -c1-64)\"; "
      "[ -d \"$r\" ] && printf 'root=%s\\n' \"$(stat -c '%U %a' \"$r\")\"; "
      "if [ -d /run/systemd/system ]; then echo systemd=1; "
      "printf 'enabled=%s\\n' \"$(systemctl is-enabled {} 2>/dev/null)\"; fi; exit 0",
      shell_quote(h.binary), shell_quote(unit_path), shell_quote(h.agent_root),
      shell_quote(h.unit + ".service"));
}

Result<SetupObserved> parse_probe(std::string_view out) {
  SetupObserved o;
  bool user = false, home = false;
  std::istringstream in{std::string(out)};
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const size_t eq = line.find('=');
    if (eq == std::string::npos)
      return fail(Errc::kInvalidArgument, "probe: unexpected line '" + line + "'");
    const std::string key = line.substr(0, eq), v = line.substr(eq + 1);
    if (key == "user") {
      o.user = v;
      user = !v.empty();
    } else if (key == "home") {
      o.home = v;
      home = true;
    } else if (key == "binary") {
      o.binary_sha256 = v;
    } else if (key == "unit") {
      o.unit_sha256 = v;
    } else if (key == "root") {
      const size_t sp = v.rfind(' ');
      if (sp == std::string::npos)
        return fail(Errc::kInvalidArgument, "probe: root '" + v + "' is not 'OWNER MODE'");
      o.root_exists = true;
      o.root_owner = v.substr(0, sp);
      unsigned mode = 0;
      auto [p, ec] = std::from_chars(v.data() + sp + 1, v.data() + v.size(), mode, 8);
      if (ec != std::errc() || p != v.data() + v.size())
        return fail(Errc::kInvalidArgument, "probe: root mode '" + v.substr(sp + 1) + "'");
      o.root_mode = mode;
    } else if (key == "systemd") {
      o.systemd = v == "1";
    } else if (key == "enabled") {
      o.unit_enabled = v == "enabled";
    } else {
      return fail(Errc::kInvalidArgument, "probe: unknown key '" + key + "'");
    }
  }
  if (!user || !home)
    return fail(Errc::kInvalidArgument, "probe: the host did not say its login user and home");
  return o;
}

std::string_view action_name(SetupAction a) {
  switch (a) {
    case SetupAction::kInstallBinary:
      return "install binary";
    case SetupAction::kWriteUnit:
      return "write unit";
    case SetupAction::kCreateRoot:
      return "create root";
    case SetupAction::kFixRoot:
      return "fix root";
    case SetupAction::kDaemonReload:
      return "systemctl daemon-reload";
    case SetupAction::kEnableStart:
      return "systemctl enable --now";
    case SetupAction::kRestartUnit:
      return "systemctl restart";
    case SetupAction::kStartDetached:
      return "start agent";
    case SetupAction::kRestartDetached:
      return "restart agent";
  }
  return "?";
}

std::vector<SetupAction> plan_setup(const SetupTarget& t, const SetupObserved& o,
                                    std::string_view unit_sha256) {
  std::vector<SetupAction> out;
  const bool binary = o.binary_sha256 != t.binary_sha256;
  const bool unit = o.unit_sha256 != unit_sha256;
  const bool answering = !o.agent_version.empty();
  const bool right = o.agent_version == t.version;
  if (binary) out.push_back(SetupAction::kInstallBinary);
  if (unit) out.push_back(SetupAction::kWriteUnit);
  if (!o.root_exists)
    out.push_back(SetupAction::kCreateRoot);
  else if (o.root_owner != t.user || o.root_mode != kAgentRootMode)
    out.push_back(SetupAction::kFixRoot);
  if (o.systemd) {
    if (unit) out.push_back(SetupAction::kDaemonReload);
    if (!o.unit_enabled) out.push_back(SetupAction::kEnableStart);
    if ((!answering && o.unit_enabled) || (answering && (binary || unit || !right)))
      out.push_back(SetupAction::kRestartUnit);
  } else if (!answering) {
    out.push_back(SetupAction::kStartDetached);
  } else if (binary || !right) {
    out.push_back(SetupAction::kRestartDetached);
  }
  return out;
}

std::vector<std::string> format_setup(const SetupReport& r, const SetupTarget& t) {
  std::vector<std::string> out;
  if (r.skipped) {
    out.push_back(r.host +
                  ": skipped: address local (hosts setup installs over ssh; on this machine "
                  "install the .deb or use cmake --install: docs/installation.md)");
    return out;
  }
  std::string did;
  for (SetupAction a : r.done) did += (did.empty() ? "" : ", ") + describe(a, t);
  if (!r.error.empty()) {
    out.push_back(fmt::format("{}: failed at step '{}': {}", r.host, r.step, r.error));
    if (!did.empty()) out.push_back(r.host + ": done before the failure: " + did);
  } else if (r.done.empty()) {
    out.push_back(fmt::format("{}: unchanged (binary {} sha256 {}, unit, root, agent answering {})",
                              r.host, r.agent_version, short_sha(r.binary_sha256),
                              r.agent_version));
  } else {
    out.push_back(fmt::format("{}: changed: {}; agent answering {}", r.host, did, r.agent_version));
  }
  if (!r.systemd)
    out.push_back(r.host +
                  ": note: systemd is not running there (no /run/systemd/system): the agent "
                  "runs detached and is not restarted if it fails");
  return out;
}

double clock_skew(double before, double remote, double after) {
  return remote - (before + after) / 2;
}

Result<std::pair<uint64_t, uint64_t>> parse_df(std::string_view out) {
  std::istringstream in{std::string(out)};
  std::string header, line;
  std::getline(in, header);
  std::getline(in, line);
  std::istringstream words(line);
  std::string fs;
  uint64_t blocks = 0, used = 0, avail = 0;
  if (header.rfind("Filesystem", 0) != 0 || !(words >> fs >> blocks >> used >> avail))
    return fail(Errc::kInvalidArgument, "df: unexpected output");
  return std::make_pair(blocks * 1024, avail * 1024);
}

void judge_health(HostHealth& h, std::string_view want_version, std::string_view want_sha256,
                  const CheckLimits& limits) {
  h.problems.clear();
  h.warnings.clear();
  if (!h.reachable) {
    h.problems.push_back("unreachable: " + h.connect_error);
    return;
  }
  if (h.agent_version.empty())
    h.problems.push_back("no agent answers" +
                         (h.agent_error.empty() ? std::string() : ": " + h.agent_error) +
                         " (meshdeploy hosts setup starts it)");
  else if (h.agent_version != want_version)
    h.problems.push_back(fmt::format(
        "the agent runs meshdeploy {}, the controller {} (meshdeploy hosts setup installs it)",
        h.agent_version, want_version));
  if (h.binary_sha256 && h.binary_sha256->empty())
    h.problems.push_back(h.binary + " is missing (meshdeploy hosts setup installs it)");
  else if (h.binary_sha256 && *h.binary_sha256 != want_sha256)
    h.problems.push_back(fmt::format(
        "{} differs from the controller's binary (sha256 {}, want {}; meshdeploy hosts setup "
        "installs it)",
        h.binary, short_sha(*h.binary_sha256), short_sha(want_sha256)));
  if (!h.skew_s)
    h.problems.push_back("the host's clock could not be read");
  else if (std::fabs(*h.skew_s) - h.skew_error_s > limits.max_skew_s)
    h.problems.push_back(fmt::format(
        "clock off by {:+.3f} s (more than {} s: leases and deploy times compare clocks; sync "
        "it with NTP)",
        *h.skew_s, limits.max_skew_s));
  else if (std::fabs(*h.skew_s) + h.skew_error_s > limits.max_skew_s)
    h.warnings.push_back(fmt::format(
        "clock off by {:+.3f} s ± {:.3f} s: maybe more than {} s (a slow round trip blurs it)",
        *h.skew_s, h.skew_error_s, limits.max_skew_s));
  if (auto pct = free_percent(h)) {
    if (*pct < limits.min_free_ratio * 100 || *h.disk_free_bytes < limits.min_free_bytes)
      h.warnings.push_back(fmt::format("low disk under the agent root: {} free ({:.0f}%)",
                                       human_bytes(*h.disk_free_bytes), *pct));
  } else {
    h.warnings.push_back("disk space under the agent root unknown");
  }
}

std::string format_check_table(const std::vector<HostHealth>& hosts, std::string_view version) {
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"HOST", "REACHABLE", "HOST KEY", "AGENT", "CLOCK SKEW", "DISK FREE", "STATUS"});
  size_t bad = 0;
  for (const HostHealth& h : hosts) {
    const bool ssh = h.address != "local";
    std::vector<std::string> row{h.host};
    row.push_back(!h.reachable ? "no" : fmt::format("yes (rtt {:.0f} ms)", h.rtt_ms));
    row.push_back(!ssh ? "local" : h.host_key_verified ? "verified" : "-");
    row.push_back(h.agent_version.empty() ? "-" : h.agent_version);
    row.push_back(h.skew_s ? fmt::format("{:+.3f} s ±{:.3f}", *h.skew_s, h.skew_error_s) : "-");
    auto pct = free_percent(h);
    row.push_back(pct ? fmt::format("{} ({:.0f}%)", human_bytes(*h.disk_free_bytes), *pct) : "-");
    row.push_back(!h.problems.empty() ? "PROBLEM" : !h.warnings.empty() ? "warning" : "ok");
    bad += h.problems.empty() ? 0 : 1;
    rows.push_back(std::move(row));
  }
  std::vector<size_t> width(rows.front().size(), 0);
  for (const auto& row : rows)
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], columns(row[i]));
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 == row.size()) break;
      line += std::string(width[i] - columns(row[i]) + 2, ' ');
    }
    out += line + "\n";
  }
  for (const HostHealth& h : hosts) {
    for (const std::string& p : h.problems) out += h.host + ": problem: " + p + "\n";
    for (const std::string& w : h.warnings) out += h.host + ": warning: " + w + "\n";
  }
  if (bad == 0)
    out += fmt::format("all {} host(s) fine (controller {})\n", hosts.size(), version);
  else
    out +=
        fmt::format("{} of {} host(s) have problems (controller {})\n", bad, hosts.size(), version);
  return out;
}

nlohmann::json check_json(const std::vector<HostHealth>& hosts, std::string_view version) {
  nlohmann::json list = nlohmann::json::array();
  bool all = true;
  for (const HostHealth& h : hosts) {
    nlohmann::json j{{"name", h.host},
                     {"address", h.address},
                     {"reachable", h.reachable},
                     {"host_key_verified", h.host_key_verified},
                     {"connect_ms", h.connect_ms},
                     {"rtt_ms", h.rtt_ms},
                     {"agent_version", h.agent_version},
                     {"binary", h.binary},
                     {"problems", h.problems},
                     {"warnings", h.warnings},
                     {"ok", h.problems.empty()}};
    if (!h.connect_error.empty()) j["connect_error"] = h.connect_error;
    j["binary_sha256"] = h.binary_sha256 ? nlohmann::json(*h.binary_sha256) : nlohmann::json();
    j["skew_s"] = h.skew_s ? nlohmann::json(*h.skew_s) : nlohmann::json();
    j["skew_error_s"] = h.skew_error_s;
    j["disk_free_bytes"] =
        h.disk_free_bytes ? nlohmann::json(*h.disk_free_bytes) : nlohmann::json();
    j["disk_total_bytes"] =
        h.disk_total_bytes ? nlohmann::json(*h.disk_total_bytes) : nlohmann::json();
    auto pct = free_percent(h);
    j["disk_free_percent"] = pct ? nlohmann::json(std::round(*pct * 10) / 10) : nlohmann::json();
    all = all && h.problems.empty();
    list.push_back(std::move(j));
  }
  return {{"version", version}, {"ok", all}, {"hosts", list}};
}

std::string upload_path(const SetupTarget& t) {
  // WHY the home: the login user may write there without sudo; one file per
  // host name, as hosts sharing a machine (the tests) upload at once.
  return t.home + "/.meshdeploy-upload-" + t.host;
}

std::string setup_script(SetupAction a, const SetupTarget& t) {
  using ssh::shell_quote;
  const std::string bin = shell_quote(t.binary), root = shell_quote(t.root);
  auto admin = [&t](const std::string& script) {
    return t.sudo ? "sudo -n sh -c " + ssh::shell_quote(script) : script;
  };
  switch (a) {
    case SetupAction::kInstallBinary:
      return admin(
          fmt::format("set -e; mkdir -p \"$(dirname {0})\"; cp {1} {0}.meshdeploy-tmp; chmod 0755 "
                      "{0}.meshdeploy-tmp; mv -f {0}.meshdeploy-tmp {0}; rm -f {1}",
                      bin, shell_quote(upload_path(t))));
    case SetupAction::kWriteUnit:
      return admin(fmt::format(
          "set -e; p={}; mkdir -p \"$(dirname \"$p\")\"; t=\"$p.meshdeploy-tmp\"; cat >\"$t\"; "
          "chmod 0644 \"$t\"; mv -f \"$t\" \"$p\"",
          shell_quote(t.unit_path())));
    case SetupAction::kCreateRoot:
      return admin(fmt::format("mkdir -p {0} && chmod {1:o} {0}{2}", root, kAgentRootMode,
                               t.sudo ? " && chown " + shell_quote(t.user) + " " + root : ""));
    case SetupAction::kFixRoot:
      return admin(
          fmt::format("chmod {1:o} {0} && {{ [ \"$(stat -c %U {0})\" = {2} ] || chown {2} {0}; }}",
                      root, kAgentRootMode, shell_quote(t.user)));
    case SetupAction::kDaemonReload:
      return admin("systemctl daemon-reload");
    case SetupAction::kEnableStart:
      return admin("systemctl enable --now " + shell_quote(t.unit + ".service"));
    case SetupAction::kRestartUnit:
      return admin("systemctl restart " + shell_quote(t.unit + ".service"));
    case SetupAction::kStartDetached:
      // As the login user (it owns the root). WHY the marker first: the agent
      // takes an empty root or one meshdeploy made (agent/root.h), and its
      // log in the root would make it neither. WHY setsid -f and every
      // descriptor redirected: the agent must outlive this ssh session, and
      // the session ends only when no process holds it.
      return fmt::format(
          "set -e; cd {0}; [ -n \"$(ls -A)\" ] || {{ printf '%s\\n' {3} >{4}; chmod 0600 {4}; "
          "}}; setsid -f nohup {1} agent run --root {0} --listen {2} </dev/null >>agent.log 2>&1",
          root, bin, shell_quote(t.listen),
          shell_quote("meshdeploy agent root: this directory and its content belong to "
                      "`meshdeploy agent run` (docs/agent.md)"),
          agent::kRootMarker);
    case SetupAction::kRestartDetached:
      return fmt::format("{} agent restart --root {} >/dev/null", bin, root);
  }
  return "";
}

}  // namespace md::deploy
