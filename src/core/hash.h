// Content hashing for artifacts, migration files and persisted formats.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "core/error.h"

namespace md {

// Lower-case hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);
// Lower-case hex SHA-256 of a file's content, streamed. kNotFound / kIo.
Result<std::string> sha256_file_hex(const std::filesystem::path& path);
// Incremental SHA-256: update() any number of times, then hex() once.
// Not copyable (it owns an OpenSSL context).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t size);
  // The lower-case hex digest; the object is spent afterwards.
  std::string hex();

 private:
  void* ctx_;  // EVP_MD_CTX
};

// Checksum for small persisted records: first 16 hex chars of SHA-256.
std::string short_checksum(std::string_view data);

}  // namespace md
