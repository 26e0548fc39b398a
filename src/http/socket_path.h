// Unix socket files: path checks, stale-file handling, binding with a mode.
// Internal to src/http.
#pragma once

#include <filesystem>

#include "core/error.h"

namespace md::http {

// kInvalidArgument when `path` is empty or longer than a sockaddr_un allows.
Status check_socket_path(const std::filesystem::path& path);

// Binds and listens on `path` with permission bits `mode`, replacing a stale
// socket file (nobody accepts on it). Returns the listening fd (CLOEXEC,
// blocking). Errors as UnixServer::start documents.
Result<int> listen_unix(const std::filesystem::path& path, unsigned mode);

}  // namespace md::http
