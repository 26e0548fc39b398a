// Reading release logs written by the log writers (supervisor/log_writer.h):
// <root>/logs/<version>/<service>.<index>.log, one timestamped line each.
#pragma once

#include <filesystem>
#include <string_view>

#include "agent/api.h"
#include "core/error.h"

namespace md::agent {

// The lines `req` asks for from the logs in `dir` (one release's):
// - without a cursor: the last req.tail lines (of req.process, or of every
//   process merged by time);
// - with a cursor (process -> byte offset): the complete lines written after
//   it, at most 4 MiB per call; a file that shrank was rotated and is read
//   from its start.
// The answer's cursor points after the last line returned, for every process
// file present. kNotFound: no such release or process log. Blocking (disk).
Result<LogsResult> read_logs(const std::filesystem::path& dir, const Logs& req);

// Splits "<time> <text>" as the log writer writes it.
LogLine parse_log_line(std::string_view process, std::string_view line);

}  // namespace md::agent
