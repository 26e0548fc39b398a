#include "supervisor/log_writer.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "core/json.h"

namespace md::supervisor {

Status write_secrets_file(const std::filesystem::path& path, const secrets::SecretMap& secrets) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, value] : secrets) j[name] = value.reveal();
  return fs::atomic_write(path, to_json_text(j), 0600);
}

Result<secrets::SecretMap> read_secrets_file(const std::filesystem::path& path) {
  MD_TRY_STATUS(fs::check_private(path));
  std::string text = MD_TRY(fs::read_file(path));
  secrets::SecretMap out;
  try {
    auto j = nlohmann::json::parse(text);
    if (!j.is_object()) return fail(Errc::kCorruption, path.string() + ": not a JSON object");
    for (const auto& [name, value] : j.items()) {
      if (!value.is_string())
        return fail(Errc::kCorruption, path.string() + ": value of " + name + " is not a string");
      out.emplace(name, secrets::Secret(value.get<std::string>()));
    }
  } catch (const nlohmann::json::exception&) {
    // WHY no e.what(): the parser quotes the text around the error — a secret.
    return fail(Errc::kCorruption, path.string() + ": not valid JSON");
  }
  return out;
}

LineFormatter::LineFormatter(std::shared_ptr<const secrets::Redactor> redactor, const Clock& clock)
    : stream_(std::move(redactor)), clock_(clock) {}

std::string LineFormatter::stamp(std::string_view line) const {
  std::string out = format_time(clock_.now());
  out += ' ';
  out += line;
  out += '\n';
  return out;
}

std::string LineFormatter::take_lines(std::string redacted) {
  partial_ += redacted;
  std::string out;
  size_t start = 0;
  for (;;) {
    size_t nl = partial_.find('\n', start);
    if (nl == std::string::npos || nl - start > kMaxLine) {
      if (partial_.size() - start < kMaxLine) break;
      out += stamp(std::string_view(partial_).substr(start, kMaxLine));
      start += kMaxLine;
      continue;
    }
    out += stamp(std::string_view(partial_).substr(start, nl - start));
    start = nl + 1;
  }
  partial_.erase(0, start);
  return out;
}

std::string LineFormatter::write(std::string_view chunk) {
  // WHY no cut at newlines: a secret may be split by a line break (the
  // redactor masks it in a line-joined view), so the stream decides what to
  // hold; it holds only a tail that could still become a secret.
  return take_lines(stream_.write(chunk));
}

std::string LineFormatter::flush_partial() {
  std::string out = take_lines(stream_.flush());
  if (partial_.empty()) return out;
  out += stamp(partial_);
  partial_.clear();
  return out;
}

std::string LineFormatter::finish() { return flush_partial(); }

namespace {

// The log file: append-only, rotated by size. Drops output it cannot write.
class LogFile {
 public:
  explicit LogFile(const LogWriterOptions& o) : o_(o) {}
  ~LogFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  Status open() {
    fd_ = ::open(o_.out.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd_ < 0)
      return fail(Errc::kIo, "open log file " + o_.out.string() + ": " + std::strerror(errno));
    struct stat st;
    size_ = ::fstat(fd_, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
    return ok();
  }
  void append(std::string_view data) {
    if (data.empty() || fd_ < 0) return;
    while (!data.empty()) {
      ssize_t n = ::write(fd_, data.data(), data.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        if (!warned_) {
          std::string msg = "meshdeploy log-writer: write " + o_.out.string() + ": " +
                            std::strerror(errno) + "; dropping output\n";
          (void)!::write(2, msg.data(), msg.size());
          warned_ = true;
        }
        return;
      }
      data.remove_prefix(static_cast<size_t>(n));
      size_ += static_cast<uint64_t>(n);
    }
    if (size_ > o_.max_bytes) rotate();
  }

 private:
  void rotate() {
    std::filesystem::path old = o_.out;
    old += ".1";
    // WHY check the inode: another writer (an earlier run of this process
    // still draining) may have rotated already; then just reopen.
    struct stat mine, current;
    bool same = ::fstat(fd_, &mine) == 0 && ::stat(o_.out.c_str(), &current) == 0 &&
                mine.st_ino == current.st_ino && mine.st_dev == current.st_dev;
    if (same) ::rename(o_.out.c_str(), old.c_str());
    ::close(fd_);
    fd_ = -1;
    (void)open();
  }

  const LogWriterOptions& o_;
  int fd_ = -1;
  uint64_t size_ = 0;
  bool warned_ = false;
};

}  // namespace

Status run_log_writer(int in_fd, const LogWriterOptions& options) {
  // WHY: the agent's terminal or session ending must not stop log capture;
  // only EOF on the pipe (the process group is gone) ends this loop.
  ::signal(SIGHUP, SIG_IGN);
  ::signal(SIGINT, SIG_IGN);
  ::signal(SIGPIPE, SIG_IGN);
  secrets::SecretMap secrets;
  if (!options.secrets_file.empty())
    secrets = MD_TRY_CTX(read_secrets_file(options.secrets_file), "log writer");
  auto redactor = std::make_shared<const secrets::Redactor>(secrets);
  LogFile file(options);
  MD_TRY_STATUS(file.open());
  LineFormatter lines(redactor, real_clock());
  char buf[65536];
  bool partial_pending = false;
  for (;;) {
    pollfd p{in_fd, POLLIN, 0};
    int timeout = partial_pending ? static_cast<int>(options.partial_after.count()) : -1;
    int r = ::poll(&p, 1, timeout);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) {
      file.append(lines.flush_partial());
      partial_pending = false;
      continue;
    }
    ssize_t n = ::read(in_fd, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) break;
    file.append(lines.write(std::string_view(buf, static_cast<size_t>(n))));
    partial_pending = true;
  }
  file.append(lines.finish());
  return ok();
}

}  // namespace md::supervisor
