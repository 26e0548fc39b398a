// Finding processes by process group or session through /proc (Linux).
// Zombies do not count: kill(-pgid, 0) still succeeds on a group whose only
// members are zombies waiting for init to reap them, which is not "running".
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string_view>
#include <vector>

namespace md::supervisor {

// Pids of the live (non-zombie) processes whose process group is `pgid`.
// When /proc cannot be read (no descriptor left) the group is asked with
// kill(-pgid, 0): {pgid} if anything is left in it. Never "empty" on a
// failed read: a failed read is not a dead group.
std::vector<pid_t> group_members(pid_t pgid);
// Pids of the live (non-zombie) processes whose session is `sid` (likewise:
// {sid} when /proc cannot be read and the leader still exists).
std::vector<pid_t> session_members(pid_t sid);

// Is `pid`, started at `start_time` (/proc/<pid>/stat field 22), still
// running? kUnknown when /proc cannot be read for a reason of ours (EMFILE)
// and the process exists: the caller must not conclude it died.
enum class Liveness { kAlive, kGone, kUnknown };
Liveness liveness(pid_t pid, uint64_t start_time);
// Pids of live session leaders (sid == pid) whose environment holds exactly
// the entry `env_entry` ("NAME=value"); only our own processes are readable.
std::vector<pid_t> marked_session_leaders(std::string_view env_entry);

}  // namespace md::supervisor
