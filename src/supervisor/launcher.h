// The real edges of the supervisor: processes (core/process.h) with a
// redacting log writer each, free ports, and HTTP health probes.
#pragma once

#include <filesystem>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "supervisor/cgroup.h"
#include "supervisor/supervisor.h"

namespace md::supervisor {

struct LauncherOptions {
  // The log writer: this argv plus "--out FILE [--secrets FILE]"; it reads
  // the process's output on its stdin. Normally {"<meshdeploy>", "agent",
  // "log-writer"}. Required.
  std::vector<std::string> log_writer_argv;
  // Where log writers' own diagnostics go ("" = /dev/null).
  std::filesystem::path log_writer_errors;
  // cgroup v2: the name of the tree created under the agent's own cgroup
  // (one per agent root, e.g. "meshdeploy-1a2b3c4d"); each process is born
  // in <tree>/<release>/<service>.<index>-<n>. "" = process groups only.
  // Where cgroups cannot be used, the launcher says so once and falls back.
  std::string cgroup_tree;
};

// Starts each process with `/bin/sh -c COMMAND` in the release directory, in
// a session of its own (pgid == sid == pid), with exactly the environment of
// the spec (plus PORT for web processes and the revealed secrets), stdin
// /dev/null, and stdout+stderr on one pipe whose only reader is a log
// writer: a child in a session of its own that redacts and appends to the
// log file. The agent keeps no end of that pipe, so a process outlives the
// agent without ever seeing SIGPIPE, and the log writer exits at EOF once
// the last process of the group has closed it.
//
// Concurrency: thread-safe (internal mutex for the port and child sets).
//
// With cgroups (LauncherOptions::cgroup_tree), signal_group() also signals
// every process of the process's cgroup (SIGKILL: cgroup.kill) and
// group_alive() stays true while that cgroup holds a process, so a stop
// ends only once the daemons the process started are gone too.
class RealLauncher : public Launcher {
 public:
  explicit RealLauncher(LauncherOptions options);
  // Removes the empty cgroups of the tree, and the tree if it is empty
  // (processes left running keep theirs).
  ~RealLauncher() override;
  // True when processes are started in cgroups.
  bool uses_cgroups();
  // Stops what runs in any cgroup of the tree that is not in `known` (the
  // cgroups of the processes a restarted agent re-adopted): SIGTERM, up to
  // `grace` for it to empty, then cgroup.kill; removes them. Returns how
  // many held processes. Blocks up to `grace`. No-op without cgroups.
  int stop_unknown_cgroups(const std::set<std::string>& known, Millis grace);
  // What a stop reaches, for `agent status`: "cgroup v2 (<tree dir>)", or
  // "process groups (<why cgroups are not used>)".
  std::string containment();
  Result<int> allocate_port() override;
  bool port_free(int port) override;
  Result<ProcRef> launch(const ProcessSpec& spec, int port) override;
  Status signal_group(const ProcRef& ref, int sig) override;
  std::optional<ExitInfo> poll(const ProcRef& ref) override;
  bool group_alive(const ProcRef& ref) override;

 private:
  void reap_log_writers();
  // Waits (bounded) for a log writer whose input has closed, then reaps it.
  void end_log_writer(pid_t pid);
  // The cgroup of `ref` if it is one of ours (under the tree), else "".
  std::filesystem::path own_cgroup(const ProcRef& ref) const;
  // <tree>/<release>/<service>.<index>-<n>, new for each run; "" without cgroups.
  std::string cgroup_for(const ProcessSpec& spec);
  void disable_cgroups(const Error& why);
  void disable_cgroups_locked(const Error& why);  // mu_ held
  LauncherOptions options_;
  std::optional<CgroupTree> cgroups_;  // GUARDED_BY(mu_)
  bool warned_ = false;                // GUARDED_BY(mu_): the fallback is logged once
  std::string fallback_reason_;        // GUARDED_BY(mu_): why cgroups are not used
  std::mutex mu_;
  std::set<int> handed_out_;     // ports given to processes; never given twice
  std::set<pid_t> log_writers_;  // our children, reaped as they exit
};

// HTTP GET http://127.0.0.1:<port><path>; 2xx and 3xx pass; a check that
// could not run for lack of descriptors here is inconclusive (nullopt).
// Probes run in parallel, one thread each (in turn when no thread can be had).
class HttpProber : public Prober {
 public:
  std::vector<ProbeResult> probe(const std::vector<ProbeTarget>& targets) override;
};

}  // namespace md::supervisor
