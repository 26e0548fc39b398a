#include "core/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <span>

namespace md::log {
namespace {

// The process-wide configuration, swapped as a whole (copy on write).
struct State {
  std::vector<std::shared_ptr<Sink>> sinks;
  std::shared_ptr<const RedactionFilter> filter;  // null = identity
  const Clock* clock = nullptr;                   // null = real clock
};

std::shared_ptr<const State> default_state() {
  auto s = std::make_shared<State>();
  s->sinks.push_back(std::make_shared<FdSink>(STDERR_FILENO, Format::kText));
  return s;
}

struct Global {
  std::mutex mu;
  std::shared_ptr<const State> state = default_state();
  std::atomic<int> level{static_cast<int>(Level::kInfo)};
};

Global& global() {
  static Global* g = new Global;  // WHY leaked: usable from static destructors
  return *g;
}

std::shared_ptr<const State> snapshot() {
  Global& g = global();
  std::lock_guard lock(g.mu);
  return g.state;
}

template <class F>
void update(F&& change) {
  Global& g = global();
  std::lock_guard lock(g.mu);
  auto next = std::make_shared<State>(*g.state);
  change(*next);
  g.state = std::move(next);
}

void write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // a log line that cannot be written is dropped
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
}

// Length of the valid UTF-8 sequence at s[i], or 0 if invalid.
size_t utf8_len(std::string_view s, size_t i) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k)
    if ((b(i + k) & 0xC0) != 0x80) return 0;
  if (n == 2 && c < 0xC2) return 0;                       // overlong
  if (n == 3 && c == 0xE0 && b(i + 1) < 0xA0) return 0;   // overlong
  if (n == 3 && c == 0xED && b(i + 1) >= 0xA0) return 0;  // surrogate
  if (n == 4 && (c > 0xF4 || (c == 0xF0 && b(i + 1) < 0x90) || (c == 0xF4 && b(i + 1) >= 0x90)))
    return 0;
  return n;
}

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"':
        out += "\\\"";
        ++i;
        continue;
      case '\\':
        out += "\\\\";
        ++i;
        continue;
      case '\n':
        out += "\\n";
        ++i;
        continue;
      case '\r':
        out += "\\r";
        ++i;
        continue;
      case '\t':
        out += "\\t";
        ++i;
        continue;
      default:
        break;
    }
    if (c < 0x20 || c == 0x7F) {
      out += fmt::format("\\u{:04x}", c);
      ++i;
      continue;
    }
    size_t n = utf8_len(s, i);
    if (n == 0) {
      out += "\\ufffd";  // invalid UTF-8 byte: JSON lines must stay valid
      ++i;
      continue;
    }
    out.append(s.substr(i, n));
    i += n;
  }
  out += '"';
}

// Text lines stay one line: control characters are escaped.
void append_text(std::string& out, std::string_view s) {
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (c == '\n')
      out += "\\n";
    else if (c == '\r')
      out += "\\r";
    else if (c == '\t')
      out += '\t';
    else if (c < 0x20 || c == 0x7F)
      out += fmt::format("\\x{:02x}", c);
    else
      out += ch;
  }
}

bool needs_quotes(std::string_view v) {
  if (v.empty()) return true;
  for (char c : v)
    if (c == ' ' || c == '"' || c == '=' || static_cast<unsigned char>(c) < 0x20) return true;
  return false;
}

}  // namespace

std::string_view level_name(Level l) {
  switch (l) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
  }
  return "info";
}

Result<Level> parse_level(std::string_view s) {
  if (s == "debug") return Level::kDebug;
  if (s == "info") return Level::kInfo;
  if (s == "warn" || s == "warning") return Level::kWarn;
  if (s == "error") return Level::kError;
  return fail(Errc::kInvalidArgument,
              "unknown log level '" + std::string(s) + "' (valid: debug, info, warn, error)");
}

Result<Format> parse_format(std::string_view s) {
  if (s == "text") return Format::kText;
  if (s == "json") return Format::kJson;
  return fail(Errc::kInvalidArgument,
              "unknown log format '" + std::string(s) + "' (valid: text, json)");
}

void FdSink::write(Level, std::string_view line) {
  std::lock_guard lock(mu_);
  write_all(fd_, line);
}

Result<std::shared_ptr<FileSink>> FileSink::open(const std::string& path, Format f) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    int err = errno;
    Errc code = err == ENOENT                     ? Errc::kNotFound
                : (err == EACCES || err == EPERM) ? Errc::kPermissionDenied
                                                  : Errc::kIo;
    return fail(code, "open log file " + path + ": " + std::strerror(err));
  }
  return std::shared_ptr<FileSink>(new FileSink(fd, f));
}

