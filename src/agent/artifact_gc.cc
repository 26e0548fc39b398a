#include "agent/artifact_gc.h"

#include <sys/stat.h>

#include <algorithm>

namespace md::agent {
namespace stdfs = std::filesystem;

std::vector<std::string> remove_stale_uploads(const stdfs::path& artifacts_dir, Millis expiry,
                                              SysTime now) {
  std::vector<std::string> removed;
  const int64_t now_ms = to_unix_ms(now);
  std::error_code ec;
  for (auto it = stdfs::directory_iterator(artifacts_dir, ec);
       !ec && it != stdfs::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!name.starts_with(kUploadPrefix)) continue;
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0) continue;
    const int64_t mtime_ms =
        int64_t(st.st_mtim.tv_sec) * 1000 + int64_t(st.st_mtim.tv_nsec) / 1'000'000;
    if (now_ms - mtime_ms <= expiry.count()) continue;
    std::error_code rm;
    if (stdfs::remove(it->path(), rm)) removed.push_back(name);
  }
  std::sort(removed.begin(), removed.end());
  return removed;
}

std::vector<std::string> remove_orphan_artifacts(const stdfs::path& artifacts_dir,
                                                 const std::set<std::string>& keep) {
  std::vector<std::string> removed;
  std::error_code ec;
  for (auto it = stdfs::directory_iterator(artifacts_dir, ec);
       !ec && it != stdfs::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.starts_with(kUploadPrefix) || keep.count(name)) continue;
    std::error_code rm;
    if (stdfs::remove_all(it->path(), rm) > 0) removed.push_back(name);
  }
  std::sort(removed.begin(), removed.end());
  return removed;
}

}  // namespace md::agent
