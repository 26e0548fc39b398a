#include "agent/release_store.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "agent/disk_need.h"
#include "core/clock.h"
#include "core/files.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/json.h"
#include "core/log.h"

namespace md::agent {
namespace stdfs = std::filesystem;
namespace {

constexpr std::string_view kTmpPrefix = ".tmp-";

std::vector<std::string_view> split_path(std::string_view p) {
  std::vector<std::string_view> parts;
  size_t i = 0;
  while (i <= p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    parts.push_back(p.substr(i, j - i));
    i = j + 1;
  }
  return parts;
}

Error bad_entry(std::string_view path, std::string_view why) {
  return Error(Errc::kInvalidArgument, "entry '" + std::string(path) + "': " + std::string(why));
}

Error errno_error(std::string_view what, const stdfs::path& p, int err) {
  Errc code = err == ENOENT                     ? Errc::kNotFound
              : (err == EACCES || err == EPERM) ? Errc::kPermissionDenied
                                                : Errc::kIo;
  return Error(code, std::string(what) + " " + p.string() + ": " + std::strerror(err));
}

// Removes a directory tree without following symlinks; first renames it to a
// temp name so a crash never leaves a half-removed release under its name.
void remove_tree(const stdfs::path& dir, const stdfs::path& parent) {
  static std::atomic<int> seq{0};
  stdfs::path doomed = parent / (std::string(kTmpPrefix) + "rm-" + std::to_string(::getpid()) +
                                 "-" + std::to_string(seq++));
  std::error_code ec;
  stdfs::rename(dir, doomed, ec);
  stdfs::remove_all(ec ? dir : doomed, ec);
}

struct ArchiveCloser {
  void operator()(archive* a) const {
    if (a) archive_read_free(a);
  }
};
struct DiskCloser {
  void operator()(archive* a) const {
    if (a) archive_write_free(a);
  }
};

// The artifact, read once: libarchive pulls its bytes through read(), which
// hashes them on the way, so the checksum costs no second pass.
class Source {
 public:
  explicit Source(int fd) : fd_(fd), buf_(1 << 17) {}
  static la_ssize_t read(archive* a, void* self, const void** out) {
    auto* s = static_cast<Source*>(self);
    for (;;) {
      ssize_t n = ::read(s->fd_, s->buf_.data(), s->buf_.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        archive_set_error(a, errno, "read artifact: %s", std::strerror(errno));
        return -1;
      }
      s->hash_.update(s->buf_.data(), static_cast<size_t>(n));
      *out = s->buf_.data();
      return n;
    }
  }
  // Reads what libarchive left (a trailer, garbage after the archive) and
  // returns the hex SHA-256 of the whole file, or kIo.
  Result<std::string> finish() {
    for (;;) {
      ssize_t n = ::read(fd_, buf_.data(), buf_.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return fail(Errc::kIo, std::string("read artifact: ") + std::strerror(errno));
      if (n == 0) return hash_.hex();
      hash_.update(buf_.data(), static_cast<size_t>(n));
    }
  }

 private:
  int fd_;
  std::vector<char> buf_;
  Sha256 hash_;
};

// What the unpacker has written so far, to check links against.
enum class Kind { kDir, kFile, kSymlink };

// Unpacks entry by entry: directories and symlinks through libarchive's disk
// writer (with its own symlink and ".." guards on top of ours), regular
// files as objects of the content-addressed store hard-linked in place, and
// hardlink entries as links to a file written earlier. WHY files are not
// left to libarchive: it writes *into* an existing path (a hardlink entry
// with data writes into its target), which would write into a shared object.
class Unpacker {
 public:
  Unpacker(stdfs::path dest, const UnpackLimits& limits, ObjectStore& objects,
           std::vector<ObjectKey>* created)
      : dest_(std::move(dest)), limits_(limits), objects_(objects), created_(created) {}

