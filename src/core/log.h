// Logging for every subsystem: levels, a component name, plain text or JSON
// lines, and one process-wide redaction filter that every line passes through
// before any sink sees it.
//
//   md::log::Logger log("proxy");
//   log.info("switched {} to {}", service, version);
//   log.warn("upstream slow", {{"target", addr}, {"p99_ms", "812"}});
//
// Concurrency: every function here is thread-safe. The sink list and the
// redaction filter are immutable snapshots swapped under a mutex; a sink
// writes each line with one call under its own mutex, so lines from several
// threads never interleave.
#pragma once

#include <fmt/format.h>

#include <cstdio>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/error.h"

namespace md::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };
enum class Format { kText, kJson };

// "debug", "info", "warn", "error".
std::string_view level_name(Level l);
// Accepts the names above (and "warning"); kInvalidArgument listing them otherwise.
Result<Level> parse_level(std::string_view s);
// Accepts "text" and "json"; kInvalidArgument otherwise.
Result<Format> parse_format(std::string_view s);

// One extra key=value on a line. Keys are code constants; values may carry
// user data and are redacted like the message.
using Field = std::pair<std::string_view, std::string>;
using Fields = std::initializer_list<Field>;

// A destination for finished lines. write() gets one complete line, already
// redacted and formatted in format(), with a trailing '\n'.
class Sink {
 public:
  explicit Sink(Format f) : format_(f) {}
  virtual ~Sink() = default;
  Format format() const { return format_; }
  virtual void write(Level level, std::string_view line) = 0;

 private:
  Format format_;
};

// Writes to a file descriptor (default sink: stderr, fd 2). Does not own fd.
class FdSink : public Sink {
 public:
  explicit FdSink(int fd, Format f = Format::kText) : Sink(f), fd_(fd) {}
  void write(Level level, std::string_view line) override;

 private:
  std::mutex mu_;
  int fd_;
};

// Appends to a file it opens (O_APPEND, O_CLOEXEC, mode 0600) and owns.
class FileSink : public Sink {
 public:
  ~FileSink() override;
  // kIo / kPermissionDenied / kNotFound (missing directory) on failure.
  static Result<std::shared_ptr<FileSink>> open(const std::string& path, Format f);
  void write(Level level, std::string_view line) override;

 private:
  FileSink(int fd, Format f) : Sink(f), fd_(fd) {}
  std::mutex mu_;
  int fd_;
};

// Keeps lines in memory, for tests.
class MemorySink : public Sink {
 public:
  explicit MemorySink(Format f = Format::kText) : Sink(f) {}
  void write(Level level, std::string_view line) override;
  std::vector<std::string> lines() const;  // copies, without the trailing '\n'
  std::string text() const;                // everything, concatenated

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

// The redaction hook: text in, text with every secret masked out. Installed by
// the secrets subsystem (which lives above core) once it knows the values.
using RedactionFilter = std::function<std::string(std::string_view)>;

// Replaces the process-wide filter (nullptr removes it). Lines logged after
// the call returns pass the new filter. The filter must be thread-safe.
void set_redaction_filter(RedactionFilter filter);
// Applies the current filter (identity when none). For code that writes user
// or process output somewhere other than a log sink and wants the same mask.
std::string redact(std::string_view text);

// Replaces every sink. An empty list drops all lines.
void set_sinks(std::vector<std::shared_ptr<Sink>> sinks);
void add_sink(std::shared_ptr<Sink> sink);
// Back to the start state: one text FdSink on stderr, level info, no filter,
// the real clock.
void reset();
// Lines below `level` are dropped before formatting. Default kInfo.
void set_level(Level level);
Level level();
// The clock that stamps lines (tests pass a FakeClock). Not owned; must
// outlive its use. nullptr restores the real clock.
void set_clock(const Clock* clock);

// Formats one line exactly as a sink of format `f` receives it (no filter
// applied here). Exposed for tests and for tools that re-emit records.
std::string format_line(Format f, SysTime t, Level level, std::string_view component,
                        std::string_view message, Fields fields = {});

// Emits one record: filter -> format per sink -> every sink. Never throws,
// never fails (a sink that cannot write drops the line).
void emit(Level level, std::string_view component, std::string_view message, Fields fields = {});

// A named source of log lines. Cheap to copy; holds only its component name.
class Logger {
 public:
  explicit Logger(std::string component) : component_(std::move(component)) {}
  const std::string& component() const { return component_; }

  void log(Level l, std::string_view msg, Fields fields = {}) const {
    if (l >= level()) emit(l, component_, msg, fields);
  }
  void debug(std::string_view msg, Fields f = {}) const { log(Level::kDebug, msg, f); }
  void info(std::string_view msg, Fields f = {}) const { log(Level::kInfo, msg, f); }
  void warn(std::string_view msg, Fields f = {}) const { log(Level::kWarn, msg, f); }
  void error(std::string_view msg, Fields f = {}) const { log(Level::kError, msg, f); }

  // fmt-style: log.info("started {} on {}", name, port). Arguments are
  // formatted only when the level is enabled.
  template <class... A>
  requires(sizeof...(A) > 0) void debug(fmt::format_string<A...> f, A&&... a) const {
    logf(Level::kDebug, f, std::forward<A>(a)...);
  }
  template <class... A>
  requires(sizeof...(A) > 0) void info(fmt::format_string<A...> f, A&&... a) const {
    logf(Level::kInfo, f, std::forward<A>(a)...);
  }
  template <class... A>
  requires(sizeof...(A) > 0) void warn(fmt::format_string<A...> f, A&&... a) const {
    logf(Level::kWarn, f, std::forward<A>(a)...);
  }
  template <class... A>
  requires(sizeof...(A) > 0) void error(fmt::format_string<A...> f, A&&... a) const {
    logf(Level::kError, f, std::forward<A>(a)...);
  }

 private:
  template <class... A>
  void logf(Level l, fmt::format_string<A...> f, A&&... a) const {
    if (l >= level()) emit(l, component_, fmt::format(f, std::forward<A>(a)...));
  }
  std::string component_;
};

}  // namespace md::log
