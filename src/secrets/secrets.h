// The encrypted per-environment vault, its master keys, the Secret type and
// the streaming redactor every output passes through. libsodium lives only
// here. CONTRACT: names below are stable for the other subsystems.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace md::secrets {

// A secret value. Prints, formats and serialises as "[REDACTED]". The only
// way to the value is reveal(), which is grep-able and used at the edges
// (process spawn, HTTP auth, DB connect).
class Secret {
 public:
  Secret() = default;
  explicit Secret(std::string value) : value_(std::move(value)) {}
  const std::string& reveal() const { return value_; }
  bool empty() const { return value_.empty(); }
  friend std::ostream& operator<<(std::ostream& os, const Secret&) { return os << "[REDACTED]"; }

 private:
  std::string value_;
};

using SecretMap = std::map<std::string, Secret>;

// Masks every secret value, and its derived forms (base64 from offsets 0/1/2,
// URL-encoded, JSON-escaped, each line of a multi-line value), as [REDACTED].
// Immutable after construction: thread-safe to share.
class Redactor {
 public:
  explicit Redactor(const SecretMap& secrets);
  ~Redactor();
  // Redacts a complete text.
  std::string redact(std::string_view text) const;
  // Streaming: feed chunks in order; a secret split across chunks is still
  // masked. Holds back at most (longest pattern - 1) bytes until flush().
  class Stream {
   public:
    explicit Stream(std::shared_ptr<const Redactor> r);
    std::string write(std::string_view chunk);  // returns what is safe to emit now
    std::string flush();                        // the held-back tail, redacted
   private:
    std::shared_ptr<const Redactor> r_;
    std::string pending_;
  };
  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace md::secrets
