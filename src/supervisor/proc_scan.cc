#include "supervisor/proc_scan.h"

#include <dirent.h>
#include <signal.h>

#include <cerrno>
#include <cstdlib>
#include <optional>
#include <string>

#include "core/fs.h"

namespace md::supervisor {
namespace {

struct StatIds {
  char state = '?';
  long pgrp = -1;
  long session = -1;
};

// Fields after the command name, which is in parentheses and may hold
// anything, spaces and ')' included: the last ')' ends it.
bool parse_ids(const std::string& text, StatIds& out) {
  size_t close = text.rfind(')');
  if (close == std::string::npos || close + 2 >= text.size()) return false;
  const char* p = text.c_str() + close + 2;
  out.state = *p;
  char* end = nullptr;
  std::strtol(p + 1, &end, 10);  // ppid
  out.pgrp = std::strtol(end, &end, 10);
  out.session = std::strtol(end, &end, 10);
  return true;
}

enum class Read { kOk, kGone, kUnknown };

// kUnknown when /proc could not be read for a reason of ours (no descriptor
// left); kGone when the process is not there (or its stat is not parseable).
Read read_ids(const std::string& pid, StatIds& out) {
  auto text = fs::read_file("/proc/" + pid + "/stat");
  if (!text) return text.error().code() == Errc::kIo ? Read::kUnknown : Read::kGone;
  return parse_ids(*text, out) ? Read::kOk : Read::kGone;
}

// Pids whose stat matches; nullopt when /proc could not be read completely
// (the caller cannot tell "none" from "could not look").
template <class Match>
std::optional<std::vector<pid_t>> scan(Match match) {
  std::vector<pid_t> out;
  DIR* d = ::opendir("/proc");
  if (!d) return std::nullopt;
  bool complete = true;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    StatIds ids;
    Read r = read_ids(e->d_name, ids);
    if (r == Read::kUnknown) complete = false;
    if (r != Read::kOk || ids.state == 'Z' || ids.state == 'X') continue;
    if (match(ids)) out.push_back(static_cast<pid_t>(std::atol(e->d_name)));
  }
  ::closedir(d);
  if (!complete && out.empty()) return std::nullopt;
  return out;
}

bool has_env_entry(const char* pid, std::string_view entry) {
  auto env = fs::read_file(std::string("/proc/") + pid + "/environ");
  if (!env) return false;
  std::string_view all = *env;
  for (size_t i = 0; i < all.size();) {
    size_t end = all.find('\0', i);
    if (end == std::string_view::npos) end = all.size();
    if (all.substr(i, end - i) == entry) return true;
    i = end + 1;
  }
  return false;
}

}  // namespace

std::vector<pid_t> marked_session_leaders(std::string_view env_entry) {
  std::vector<pid_t> out;
  DIR* d = ::opendir("/proc");
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    StatIds ids;
    if (read_ids(e->d_name, ids) != Read::kOk || ids.state == 'Z' || ids.state == 'X') continue;
    long pid = std::atol(e->d_name);
    if (ids.session != pid || !has_env_entry(e->d_name, env_entry)) continue;
    out.push_back(static_cast<pid_t>(pid));
  }
  ::closedir(d);
  return out;
}

std::vector<pid_t> group_members(pid_t pgid) {
  if (pgid <= 1) return {};
  if (auto found = scan([pgid](const StatIds& s) { return s.pgrp == pgid; })) return *found;
  // /proc could not be read (no descriptor left): ask the kernel, which
  // needs none. It counts zombies too: at worst a stop waits a little longer.
  if (::kill(-pgid, 0) != 0 && errno == ESRCH) return {};
  return {pgid};
}

std::vector<pid_t> session_members(pid_t sid) {
  if (sid <= 1) return {};
  if (auto found = scan([sid](const StatIds& s) { return s.session == sid; })) return *found;
  // WHY the leader only: without /proc a session's members cannot be listed;
  // its leader (pid == sid) is the one the callers signal.
  if (::kill(sid, 0) != 0 && errno == ESRCH) return {};
  return {sid};
}

Liveness liveness(pid_t pid, uint64_t start_time) {
  if (pid <= 0) return Liveness::kGone;
  StatIds ids;
  auto text = fs::read_file("/proc/" + std::to_string(pid) + "/stat");
  if (!text) {
    if (text.error().code() != Errc::kIo) return Liveness::kGone;
    // Not readable for a reason of ours: the kernel can still say "no such
    // process" without a descriptor; otherwise we cannot tell.
    if (::kill(pid, 0) != 0 && errno == ESRCH) return Liveness::kGone;
    return Liveness::kUnknown;
  }
  if (!parse_ids(*text, ids) || ids.state == 'Z' || ids.state == 'X' || ids.state == 'x')
    return Liveness::kGone;
  // Field 22 (start time): the 19th number after the state letter (field 3).
  const char* cur = text->c_str() + text->rfind(')') + 3;
  char* end = nullptr;
  for (int i = 0; i < 18; ++i, cur = end) std::strtoll(cur, &end, 10);
  uint64_t started = std::strtoull(cur, &end, 10);
  return started == start_time ? Liveness::kAlive : Liveness::kGone;
}

}  // namespace md::supervisor
