// Finding processes by process group or session through /proc (Linux).
// Zombies do not count: kill(-pgid, 0) still succeeds on a group whose only
// members are zombies waiting for init to reap them, which is not "running".
#pragma once

#include <sys/types.h>

#include <vector>

namespace md::supervisor {

// Pids of the live (non-zombie) processes whose process group is `pgid`.
std::vector<pid_t> group_members(pid_t pgid);
// Pids of the live (non-zombie) processes whose session is `sid`.
std::vector<pid_t> session_members(pid_t sid);

}  // namespace md::supervisor