  Status run(Source& src) {
    std::unique_ptr<archive, ArchiveCloser> in(archive_read_new());
    std::unique_ptr<archive, DiskCloser> out(archive_write_disk_new());
    if (!in || !out) return fail(Errc::kInternal, "libarchive: out of memory");
    archive_read_support_filter_gzip(in.get());
    archive_read_support_filter_zstd(in.get());
    archive_read_support_format_tar(in.get());
    // WHY no ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS: every path handed to the
    // writer is absolute (dest_ + checked entry path), because chdir() is not
    // an option in a multi-threaded daemon. The entry paths are checked above.
    archive_write_disk_set_options(out.get(), ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM |
                                                  ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                                  ARCHIVE_EXTRACT_SECURE_NODOTDOT);
    if (archive_read_open(in.get(), &src, nullptr, &Source::read, nullptr) != ARCHIVE_OK)
      return fail(Errc::kCorruption,
                  std::string("open archive: ") + archive_error_string(in.get()));
    bool first = true;
    for (;;) {
      archive_entry* e = nullptr;
      int r = archive_read_next_header(in.get(), &e);
      if (r == ARCHIVE_EOF) break;
      if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
        return fail(Errc::kCorruption,
                    std::string("read archive: ") + archive_error_string(in.get()));
      if (first) {
        int filter = archive_filter_code(in.get(), 0);
        if (filter != ARCHIVE_FILTER_GZIP && filter != ARCHIVE_FILTER_ZSTD)
          return fail(Errc::kInvalidArgument, "not a .tar.gz or .tar.zst archive (compression: " +
                                                  std::string(archive_filter_name(in.get(), 0)) +
                                                  ")");
        first = false;
      }
      if (++entries_ > limits_.max_entries)
        return fail(Errc::kInvalidArgument,
                    "more than " + std::to_string(limits_.max_entries) + " entries");
      MD_TRY_STATUS(extract(in.get(), out.get(), e));
    }
    if (first) return fail(Errc::kCorruption, "empty archive");
    if (archive_write_close(out.get()) != ARCHIVE_OK)
      return fail(write_failed(out.get(), "finish unpack"));
    return ok();
  }

  uint64_t files() const { return files_; }
  // Every directory of the release, relative ("" is its root).
  std::vector<std::string> dirs() const {
    std::vector<std::string> out{""};
    for (const auto& [path, kind] : written_)
      if (kind == Kind::kDir) out.push_back(path);
    return out;
  }
  uint64_t new_objects() const { return created_->size(); }
  // The last failure was ENOSPC or EDQUOT.
  bool disk_full() const { return disk_full_; }

 private:
  // Refuses an entry whose parent path goes through a symlink written earlier.
  Status check_parents(std::string_view path, std::string_view raw) const {
    for (size_t i = path.find('/'); i != std::string_view::npos; i = path.find('/', i + 1)) {
      auto it = written_.find(std::string(path.substr(0, i)));
      if (it != written_.end() && it->second != Kind::kDir)
        return fail(bad_entry(raw, "goes through a symlink or file in the archive"));
    }
    return ok();
  }

  // Creates the parents of `path` the archive did not list (as libarchive
  // would); check_parents() has made sure none is a symlink or a file.
  Status make_parents(std::string_view path) {
    for (size_t i = path.find('/'); i != std::string_view::npos; i = path.find('/', i + 1)) {
      std::string parent(path.substr(0, i));
      if (written_.count(parent)) continue;
      stdfs::path at = dest_ / parent;
      if (::mkdir(at.c_str(), 0755) != 0 && errno != EEXIST) {
        disk_full_ = disk_full_ || is_disk_full_errno(errno);
        return fail(errno_error("create", at, errno));
      }
      written_[parent] = Kind::kDir;
    }
    return ok();
  }

  // Runs `make` (link(2)-like: 0 or -1 with errno) at `at`; an earlier entry
  // at the same path is replaced, unless it is a directory.
  Status place(const stdfs::path& at, std::string_view raw, const std::function<Status()>& make) {
    auto st = make();
    if (st || st.error().code() != Errc::kAlreadyExists) return st;
    struct stat old;
    if (::lstat(at.c_str(), &old) == 0 && S_ISDIR(old.st_mode))
      return fail(bad_entry(raw, "replaces a directory written earlier"));
    if (::unlink(at.c_str()) != 0) return fail(errno_error("replace", at, errno));
    return make();
  }

  // A failed write through libarchive; remembers whether the disk or quota was full.
  Error write_failed(archive* out, const std::string& what) {
    disk_full_ = disk_full_ || is_disk_full_errno(archive_errno(out));
    return Error(Errc::kIo, what + ": " + archive_error_string(out));
  }

