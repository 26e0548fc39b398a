// The content-addressed store of release files: every regular file of every
// release is one object, named by the SHA-256 of its content and its mode,
// and hard-linked into each release that holds it. A release that shares
// most files with the previous one (node_modules unchanged) writes only the
// files that changed. Spec: docs/formats/object-store.md.
//
// Layout under the store's directory (<agent root>/objects):
//   <aa>/<sha256>.<mode>   an object: aa = the first two hex digits,
//                          mode = 0444 or 0555 (read-only, for everyone)
//   .tmp-*                 an object being written (removed on open)
//
// Invariant: an object is never written once it has its name. It is created
// under a temp name, complete, read-only, then renamed; release files are
// hard links to it, so they are read-only too (a process that wants to write
// a file of its release must replace it — rename or unlink — or use a
// shared path). An object that no release links (link count 1) is garbage.
//
// Concurrency: not thread-safe; the release store calls it under the agent's
// mutex. Every function blocks on disk I/O.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/hash.h"

namespace md::agent {

// What names an object: its content's SHA-256 and whether it is executable.
struct ObjectKey {
  std::string sha256;  // lower-case hex
  bool exec = false;   // mode 0555 if true, else 0444
  unsigned mode() const { return exec ? 0555 : 0444; }
  // "<sha256>.0444" or "<sha256>.0555": the file name, and the wire form.
  std::string name() const;
  // Parses name(); kInvalidArgument otherwise.
  static Result<ObjectKey> parse(std::string_view name);
  bool operator==(const ObjectKey&) const = default;
};

class ObjectStore {
 public:
  // Opens (creating when missing, mode 0700) the store in `dir`; removes
  // temp files of writes interrupted by a crash. kIo on failure.
  static Result<ObjectStore> open(const std::filesystem::path& dir);

  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path path_of(const ObjectKey& key) const;

  // True if the object is there, a regular file of `size` bytes with its
  // mode. An object whose size or mode changed (written by a process running
  // as root, chmod) is not sound: false, and the next put() replaces it.
  bool has(const ObjectKey& key, uint64_t size) const;

  // Streams one file's content in; commit() names it. Content beyond
  // `kMemoryBytes` spills to a temp file in the store.
  class Writer {
   public:
    static constexpr size_t kMemoryBytes = 4 << 20;
    explicit Writer(ObjectStore& store) : store_(store) {}
    ~Writer();
    Writer(const Writer&) = delete;
    Writer& operator=(const Writer&) = delete;
    Status write(const void* data, size_t size);
    // Makes the object exist (writing it unless an identical one is there);
    // `mtime_s` (Unix seconds) is set on a new object. Sets `*created` when
    // this call wrote it. The writer is spent afterwards.
    Result<ObjectKey> commit(bool exec, std::optional<int64_t> mtime_s, bool* created);
    uint64_t size() const { return size_; }

   private:
    Status spill();
    ObjectStore& store_;
    Sha256 hash_;
    std::string buf_;
    uint64_t size_ = 0;
    int fd_ = -1;  // the temp file once spilled
    std::filesystem::path tmp_;
  };

  // Hard-links the object at `dest` (which must not exist; its parent must).
  // EMLINK (too many links to one inode) falls back to a read-only copy.
  // kNotFound when the object is missing; kAlreadyExists when `dest` is there.
  Status link_into(const ObjectKey& key, const std::filesystem::path& dest) const;

  // The keys of `keys` not held (or not sound, see has()), in their order.
  // For the controller's "which of these do you lack?" (docs/agent.md).
  std::vector<ObjectKey> missing(const std::vector<std::pair<ObjectKey, uint64_t>>& keys) const;

  // Removes every object no release links (link count 1) and returns how
  // many. Call only when no unpack is under way (the agent's mutex).
  Result<uint64_t> gc();
  // Removes `key` if nothing links it (after a failed unpack).
  void drop_if_unlinked(const ObjectKey& key);

 private:
  explicit ObjectStore(std::filesystem::path dir) : dir_(std::move(dir)) {}
  Result<std::filesystem::path> new_temp(int* fd);
  Status ensure_fanout(std::string_view sha256);
  std::filesystem::path dir_;
  std::vector<bool> fanout_made_ = std::vector<bool>(256, false);
};

}  // namespace md::agent
