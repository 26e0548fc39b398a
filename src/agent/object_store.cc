#include "agent/object_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include "core/log.h"

namespace md::agent {
namespace stdfs = std::filesystem;
namespace {

const log::Logger kObjLog("agent");
constexpr std::string_view kTmpPrefix = ".tmp-";

bool is_hex64(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

Error sys_error(std::string_view what, const stdfs::path& p, int err) {
  Errc code = err == ENOENT ? Errc::kNotFound : err == EEXIST ? Errc::kAlreadyExists : Errc::kIo;
  return Error(code, std::string(what) + " " + p.string() + ": " + std::strerror(err));
}

Status write_all(int fd, const char* p, size_t n, const stdfs::path& path) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return fail(sys_error("write", path, w < 0 ? errno : EIO));
    p += w;
    n -= static_cast<size_t>(w);
  }
  return ok();
}

int hex_value(char c) { return c <= '9' ? c - '0' : c - 'a' + 10; }

}  // namespace

std::string ObjectKey::name() const { return sha256 + (exec ? ".0555" : ".0444"); }

Result<ObjectKey> ObjectKey::parse(std::string_view name) {
  ObjectKey k;
  if (name.size() == 69 && is_hex64(name.substr(0, 64))) {
    std::string_view mode = name.substr(64);
    k.sha256 = std::string(name.substr(0, 64));
    if (mode == ".0444") return k;
    if (mode == ".0555") {
      k.exec = true;
      return k;
    }
  }
  return fail(Errc::kInvalidArgument,
              "object name '" + std::string(name.substr(0, 80)) + "' is not <sha256>.0444|.0555");
}

Result<ObjectStore> ObjectStore::open(const stdfs::path& dir) {
  std::error_code ec;
  stdfs::create_directories(dir, ec);
  if (ec) return fail(Errc::kIo, "create " + dir.string() + ": " + ec.message());
  ::chmod(dir.c_str(), 0700);
  for (auto it = stdfs::directory_iterator(dir, ec); !ec && it != stdfs::directory_iterator();
       it.increment(ec)) {
    if (it->path().filename().string().starts_with(kTmpPrefix)) {
      std::error_code rm;
      stdfs::remove(it->path(), rm);
    }
  }
  if (ec) return fail(Errc::kIo, "list " + dir.string() + ": " + ec.message());
  return ObjectStore(dir);
}

stdfs::path ObjectStore::path_of(const ObjectKey& key) const {
  return dir_ / key.sha256.substr(0, 2) / key.name();
}

bool ObjectStore::has(const ObjectKey& key, uint64_t size) const {
  struct stat st;
  if (::lstat(path_of(key).c_str(), &st) != 0) return false;
  return S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) == size &&
         (st.st_mode & 07777) == key.mode();
}

Status ObjectStore::ensure_fanout(std::string_view sha256) {
  size_t i =
      (static_cast<size_t>(hex_value(sha256[0])) * 16) + static_cast<size_t>(hex_value(sha256[1]));
  if (fanout_made_[i]) return ok();
  stdfs::path sub = dir_ / std::string(sha256.substr(0, 2));
  if (::mkdir(sub.c_str(), 0700) != 0 && errno != EEXIST)
    return fail(sys_error("create", sub, errno));
  fanout_made_[i] = true;
  return ok();
}

Result<stdfs::path> ObjectStore::new_temp(int* fd) {
  static std::atomic<uint64_t> seq{0};
  stdfs::path tmp =
      dir_ / (std::string(kTmpPrefix) + std::to_string(::getpid()) + "-" + std::to_string(seq++));
  // WHY 0400: the object is read-only from birth; the open fd may still write.
  *fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0400);
  if (*fd < 0) return fail(sys_error("create", tmp, errno));
  return tmp;
}

ObjectStore::Writer::~Writer() {
  if (fd_ >= 0) ::close(fd_);
  if (!tmp_.empty()) ::unlink(tmp_.c_str());
}

Status ObjectStore::Writer::spill() {
  tmp_ = MD_TRY(store_.new_temp(&fd_));
  MD_TRY_STATUS(write_all(fd_, buf_.data(), buf_.size(), tmp_));
  buf_.clear();
  buf_.shrink_to_fit();
  return ok();
}