FileSink::~FileSink() { ::close(fd_); }

void FileSink::write(Level, std::string_view line) {
  std::lock_guard lock(mu_);
  write_all(fd_, line);
}

void MemorySink::write(Level, std::string_view line) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  std::lock_guard lock(mu_);
  lines_.emplace_back(line);
}

std::vector<std::string> MemorySink::lines() const {
  std::lock_guard lock(mu_);
  return lines_;
}

std::string MemorySink::text() const {
  std::string all;
  for (const std::string& l : lines()) all += l + "\n";
  return all;
}

void set_redaction_filter(RedactionFilter filter) {
  std::shared_ptr<const RedactionFilter> f;
  if (filter) f = std::make_shared<const RedactionFilter>(std::move(filter));
  update([&](State& s) { s.filter = std::move(f); });
}

std::string redact(std::string_view text) {
  auto s = snapshot();
  return s->filter ? (*s->filter)(text) : std::string(text);
}

void set_sinks(std::vector<std::shared_ptr<Sink>> sinks) {
  update([&](State& s) { s.sinks = std::move(sinks); });
}

void add_sink(std::shared_ptr<Sink> sink) {
  update([&](State& s) { s.sinks.push_back(std::move(sink)); });
}

void reset() {
  Global& g = global();
  std::lock_guard lock(g.mu);
  g.state = default_state();
  g.level = static_cast<int>(Level::kInfo);
}

void set_level(Level l) { global().level = static_cast<int>(l); }
Level level() { return static_cast<Level>(global().level.load(std::memory_order_relaxed)); }

void set_clock(const Clock* clock) {
  update([&](State& s) { s.clock = clock; });
}

namespace {

std::string format_fields(Format f, SysTime t, Level level, std::string_view component,
                          std::string_view message, std::span<const Field> fields) {
  std::string out;
  out.reserve(64 + message.size());
  if (f == Format::kJson) {
    out += "{\"time\":\"" + format_time(t) + "\",\"level\":\"";
    out += level_name(level);
    out += "\",\"component\":";
    append_json_string(out, component);
    out += ",\"msg\":";
    append_json_string(out, message);
    for (const Field& fl : fields) {
      out += ',';
      append_json_string(out, fl.first);
      out += ':';
      append_json_string(out, fl.second);
    }
    out += "}\n";
    return out;
  }
  out += format_time(t);
  out += ' ';
  std::string_view name = level_name(level);
  out += name;
  out.append(6 - name.size(), ' ');
  append_text(out, component);
  out += ": ";
  append_text(out, message);
  for (const Field& fl : fields) {
    out += ' ';
    append_text(out, fl.first);
    out += '=';
    if (!needs_quotes(fl.second)) {
      append_text(out, fl.second);
      continue;
    }
    out += '"';
    for (char c : fl.second) {
      if (c == '"' || c == '\\') out += '\\';
      append_text(out, std::string_view(&c, 1));
    }
    out += '"';
  }
  out += '\n';
  return out;
}

}  // namespace

std::string format_line(Format f, SysTime t, Level level, std::string_view component,
                        std::string_view message, Fields fields) {
  return format_fields(f, t, level, component, message,
                       std::span<const Field>(fields.begin(), fields.size()));
}

void emit(Level level, std::string_view component, std::string_view message, Fields fields) {
  if (level < log::level()) return;
  auto s = snapshot();
  if (s->sinks.empty()) return;
  SysTime t = s->clock ? s->clock->now() : real_clock().now();

  // Every free-text part passes the filter before anything is formatted, so
  // no sink of any format can see an unfiltered value.
  std::string msg;
  std::vector<Field> redacted;
  try {
    msg = s->filter ? (*s->filter)(message) : std::string(message);
    redacted.reserve(fields.size());
    for (const Field& fl : fields)
      redacted.emplace_back(fl.first, s->filter ? (*s->filter)(fl.second) : fl.second);
  } catch (...) {
    // WHY: a throwing filter must neither leak the unfiltered text nor crash
    // the caller; the line is replaced by a marker.
    msg = "[log line dropped: redaction filter failed]";
    redacted.clear();
  }
  std::string text_line, json_line;  // formatted once per format in use
  for (const auto& sink : s->sinks) {
    std::string& line = sink->format() == Format::kJson ? json_line : text_line;
    if (line.empty()) line = format_fields(sink->format(), t, level, component, msg, redacted);
    sink->write(level, line);
  }
}

}  // namespace md::log
