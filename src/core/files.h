// Guards for paths that come from users: what a path may be before we read
// it or make it ours.
#pragma once

#include <filesystem>

#include "core/error.h"

namespace md::fs {

// Opens a file that must be a regular file, for reading, without ever
// blocking in open(): O_NONBLOCK until fstat() said what it is (a FIFO's
// open() would wait for a writer; a device could read forever). Returns the
// descriptor (O_CLOEXEC, blocking again), owned by the caller.
// kInvalidArgument naming the path and its type for a FIFO, socket, device
// or directory; kNotFound / kPermissionDenied / kIo from open().
Result<int> open_regular(const std::filesystem::path& path);

// True for "/" and the directories a system is made of (/etc, /usr, /var,
// /var/lib, /home, /tmp, /proc, ...), which must never become a tool's own
// directory (no chmod, no files of ours). `path` is compared after
// lexically_normal(); pass an absolute path.
bool is_system_dir(const std::filesystem::path& path);

}  // namespace md::fs
