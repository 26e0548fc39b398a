#include "supervisor/proc_scan.h"

#include <dirent.h>

#include <cstdlib>
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
bool read_ids(const std::string& pid, StatIds& out) {
  auto text = fs::read_file("/proc/" + pid + "/stat");
  if (!text) return false;
  size_t close = text->rfind(')');
  if (close == std::string::npos || close + 2 >= text->size()) return false;
  const char* p = text->c_str() + close + 2;
  out.state = *p;
  char* end = nullptr;
  std::strtol(p + 1, &end, 10);            // ppid
  out.pgrp = std::strtol(end, &end, 10);
  out.session = std::strtol(end, &end, 10);
  return true;
}

template <class Match>
std::vector<pid_t> scan(Match match) {
  std::vector<pid_t> out;
  DIR* d = ::opendir("/proc");
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    StatIds ids;
    if (!read_ids(e->d_name, ids) || ids.state == 'Z' || ids.state == 'X') continue;
    if (match(ids)) out.push_back(static_cast<pid_t>(std::atol(e->d_name)));
  }
  ::closedir(d);
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
    if (!read_ids(e->d_name, ids) || ids.state == 'Z' || ids.state == 'X') continue;
    long pid = std::atol(e->d_name);
    if (ids.session != pid || !has_env_entry(e->d_name, env_entry)) continue;
    out.push_back(static_cast<pid_t>(pid));
  }
  ::closedir(d);
  return out;
}

std::vector<pid_t> group_members(pid_t pgid) {
  if (pgid <= 1) return {};
  return scan([pgid](const StatIds& s) { return s.pgrp == pgid; });
}

std::vector<pid_t> session_members(pid_t sid) {
  if (sid <= 1) return {};
  return scan([sid](const StatIds& s) { return s.session == sid; });
}

}  // namespace md::supervisor
