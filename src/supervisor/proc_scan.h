// Finding processes by process group or session through /proc (Linux).
// Zombies do not count: kill(-pgid, 0) still succeeds on a group whose only
// members are zombies waiting for init to reap them, which is not "running".
#pragma once

#include <sys/types.h>

#include <string_view>
#include <vector>

namespace md::supervisor {

// Pids of the live (non-zombie) processes whose process group is `pgid`.
std::vector<pid_t> group_members(pid_t pgid);
// Pids of the live (non-zombie) processes whose session is `sid`.
std::vector<pid_t> session_members(pid_t sid);
// Pids of live session leaders (sid == pid) whose environment holds exactly
// the entry `env_entry` ("NAME=value"); only our own processes are readable.
std::vector<pid_t> marked_session_leaders(std::string_view env_entry);

}  // namespace md::supervisor
