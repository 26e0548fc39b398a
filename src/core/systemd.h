// The service manager's side of a daemon (libsystemd, the one adapter):
// sockets handed to us (socket activation, or the previous agent across an
// exec), readiness and watchdog notifications. Every call is a no-op or an
// empty answer when no service manager is involved, so daemons call them
// unconditionally.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/error.h"

namespace md::sd {

// The listening sockets passed in $LISTEN_FDS for this pid (fds 3, 4, ...),
// made close-on-exec; the variables are then removed from the environment
// so children do not see them. Empty when none were passed (not an error).
// kInvalidArgument when the variables are malformed. The caller owns the fds.
Result<std::vector<int>> take_listen_fds();

// Replaces this process with `exe argv...`, keeping `fds` open as 3, 4, ...
// and announcing them as $LISTEN_FDS with $LISTEN_PID = this pid (exec keeps
// it), so the new image takes them with take_listen_fds(). Returns only on
// failure (the fds are then still open and owned by the caller).
Status exec_with_listen_fds(const std::string& exe, const std::vector<std::string>& argv,
                            const std::vector<int>& fds);

// Sends a state line ("READY=1", "STOPPING=1", "WATCHDOG=1", "RELOADING=1",
// "STATUS=...") to $NOTIFY_SOCKET. Ignores the lack of a socket; failures to
// send are logged once, never returned (the daemon goes on).
void notify(std::string_view state);

// The interval at which WATCHDOG=1 must be sent ($WATCHDOG_USEC, for this
// pid), or 0 when the watchdog is off.
Millis watchdog_interval();

// This process's command line as it was exec'd (/proc/self/cmdline).
Result<std::vector<std::string>> own_argv();

}  // namespace md::sd