Status ObjectStore::Writer::write(const void* data, size_t size) {
  hash_.update(data, size);
  size_ += size;
  if (fd_ < 0) {
    buf_.append(static_cast<const char*>(data), size);
    if (buf_.size() > kMemoryBytes) MD_TRY_STATUS(spill());
    return ok();
  }
  return write_all(fd_, static_cast<const char*>(data), size, tmp_);
}

Result<ObjectKey> ObjectStore::Writer::commit(bool exec, std::optional<int64_t> mtime_s,
                                              bool* created) {
  *created = false;
  ObjectKey key{hash_.hex(), exec};
  if (store_.has(key, size_)) return key;
  stdfs::path final_path = store_.path_of(key);
  struct stat st;
  if (::lstat(final_path.c_str(), &st) == 0)
    kObjLog.warn("object {} was changed in place (size or mode differs); writing it again",
                 key.name());
  MD_TRY_STATUS(store_.ensure_fanout(key.sha256));
  if (fd_ < 0) {
    MD_TRY_STATUS(spill());
  }
  if (mtime_s) {
    timespec ts[2] = {{*mtime_s, 0}, {*mtime_s, 0}};
    ::futimens(fd_, ts);
  }
  if (::fchmod(fd_, key.mode()) != 0) return fail(sys_error("chmod", tmp_, errno));
  // WHY no fsync here: the release store syncs every object it created, all
  // at once, before the release becomes visible. WHY no early writeback
  // (sync_file_range) either: it blocks while the disk's queue is full, which
  // made a first unpack on a busy disk wait on each of its 5,000 files.
  if (::close(fd_) != 0) {
    fd_ = -1;
    return fail(sys_error("close", tmp_, errno));
  }
  fd_ = -1;
  if (::rename(tmp_.c_str(), final_path.c_str()) != 0)
    return fail(sys_error("rename", final_path, errno));
  tmp_.clear();
  *created = true;
  return key;
}

Status ObjectStore::link_into(const ObjectKey& key, const stdfs::path& dest) const {
  stdfs::path obj = path_of(key);
  if (::link(obj.c_str(), dest.c_str()) == 0) return ok();
  int err = errno;
  if (err != EMLINK) return fail(sys_error("link " + obj.filename().string() + " at", dest, err));
  // WHY: ext4 allows 65,000 links per inode; past that a release gets its
  // own read-only copy (same content and mode), which prune removes with it.
  std::error_code ec;
  stdfs::copy_file(obj, dest, ec);
  if (ec)
    return fail(Errc::kIo, "copy " + obj.string() + " to " + dest.string() + ": " + ec.message());
  ::chmod(dest.c_str(), key.mode());
  return ok();
}

std::vector<ObjectKey> ObjectStore::missing(
    const std::vector<std::pair<ObjectKey, uint64_t>>& keys) const {
  std::vector<ObjectKey> out;
  for (const auto& [key, size] : keys)
    if (!has(key, size)) out.push_back(key);
  return out;
}

Result<uint64_t> ObjectStore::gc() {
  uint64_t removed = 0;
  std::error_code ec;
  for (auto sub = stdfs::directory_iterator(dir_, ec); !ec && sub != stdfs::directory_iterator();
       sub.increment(ec)) {
    if (sub->path().filename().string().size() != 2) continue;
    std::error_code ec2;
    for (auto it = stdfs::directory_iterator(sub->path(), ec2);
         !ec2 && it != stdfs::directory_iterator(); it.increment(ec2)) {
      struct stat st;
      if (::lstat(it->path().c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1 &&
          ::unlink(it->path().c_str()) == 0)
        ++removed;
    }
    if (ec2) return fail(Errc::kIo, "list " + sub->path().string() + ": " + ec2.message());
  }
  if (ec) return fail(Errc::kIo, "list " + dir_.string() + ": " + ec.message());
  return removed;
}

void ObjectStore::drop_if_unlinked(const ObjectKey& key) {
  stdfs::path p = path_of(key);
  struct stat st;
  if (::lstat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1) ::unlink(p.c_str());
}

}  // namespace md::agent
