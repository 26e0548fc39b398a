// `meshdeploy hosts setup` and `hosts check` below the CLI: bootstrap each
// ssh host's agent (binary, systemd unit, root, a running agent answering
// with the controller's version) and report each host's health (reach,
// version, disk, clock skew). Users' docs: docs/hosts.md.
//
// Deciding is separate from doing: the unit text, the probe script and its
// parser, the plan of what to change, the verdicts and the output are pure
// functions (host_setup.cc, tested exactly); setup_hosts/check_hosts run
// them over each host's ssh connection, one thread per host
// (host_setup_run.cc).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "core/error.h"
#include "secrets/secrets.h"

namespace md::deploy {

// ---- hosts setup: pure parts ----

// What one host must have, from the config and the host's login user.
struct SetupTarget {
  std::string host;           // hosts[].name
  std::string binary;         // hosts[].binary (absolute)
  std::string unit_dir;       // hosts[].unit_dir (absolute)
  std::string unit;           // hosts[].unit, without ".service"
  std::string root;           // the agent root, absolute on the host
  std::string listen;         // hosts[].listen
  std::string user;           // the login user: owns the root, runs the agent
  std::string binary_sha256;  // of the controller's own binary (hex)
  std::string version;        // the controller's version
  std::string home;           // the login user's home (where an upload waits for sudo)
  // The login user is not root: what needs root (the binary, the unit, the
  // root folder, systemctl) runs through `sudo -n` (passwordless sudo, as
  // examples/meshhook/terraform's cloud-init grants the deploy user).
  bool sudo = false;
  std::string unit_path() const { return unit_dir + "/" + unit + ".service"; }
};

// The agent's systemd service unit: `<binary> agent run --root R --listen L`
// as `user`, Restart=on-failure, KillMode=process, Delegate=yes (as
// docs/installation.md describes the shipped unit). Values are quoted and
// '%' escaped as systemd reads them. Pure.
std::string agent_unit_text(const SetupTarget& t);

// The mode the agent root must have (the agent creates its root 0700 and
// reaches nothing else: agent/root.h).
inline constexpr unsigned kAgentRootMode = 0700;

// A shell script that prints what the host has (key=value lines, read by
// parse_probe): login user, home, binary and unit sha256, the root's owner
// and mode, whether systemd runs and the unit is enabled. Changes nothing.
// A relative root is under the login user's home. Pure.
std::string probe_script(const config::Host& h);

// What the host has.
struct SetupObserved {
  std::string user;           // `id -un`
  std::string home;           // $HOME
  std::string binary_sha256;  // "" = no file at hosts[].binary
  std::string unit_sha256;    // "" = no unit file
  bool root_exists = false;   // the agent root is a directory
  std::string root_owner;     // its owner's name
  unsigned root_mode = 0;     // its permission bits
  bool systemd = false;       // /run/systemd/system exists (systemd is PID 1)
  bool unit_enabled = false;  // `systemctl is-enabled` says enabled
  std::string agent_version;  // "" = no agent answers on the root's socket
};
// kInvalidArgument when a line is malformed or user/home are missing. Pure.
Result<SetupObserved> parse_probe(std::string_view out);

// One change setup makes, in the order it makes them.
enum class SetupAction {
  kInstallBinary,   // upload the controller's binary (temp + rename, 0755)
  kWriteUnit,       // write the unit file (temp + rename, 0644)
  kCreateRoot,      // mkdir -p -m 0700 the agent root
  kFixRoot,         // chmod 0700 / chown the login user on the root
  kDaemonReload,    // systemctl daemon-reload (the unit changed)
  kEnableStart,     // systemctl enable --now (not enabled or not answering)
  kRestartUnit,     // systemctl restart (binary or unit changed, or a wrong version answers)
  kStartDetached,   // no systemd, no agent answering: setsid nohup BIN agent run ... &
  kRestartDetached  // no systemd, an agent answers from an old binary: BIN agent restart
};
// "install binary", "write unit", ... (for messages). Pure.
std::string_view action_name(SetupAction a);

// The shell script (for `sh -c`) that carries out `a` on the host, through
// `sudo -n` where t.sudo says and the action needs root. kInstallBinary:
// what installs the binary uploaded to upload_path() (temp + rename). Pure.
std::string setup_script(SetupAction a, const SetupTarget& t);
// Where kInstallBinary uploads the binary before setup_script installs it:
// the login user's home (".meshdeploy-upload-<host>").
std::string upload_path(const SetupTarget& t);

// What setup will change on one host (empty = unchanged). The unit is
// written even without systemd, so it is in place when systemd runs. Pure.
std::vector<SetupAction> plan_setup(const SetupTarget& t, const SetupObserved& o,
                                    std::string_view unit_sha256);

// What happened on one host.
struct SetupReport {
  std::string host;
  bool skipped = false;           // address: local (setup installs over ssh only)
  std::vector<SetupAction> done;  // the changes made
  bool systemd = true;            // false: the agent runs detached (said in the output)
  std::string binary_sha256;      // the installed binary's
  std::string agent_version;      // the version that answered at the end
  std::string step;               // the failed step: "connect", "probe", an action_name,
                                  // "check agent"
  std::string error;              // "" = fine
};
// The report's lines, e.g. "h1: unchanged (binary 0.1.0 sha256 ab12cd34…, unit,
// root, agent answering 0.1.0)". Pure.
std::vector<std::string> format_setup(const SetupReport& r, const SetupTarget& t);

// ---- hosts check: pure parts ----

// Limits of a healthy host.
struct CheckLimits {
  double max_skew_s = 1.0;            // |clock skew| above: a problem (leases compare clocks)
  double min_free_ratio = 0.10;       // free/total under the agent root below: a warning
  uint64_t min_free_bytes = 1 << 30;  // ... or fewer free bytes than this: a warning
};

// What `hosts check` saw on one host.
struct HostHealth {
  std::string host;
  std::string address;             // hosts[].address
  bool reachable = false;          // ssh connected (host key verified) or local
  bool host_key_verified = false;  // ssh checked the key strictly (always, when reachable)
  std::string connect_error;       // why not reachable
  double connect_ms = 0;           // ssh login time
  double rtt_ms = 0;               // one command's round trip over the open connection
  std::optional<double> skew_s;    // host clock - controller clock at the midpoint
  double skew_error_s = 0;         // at most this far off: half the round trip of the sample
  std::string agent_version;       // "" = no agent answered
  std::string agent_error;         // why not
  std::string binary;              // hosts[].binary
  // sha256 of hosts[].binary on the host: "" = no such file; nullopt = not
  // checked (local hosts, which setup does not install)
  std::optional<std::string> binary_sha256;
  std::optional<uint64_t> disk_free_bytes, disk_total_bytes;  // under the agent root
  std::vector<std::string> problems;                          // filled by judge_health
  std::vector<std::string> warnings;
};

// The host clock's offset: `remote` (seconds since the epoch, read on the
// host) minus the controller's clock halfway between `before` and `after`
// (read around the command). Pure.
double clock_skew(double before, double remote, double after);

// Reads `df -Pk` output (header, then one line): total and free bytes.
// kInvalidArgument when it does not look like that. Pure.
Result<std::pair<uint64_t, uint64_t>> parse_df(std::string_view out);

// Fills h.problems and h.warnings: unreachable, no agent, a version other
// than `want_version`, a binary other than the controller's (`want_sha256`),
// a skew surely above limits.max_skew_s (|skew| - skew_error_s) are
// problems; low disk and a skew that may be above it are warnings. Pure.
void judge_health(HostHealth& h, std::string_view want_version, std::string_view want_sha256,
                  const CheckLimits& limits);

// A table, one row per host, then one line per problem and warning. Pure.
std::string format_check_table(const std::vector<HostHealth>& hosts, std::string_view version);
// {"version": ..., "ok": bool, "hosts": [...]} for --json. Pure.
nlohmann::json check_json(const std::vector<HostHealth>& hosts, std::string_view version);

// ---- doing ----

// Sets up every host of `env` in parallel (one thread per host); blocks
// until all are done. `self` is the controller's binary (/proc/self/exe),
// `version` its version. Never fails as a whole: each host's report says
// what it did, or which step failed and why. Local hosts are skipped.
std::vector<SetupReport> setup_hosts(const config::Environment& env,
                                     const secrets::SecretMap& secrets, const std::string& self,
                                     const std::string& version, std::vector<SetupTarget>* targets);

// Checks every host of `env` in parallel (local hosts through the local
// agent socket and a local shell); blocks until all are done; judged with
// `limits` against `version` and the sha256 of `self` (the controller's
// binary).
std::vector<HostHealth> check_hosts(const config::Environment& env,
                                    const secrets::SecretMap& secrets, const std::string& self,
                                    const std::string& version, const CheckLimits& limits);

}  // namespace md::deploy