  // WHY errno: the object store's errors come straight from the failing call
  // (only successful calls follow it), and all that matters is a full disk.
  Status write_file(archive* in, archive_entry* e, const std::string& path, const std::string& raw,
                    mode_t perm) {
    Status st = write_object(in, e, path, raw, perm);
    if (!st) disk_full_ = disk_full_ || is_disk_full_errno(errno);
    return st;
  }

  Status write_object(archive* in, archive_entry* e, const std::string& path,
                      const std::string& raw, mode_t perm) {
    ObjectStore::Writer w(objects_);
    for (;;) {
      const void* buf;
      size_t size;
      la_int64_t offset;
      int r = archive_read_data_block(in, &buf, &size, &offset);
      if (r == ARCHIVE_EOF) break;
      if (r != ARCHIVE_OK)
        return fail(Errc::kCorruption, "read '" + raw + "': " + archive_error_string(in));
      // A sparse entry: its holes read as zeros.
      while (static_cast<uint64_t>(offset) > w.size()) {
        static const char zeros[4096] = {};
        uint64_t gap = std::min<uint64_t>(sizeof zeros, static_cast<uint64_t>(offset) - w.size());
        MD_TRY_STATUS(w.write(zeros, gap));
      }
      MD_TRY_STATUS(w.write(buf, size));
    }
    std::optional<int64_t> mtime;
    if (archive_entry_mtime_is_set(e)) mtime = archive_entry_mtime(e);
    bool created = false;
    ObjectKey key = MD_TRY(w.commit((perm & 0111) != 0, mtime, &created).map_error([&](Error err) {
      return std::move(err).with_context("unpack '" + raw + "'");
    }));
    if (created) created_->push_back(key);
    ++files_;
    stdfs::path at = dest_ / path;
    return place(at, raw, [&] { return objects_.link_into(key, at); });
  }

  Status extract(archive* in, archive* out, archive_entry* e) {
    const char* raw_c = archive_entry_pathname(e);
    std::string raw = raw_c ? raw_c : "";
    std::string path = MD_TRY(normalize_entry_path(raw).map_error(
        [&](const Error& err) { return bad_entry(raw, err.message()); }));
    mode_t type = archive_entry_filetype(e);
    const char* hard = archive_entry_hardlink(e);
    mode_t perm = archive_entry_perm(e);
    if (perm & (S_ISUID | S_ISGID)) return fail(bad_entry(raw, "setuid/setgid bit refused"));
    if (path.empty()) {
      if (type == AE_IFDIR && !hard) return ok();  // "./" itself
      return fail(bad_entry(raw, "names the release root"));
    }
    MD_TRY_STATUS(check_parents(path, raw));
    if (hard) {
      std::string target = MD_TRY(normalize_entry_path(hard).map_error(
          [&](const Error& err) { return bad_entry(raw, "hardlink target: " + err.message()); }));
      auto it = written_.find(target);
      if (it == written_.end() || it->second != Kind::kFile)
        return fail(bad_entry(raw, "hardlink to '" + std::string(hard) +
                                       "', which is not a regular file earlier in the archive"));
      MD_TRY_STATUS(make_parents(path));
      stdfs::path at = dest_ / path, from = dest_ / target;
      MD_TRY_STATUS(place(at, raw, [&]() -> Status {
        if (::link(from.c_str(), at.c_str()) == 0) return ok();
        int err = errno;
        if (err == EEXIST) return fail(Errc::kAlreadyExists, at.string() + " exists");
        return fail(errno_error("link", at, err));
      }));
      written_[path] = Kind::kFile;
      return ok();
    }
    if (type == AE_IFREG) {
      int64_t size = archive_entry_size(e);
      if (size > 0) bytes_ += static_cast<uint64_t>(size);
      if (bytes_ > limits_.max_bytes)
        return fail(Errc::kInvalidArgument,
                    "unpacked size exceeds " + std::to_string(limits_.max_bytes) + " bytes");
      MD_TRY_STATUS(make_parents(path));
      MD_TRY_STATUS(write_file(in, e, path, raw, perm));
      written_[path] = Kind::kFile;
      return ok();
    }
    Kind kind;
    if (type == AE_IFDIR) {
      kind = Kind::kDir;
      perm |= 0700;
    } else if (type == AE_IFLNK) {
      const char* t = archive_entry_symlink(e);
      MD_TRY_STATUS(check_symlink_target(path, t ? t : "").map_error([&](const Error& err) {
        return bad_entry(raw, err.message());
      }));
      kind = Kind::kSymlink;
    } else {
      return fail(bad_entry(raw, "device files, fifos and sockets are refused"));
    }
    if (kind == Kind::kDir) archive_entry_set_perm(e, perm & 0777);
    archive_entry_set_pathname(e, (dest_ / path).c_str());
    if (archive_write_header(out, e) != ARCHIVE_OK)
      return fail(write_failed(out, "unpack '" + raw + "'"));
    if (archive_write_finish_entry(out) != ARCHIVE_OK)
      return fail(write_failed(out, "unpack '" + raw + "'"));
    written_[path] = kind;
    return ok();
  }

