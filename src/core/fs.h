// Local file helpers: whole-file reads and atomic, durable writes.
// Blocking; call them off any I/O thread that must not block.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "core/error.h"

namespace md::fs {

// Reads a whole file. kNotFound if it does not exist, kIo on other failures.
Result<std::string> read_file(const std::filesystem::path& path);

// Replaces `path` with `data` atomically and durably: writes a temp file in the
// same directory, fsyncs it, renames it over `path`, then fsyncs the directory.
// Either the old or the new content is visible afterwards, never a mix; on
// failure the old file is untouched and the temp file is removed. `mode` is the
// new file's permission bits (the umask is not applied); the temp file is 0600
// until its content is complete, so one left by a killed process is private.
// The temp is named "." + filename + ".tmp." + pid + "." + random.
Status atomic_write(const std::filesystem::path& path, std::string_view data, unsigned mode = 0644);

// Creates `dir` and its parents if missing. Not an error if it exists.
Status ensure_dir(const std::filesystem::path& dir, unsigned mode = 0755);

// kPermissionDenied if `path` is readable or writable by group or others
// (for key files). kNotFound if missing.
Status check_private(const std::filesystem::path& path);

}  // namespace md::fs
