// The release store: artifacts verified by sha256 and unpacked with
// libarchive into <root>/releases/<version>/, shared paths linked in, old
// releases pruned. libarchive lives only in release_store.cc.
//
// Every regular file of a release is a hard link to an object of the
// content-addressed store (object_store.h): unpacking a release that shares
// most files with an earlier one writes only the files that changed, and
// release files are read-only (0444, or 0555 when the archive gave any x
// bit). Directories and symlinks are each release's own.
//
// Layout under the store root:
//   artifacts/<version>.tar.gz|.tar.zst   uploaded artifacts (until pruned)
//   objects/<aa>/<sha256>.<mode>          file contents, linked into releases
//   releases/<version>/                   an unpacked release (complete or absent)
//   releases/.meta/<version>.json         {version, sha256, unpacked_at_ms}
//   releases/.tmp-*                       unpacking in progress (removed on open)
//   shared/<path>                         linked into every release
//
// Concurrency: a ReleaseStore is not thread-safe; the agent calls it under
// its own mutex. Every function blocks on disk I/O.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "agent/object_store.h"
#include "core/error.h"

namespace md::agent {

// A version names a directory: 1-128 chars of [A-Za-z0-9._-], not starting
// with '.' or '-'. kInvalidArgument saying why otherwise.
Status check_version(std::string_view version);

// Pure path rules for archive entries and shared paths (no disk access).
// An entry path must be relative, non-empty, without "..", without NUL, and
// normalise to something inside the release ("./a/b" and "a//b" are fine).
// Returns the normalised path ("a/b"); kInvalidArgument naming the path.
// The release root itself ("." or "./") normalises to "".
Result<std::string> normalize_entry_path(std::string_view path);

// A symlink at `link_path` (normalised, inside the release) pointing at
// `target` stays inside the release when: the target is relative and not
// empty, all its ".." components come first, and there are no more of them
// than the link's directory depth. This rule is sound even with chains of
// symlinks (each link is checked with the same rule, and entries are never
// written through a symlink). kInvalidArgument naming both otherwise.
Status check_symlink_target(std::string_view link_path, std::string_view target);

// Limits that guard the host against hostile or broken artifacts.
struct UnpackLimits {
  uint64_t max_bytes = 8ull << 30;   // total size of regular files (8 GiB)
  uint64_t max_entries = 1'000'000;  // entries in the archive
};

// What a release needs linked in from <root>/shared/.
struct SharedPaths {
  std::vector<std::string> dirs;   // created under shared/ when missing, e.g. "uploads"
  std::vector<std::string> files;  // must exist under shared/, e.g. ".env"
};

struct StoredRelease {
  std::string version;
  std::string sha256;          // of the artifact it came from
  int64_t unpacked_at_ms = 0;  // Unix ms
  std::filesystem::path dir;   // <root>/releases/<version>
};

class ReleaseStore {
 public:
  // Opens (creating when missing) the store under `root`, which must be an
  // absolute path without symlinks (the agent canonicalises it). Removes
  // leftovers of unpacks interrupted by a crash. kIo on failure.
  static Result<ReleaseStore> open(const std::filesystem::path& root);

  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path releases_dir() const { return root_ / "releases"; }
  std::filesystem::path release_dir(std::string_view version) const;
  std::filesystem::path shared_dir() const { return root_ / "shared"; }
  std::filesystem::path artifacts_dir() const { return root_ / "artifacts"; }
  ObjectStore& objects() { return objects_; }
  const ObjectStore& objects() const { return objects_; }

  // Unpacks `artifact` into releases/<version>/ while verifying its sha256
  // against `sha256` (lower-case hex; one read of the file): first into a
  // temp dir (files as store objects linked in), shared paths linked, synced,
  // then renamed into place only if the checksum matched, so the release is
  // complete or absent. Only a regular file is read (a FIFO is refused, never
  // waited on).
  // Not an error: the version already unpacked from the same sha256 (returns
  // it unchanged). kAlreadyExists: unpacked from a different sha256.
  // kCorruption: checksum mismatch or unreadable archive. kInvalidArgument:
  // a hostile entry (absolute path, "..", escaping link, device, fifo,
  // setuid/setgid) or a bad version/shared path; the message names the entry.
  // kNotFound: artifact or a shared file missing. kIo: a write failed; when
  // the disk or quota filled, "disk full on host H (needs N, has M)"
  // (disk_need.h). Nothing is left behind on failure (objects it created are
  // removed again).
  Result<StoredRelease> unpack(std::string_view version, const std::filesystem::path& artifact,
                               std::string_view sha256, const SharedPaths& shared,
                               const UnpackLimits& limits = {});

  // The unpacked release, or kNotFound.
  Result<StoredRelease> get(std::string_view version) const;
  // Every unpacked release, oldest first.
  Result<std::vector<StoredRelease>> list() const;

  // Removes all but the newest `keep` releases (by unpack time), never one
  // named in `protect` (live, warm or running ones), and their artifacts,
  // then every object no remaining release links. Returns the removed
  // versions, oldest first.
  Result<std::vector<std::string>> prune(int keep, const std::set<std::string>& protect);

 private:
  ReleaseStore(std::filesystem::path root, ObjectStore objects)
      : root_(std::move(root)), objects_(std::move(objects)) {}
  std::filesystem::path meta_path(std::string_view version) const;
  std::filesystem::path root_;
  ObjectStore objects_;
};

}  // namespace md::agent
