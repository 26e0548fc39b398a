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

}  // namespace

std::vector<pid_t> group_members(pid_t pgid) {
  if (pgid <= 1) return {};
  return scan([pgid](const StatIds& s) { return s.pgrp == pgid; });
}

std::vector<pid_t> session_members(pid_t sid) {
  if (sid <= 1) return {};
  return scan([sid](const StatIds& s) { return s.session == sid; });
}

}  // namespace md::supervisor
