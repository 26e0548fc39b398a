// The log writer: `meshdeploy agent log-writer --out FILE [--secrets FILE]`.
// One runs beside every release process, in a session of its own; it owns
// the read end of the process's output pipe and the log file, so neither
// the process nor its logs depend on the agent being alive. Every byte
// passes a streaming redactor before it reaches the disk.
//
// Log file format (docs/agent.md): one line per output line,
//   2026-11-22T09:00:00.123Z <text>
// where <text> is the process's line with every secret masked as [REDACTED]
// (Redactor::Stream: it holds back only a tail that could still become a
// secret, so most lines are written at once; a secret split across reads or
// by a line break is still masked; after `partial_after` without output the
// held tail is released, so a secret whose halves come further apart than
// that in time is not masked).
// A line longer than 64 KiB is split; a partial line is written after 1 s
// without output. Past `max_bytes` the file is renamed to <FILE>.1 (replacing
// it) and a new one is started.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/error.h"
#include "secrets/secrets.h"

namespace md::supervisor {

// The secrets a release's processes get, for its log writers to redact: a
// JSON object {"NAME": "value"} in a file of mode 0600, written atomically.
// The file is the only place the agent keeps secret values at rest (so that
// a restarted agent can restart a crashed process); docs/formats/agent-state.md.
Status write_secrets_file(const std::filesystem::path& path, const secrets::SecretMap& secrets);
// kNotFound if missing; kPermissionDenied if group/other may read it;
// kCorruption if it is not such an object.
Result<secrets::SecretMap> read_secrets_file(const std::filesystem::path& path);

// Raw output in, finished log lines out. Not thread-safe (one per pipe).
class LineFormatter {
 public:
  static constexpr size_t kMaxLine = 64 << 10;
  LineFormatter(std::shared_ptr<const secrets::Redactor> redactor, const Clock& clock);
  // Complete, redacted, timestamped lines ready to append ("" if none yet).
  std::string write(std::string_view chunk);
  // After a pause in output: what the redactor held back (a possible secret
  // prefix), then the pending partial line as a line of its own.
  std::string flush_partial();
  // At EOF: everything left, ending in '\n'.
  std::string finish();

 private:
  std::string take_lines(std::string redacted);
  std::string stamp(std::string_view line) const;
  secrets::Redactor::Stream stream_;
  const Clock& clock_;
  std::string partial_;  // redacted text after the last '\n'
};

struct LogWriterOptions {
  std::filesystem::path out;           // the log file, appended (mode 0600)
  std::filesystem::path secrets_file;  // "" = nothing to redact
  uint64_t max_bytes = 32ull << 20;    // rotate past this size
  Millis partial_after{1000};          // write a partial line after this quiet time
};

// Reads `in_fd` until EOF, appending to options.out. Write failures (disk
// full) drop output rather than block the process; they are reported once on
// stderr. Errors only for a bad start: unreadable secrets file, log file that
// cannot be opened.
Status run_log_writer(int in_fd, const LogWriterOptions& options);

}  // namespace md::supervisor
