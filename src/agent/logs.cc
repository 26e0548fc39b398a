#include "agent/logs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace md::agent {
namespace {
namespace stdfs = std::filesystem;

constexpr uint64_t kMaxRead = 4 << 20;

// Reads [from, to) of a file; fewer bytes if it is shorter.
Result<std::string> read_range(const stdfs::path& p, uint64_t from, uint64_t to) {
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(Errc::kIo, "open " + p.string() + ": " + std::strerror(errno));
  std::string out(to - from, '\0');
  size_t got = 0;
  while (got < out.size()) {
    ssize_t n = ::pread(fd, out.data() + got, out.size() - got, static_cast<off_t>(from + got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  out.resize(got);
  return out;
}

uint64_t size_of(const stdfs::path& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

// Complete lines of `text` (ending in '\n'); returns bytes consumed.
size_t split_lines(std::string_view process, std::string_view text, std::vector<LogLine>& out) {
  size_t start = 0;
  for (size_t nl; (nl = text.find('\n', start)) != std::string_view::npos; start = nl + 1)
    out.push_back(parse_log_line(process, text.substr(start, nl - start)));
  return start;
}

// The last `n` complete lines of a file, and its size.
Result<std::vector<LogLine>> tail_lines(std::string_view process, const stdfs::path& p, int n,
                                        uint64_t size) {
  std::vector<LogLine> lines;
  if (n <= 0 || size == 0) return lines;
  // Read backwards in growing windows until enough newlines are in view.
  for (uint64_t window = 64 << 10;; window *= 4) {
    uint64_t from = size > window ? size - window : 0;
    std::string text = MD_TRY(read_range(p, from, size));
    size_t skip = 0;
    if (from > 0) {
      skip = text.find('\n');
      if (skip == std::string::npos)
        skip = text.size();
      else
        ++skip;  // drop the partial first line
    }
    size_t newlines = std::count(text.begin() + static_cast<long>(skip), text.end(), '\n');
    if (newlines >= static_cast<size_t>(n) || from == 0 || window >= kMaxRead) {
      split_lines(process, std::string_view(text).substr(skip), lines);
      if (lines.size() > static_cast<size_t>(n)) lines.erase(lines.begin(), lines.end() - n);
      return lines;
    }
  }
}

}  // namespace

LogLine parse_log_line(std::string_view process, std::string_view line) {
  LogLine l;
  l.process = std::string(process);
  size_t sp = line.find(' ');
  // "2026-11-22T09:00:00.123Z" is 24 characters.
  if (sp == 24 && line.size() > 0 && line[0] >= '0' && line[0] <= '9' && line[23] == 'Z') {
    l.time = std::string(line.substr(0, sp));
    l.text = std::string(line.substr(sp + 1));
  } else {
    l.text = std::string(line);
  }
  return l;
}

Result<LogsResult> read_logs(const stdfs::path& dir, const Logs& req) {
  std::error_code ec;
  if (!stdfs::is_directory(dir, ec))
    return fail(Errc::kNotFound, "no logs for release " + req.version);
  std::vector<std::pair<std::string, stdfs::path>> files;  // process -> file
  for (auto it = stdfs::directory_iterator(dir, ec); !ec && it != stdfs::directory_iterator();
       it.increment(ec)) {
    if (it->path().extension() != ".log") continue;
    std::string process = it->path().stem().string();
    if (!req.process.empty() && process != req.process) continue;
    files.emplace_back(process, it->path());
  }
  if (files.empty() && !req.process.empty())
    return fail(Errc::kNotFound,
                "no log for process " + req.process + " of release " + req.version);
  std::sort(files.begin(), files.end());

  LogsResult out;
  for (const auto& [process, path] : files) {
    uint64_t size = size_of(path);
    auto at = req.cursor.find(process);
    if (req.cursor.empty()) {
      auto lines = MD_TRY(tail_lines(process, path, req.tail, size));
      out.lines.insert(out.lines.end(), lines.begin(), lines.end());
      out.cursor[process] = size;
      continue;
    }
    uint64_t from = at == req.cursor.end() ? 0 : at->second;
    if (from > size) from = 0;  // rotated: the file started again
    uint64_t to = std::min(size, from + kMaxRead);
    std::string text = MD_TRY(read_range(path, from, to));
    size_t used = split_lines(process, text, out.lines);
    out.cursor[process] = from + used;
  }
  // Merged by time; stable, so each process keeps its own order.
  std::stable_sort(out.lines.begin(), out.lines.end(),
                   [](const LogLine& a, const LogLine& b) { return a.time < b.time; });
  if (req.cursor.empty() && out.lines.size() > static_cast<size_t>(req.tail))
    out.lines.erase(out.lines.begin(), out.lines.end() - req.tail);
  return out;
}

}  // namespace md::agent