  stdfs::path dest_;
  UnpackLimits limits_;
  ObjectStore& objects_;
  std::vector<ObjectKey>* created_;
  uint64_t entries_ = 0;
  uint64_t bytes_ = 0;
  uint64_t files_ = 0;
  std::map<std::string, Kind> written_;
  bool disk_full_ = false;
};

// Links <root>/shared/<p> at <release>/<p>, replacing what the archive put there.
Status link_shared(const stdfs::path& release, const stdfs::path& shared, std::string_view raw,
                   bool is_dir) {
  std::string p = MD_TRY(normalize_entry_path(raw).map_error([&](const Error& e) {
    return Error(Errc::kInvalidArgument, "shared path '" + std::string(raw) + "': " + e.message());
  }));
  if (p.empty())
    return fail(Errc::kInvalidArgument, "shared path '" + std::string(raw) + "' is empty");
  stdfs::path src = shared / p;
  std::error_code ec;
  if (is_dir) {
    stdfs::create_directories(src, ec);
    if (ec) return fail(Errc::kIo, "create shared dir " + src.string() + ": " + ec.message());
  } else if (!stdfs::exists(stdfs::symlink_status(src, ec))) {
    return fail(Errc::kNotFound, "shared file " + src.string() + " does not exist");
  }
  // Every parent inside the release must be a real directory, never a symlink.
  stdfs::path at = release;
  auto parts = split_path(p);
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    at /= std::string(parts[i]);
    auto st = stdfs::symlink_status(at, ec);
    if (!stdfs::exists(st)) {
      stdfs::create_directory(at, ec);
      if (ec) return fail(Errc::kIo, "create " + at.string() + ": " + ec.message());
    } else if (!stdfs::is_directory(st)) {
      return fail(Errc::kInvalidArgument, "shared path '" + p + "': '" + at.filename().string() +
                                              "' in the release is not a directory");
    }
  }
  stdfs::path link = release / p;
  stdfs::remove_all(link, ec);
  if (::symlink(src.c_str(), link.c_str()) != 0)
    return fail(errno_error("link shared path at", link, errno));
  return ok();
}

Result<StoredRelease> read_meta(const stdfs::path& meta_file, const stdfs::path& dir) {
  std::string text = MD_TRY(fs::read_file(meta_file));
  try {
    auto j = nlohmann::json::parse(text);
    StoredRelease info;
    info.version = j.at("version").get<std::string>();
    info.sha256 = j.at("sha256").get<std::string>();
    info.unpacked_at_ms = j.at("unpacked_at_ms").get<int64_t>();
    info.dir = dir;
    return info;
  } catch (const nlohmann::json::exception& e) {
    return fail(Errc::kCorruption, "release metadata " + meta_file.string() + ": " + e.what());
  }
}

const log::Logger kStoreLog("agent");

struct FdGuard {
  int fd;
  ~FdGuard() {
    if (fd >= 0) ::close(fd);
  }
};

bool is_hex64(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// Syncs what an unpack wrote before the release is renamed into place: the
// objects it created, the fan-out directories they were renamed into, and
// every directory of the release (which holds its links and symlinks).
// WHY not syncfs() for a redeploy: it flushes the whole file system, every
// other writer's dirty pages too, for a release that wrote one file. WHY
// the fsyncs at once: one after the other, the 1,250 directories of a
// MeshHook release took 6.4 s (each waits for its own disk write and cache
// flush); issued together the kernel joins them. Past kSyncfsObjects new
// objects (a first deploy: the data must reach the disk anyway) one syncfs
// does the same work with less overhead than thousands of fsyncs.
Status make_durable(const stdfs::path& release, const std::vector<std::string>& dirs,
                    const std::vector<ObjectKey>& created, const ObjectStore& objects) {
  constexpr size_t kSyncfsObjects = 1024;
  if (created.size() > kSyncfsObjects) {
    int fd = ::open(release.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return fail(errno_error("open", release, errno));
    int rc = ::syncfs(fd);
    int err = errno;
    ::close(fd);
    if (rc != 0) return fail(errno_error("syncfs", release, err));
    return ok();
  }
  std::vector<std::pair<stdfs::path, bool>> todo;  // path, is a directory
  std::set<stdfs::path> object_dirs;
  for (const ObjectKey& k : created) {
    todo.emplace_back(objects.path_of(k), false);
    object_dirs.insert(objects.path_of(k).parent_path());
  }
  for (const auto& d : object_dirs) todo.emplace_back(d, true);
  for (const auto& d : dirs) todo.emplace_back(release / d, true);
  std::atomic<size_t> next{0};
  std::mutex mu;
  std::optional<Error> first;
  auto work = [&] {
    for (size_t i; (i = next++) < todo.size();) {
      const auto& [p, dir] = todo[i];
      int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC | (dir ? O_DIRECTORY : 0));
      int err = fd < 0 ? errno : 0;
      if (fd >= 0) {
        if (::fsync(fd) != 0) err = errno;
        ::close(fd);
      }
      if (err != 0) {
        std::lock_guard lock(mu);
        if (!first) first = errno_error(fd < 0 ? "open for fsync" : "fsync", p, err);
        next = todo.size();
      }
    }
  };
  constexpr size_t kSyncThreads = 32;
  std::vector<std::thread> threads;
  for (size_t t = 1; t < std::min(kSyncThreads, todo.size()); ++t) threads.emplace_back(work);
  work();
  for (auto& t : threads) t.join();
  if (first) return fail(std::move(*first));
  return ok();
}

}  // namespace

Status check_version(std::string_view v) {
  if (v.empty() || v.size() > 128)
    return fail(Errc::kInvalidArgument, "version must be 1 to 128 characters");
  if (v.front() == '.' || v.front() == '-')
    return fail(Errc::kInvalidArgument,
                "version '" + std::string(v) + "' must not start with '.' or '-'");
  for (char c : v) {
    bool okc = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '_' || c == '-';
    if (!okc)
      return fail(Errc::kInvalidArgument, "version '" + std::string(v) +
                                              "' may only contain letters, digits, '.', '_', '-'");
  }
  return ok();
}

Result<std::string> normalize_entry_path(std::string_view path) {
  if (path.find('\0') != std::string_view::npos) return fail(Errc::kInvalidArgument, "NUL in path");
  if (path.empty()) return fail(Errc::kInvalidArgument, "empty path");
  if (path.front() == '/') return fail(Errc::kInvalidArgument, "absolute path");
  std::string out;
  for (std::string_view part : split_path(path)) {
    if (part.empty() || part == ".") continue;
    if (part == "..") return fail(Errc::kInvalidArgument, "'..' in path");
    if (!out.empty()) out += '/';
    out += part;
  }
  return out;
}

Status check_symlink_target(std::string_view link_path, std::string_view target) {
  auto bad = [&](std::string_view why) {
    return fail(Errc::kInvalidArgument,
                "symlink to '" + std::string(target) + "' " + std::string(why));
  };
  if (target.empty()) return bad("has an empty target");
  if (target.find('\0') != std::string_view::npos) return bad("has a NUL in its target");
  if (target.front() == '/') return bad("is absolute and leaves the release");
  size_t depth = std::count(link_path.begin(), link_path.end(), '/');  // of the link's directory
  size_t ups = 0;
  bool descended = false;
  for (std::string_view part : split_path(target)) {
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (descended) return bad("has '..' after a name (refused: it could leave the release)");
      ++ups;
    } else {
      descended = true;
    }
  }
  if (ups > depth) return bad("leaves the release");
  return ok();
}

Result<ReleaseStore> ReleaseStore::open(const stdfs::path& root) {
  if (!root.is_absolute())
    return fail(Errc::kInvalidArgument, "store root must be absolute: " + root.string());
  ObjectStore objects = MD_TRY(ObjectStore::open(root / "objects"));
  ReleaseStore s(root, std::move(objects));
  MD_TRY_STATUS(fs::ensure_dir(s.releases_dir()));
  MD_TRY_STATUS(fs::ensure_dir(s.releases_dir() / ".meta"));
  MD_TRY_STATUS(fs::ensure_dir(s.shared_dir()));
  MD_TRY_STATUS(fs::ensure_dir(s.artifacts_dir()));
  std::error_code ec;
  for (const auto& d : {s.releases_dir(), s.artifacts_dir()}) {
    for (auto it = stdfs::directory_iterator(d, ec); !ec && it != stdfs::directory_iterator();
         it.increment(ec)) {
      if (it->path().filename().string().starts_with(kTmpPrefix)) {
        std::error_code rm;
        stdfs::remove_all(it->path(), rm);
      }
    }
  }
  // Metadata whose release never got renamed into place (crash in between).
  for (auto it = stdfs::directory_iterator(s.releases_dir() / ".meta", ec);
       !ec && it != stdfs::directory_iterator(); it.increment(ec)) {
    std::string v = it->path().stem().string();
    std::error_code st;
    if (!stdfs::is_directory(s.release_dir(v), st)) stdfs::remove(it->path(), st);
  }
  // Objects of unpacks that a crash interrupted (their temp dirs are gone).
  if (auto n = s.objects_.gc(); n && *n > 0) kStoreLog.info("removed {} unreferenced objects", *n);
  return s;
}

stdfs::path ReleaseStore::release_dir(std::string_view version) const {
  return releases_dir() / std::string(version);
}
stdfs::path ReleaseStore::meta_path(std::string_view version) const {
  return releases_dir() / ".meta" / (std::string(version) + ".json");
}

Result<StoredRelease> ReleaseStore::get(std::string_view version) const {
  MD_TRY_STATUS(check_version(version));
  std::error_code ec;
  if (!stdfs::is_directory(release_dir(version), ec))
    return fail(Errc::kNotFound, "release " + std::string(version) + " is not unpacked");
  auto meta = read_meta(meta_path(version), release_dir(version));
  if (!meta && meta.error().code() == Errc::kNotFound) {
    // A directory put there by hand: usable, origin unknown.
    StoredRelease info;
    info.version = std::string(version);
    info.dir = release_dir(version);
    return info;
  }
  return meta;
}

Result<std::vector<StoredRelease>> ReleaseStore::list() const {
  std::vector<StoredRelease> out;
  std::error_code ec;
  for (auto it = stdfs::directory_iterator(releases_dir(), ec);
       !ec && it != stdfs::directory_iterator(); it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (!check_version(name) || !it->is_directory()) continue;
    auto info = get(name);
    if (info) out.push_back(std::move(*info));
  }
  if (ec) return fail(Errc::kIo, "list " + releases_dir().string() + ": " + ec.message());
  std::sort(out.begin(), out.end(), [](const StoredRelease& a, const StoredRelease& b) {
    return std::tie(a.unpacked_at_ms, a.version) < std::tie(b.unpacked_at_ms, b.version);
  });
  return out;
}

Result<StoredRelease> ReleaseStore::unpack(std::string_view version, const stdfs::path& artifact,
                                           std::string_view sha256, const SharedPaths& shared,
                                           const UnpackLimits& limits) {
  MD_TRY_STATUS(check_version(version));
  if (!is_hex64(sha256))
    return fail(Errc::kInvalidArgument, "sha256 must be 64 lower-case hex characters");
  std::string ctx = "unpack " + std::string(version);
  if (auto existing = get(version)) {
    if (existing->sha256 == sha256) return existing;
    return fail(Error(Errc::kAlreadyExists,
                      "release " + std::string(version) +
                          " is already unpacked from another artifact (sha256 " +
                          (existing->sha256.empty() ? "unknown" : existing->sha256.substr(0, 12)) +
                          ")")
                    .with_context(ctx));
  }
  auto t0 = std::chrono::steady_clock::now();
  // A FIFO or device as the artifact is refused here, never waited on.
  int fd = MD_TRY_CTX(fs::open_regular(artifact), ctx);
  FdGuard guard{fd};
  static std::atomic<int> seq{0};
  stdfs::path tmp = releases_dir() / (std::string(kTmpPrefix) + std::string(version) + "-" +
                                      std::to_string(::getpid()) + "-" + std::to_string(seq++));
  std::vector<ObjectKey> created;
  auto cleanup = [&](Error e) -> Result<StoredRelease> {
    std::error_code ec;
    stdfs::remove_all(tmp, ec);
    for (const ObjectKey& k : created) objects_.drop_if_unlinked(k);
    return fail(std::move(e).with_context(ctx));
  };
  if (::mkdir(tmp.c_str(), 0755) != 0) return cleanup(errno_error("create", tmp, errno));
  Source src(fd);
  Unpacker u(tmp, limits, objects_, &created);
  Status unpacked = u.run(src);
  // WHY the checksum is checked after the unpack, and wins over its error:
  // the files went into the temp dir and into objects named by their own
  // hashes, so nothing unverified is visible; a wrong artifact is reported as
  // such even when it also fails to unpack.
  auto actual = src.finish();
  if (!actual) return cleanup(std::move(actual.error()));
  if (*actual != sha256)
    return cleanup(Error(Errc::kCorruption, "artifact " + artifact.filename().string() +
                                                " has sha256 " + actual->substr(0, 12) +
                                                "..., expected " +
                                                std::string(sha256.substr(0, 12)) + "..."));
  if (!unpacked && u.disk_full()) {
    std::error_code ec;
    stdfs::remove_all(tmp, ec);  // first: what it had is measured without it
    for (const ObjectKey& k : created) objects_.drop_if_unlinked(k);
    return fail(unpack_disk_full(artifact, root_).with_context(ctx));
  }
  if (!unpacked) return cleanup(std::move(unpacked.error()));
  auto t1 = std::chrono::steady_clock::now();
  for (const auto& d : shared.dirs)
    if (auto st = link_shared(tmp, shared_dir(), d, true); !st)
      return cleanup(std::move(st.error()));
  for (const auto& f : shared.files)
    if (auto st = link_shared(tmp, shared_dir(), f, false); !st)
      return cleanup(std::move(st.error()));
  // Durable before it becomes visible: the release is complete or absent.
  if (auto st = make_durable(tmp, u.dirs(), created, objects_); !st)
    return cleanup(std::move(st.error()));
  auto ms = [](auto d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };
  kStoreLog.info("{}: {} files, {} new objects; unpacked in {} ms, synced in {} ms", ctx, u.files(),
                 u.new_objects(), ms(t1 - t0), ms(std::chrono::steady_clock::now() - t1));
  StoredRelease info{std::string(version), std::string(sha256), to_unix_ms(real_clock().now()),
                     release_dir(version)};
  nlohmann::json meta = {
      {"version", info.version}, {"sha256", info.sha256}, {"unpacked_at_ms", info.unpacked_at_ms}};
  if (auto st = fs::atomic_write(meta_path(version), to_json_text(meta) + "\n"); !st)
    return cleanup(std::move(st.error()));
  if (::rename(tmp.c_str(), info.dir.c_str()) != 0) {
    int err = errno;
    std::error_code ec;
    stdfs::remove(meta_path(version), ec);
    return cleanup(errno_error("rename into place", info.dir, err));
  }
  return info;
}

Result<std::vector<std::string>> ReleaseStore::prune(int keep,
                                                     const std::set<std::string>& protect) {
  auto all = MD_TRY(list());
  std::vector<std::string> removed;
  int newer = 0;
  for (auto it = all.rbegin(); it != all.rend(); ++it, ++newer) {
    if (newer < keep || protect.count(it->version)) continue;
    remove_tree(it->dir, releases_dir());
    std::error_code ec;
    stdfs::remove(meta_path(it->version), ec);
    for (const char* ext : {".tar.gz", ".tar.zst"})
      stdfs::remove(artifacts_dir() / (it->version + ext), ec);
    removed.insert(removed.begin(), it->version);
  }
  if (!removed.empty()) {
    uint64_t n = MD_TRY(objects_.gc());
    kStoreLog.info("pruned {} releases, {} objects no release uses", removed.size(), n);
  }
  return removed;
}

}  // namespace md::agent
