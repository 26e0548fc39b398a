// Private to src/secrets: the libsodium helpers the vault and keys share.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "secrets/secrets.h"

namespace md::secrets::internal {

// Calls sodium_init once; crashes if the OS has no entropy source.
void ensure_sodium();

// base64url without padding, and its strict inverse (nullopt on bad input).
std::string b64url(const unsigned char* data, size_t n);
std::optional<std::string> unb64url(std::string_view text);

// Keys derived from a master key (crypto_kdf, context "mdvault1"), one per
// purpose, so the value key, the file MAC key and the key id never coincide.
inline constexpr uint64_t kPurposeValues = 1;
inline constexpr uint64_t kPurposeMac = 2;
inline constexpr uint64_t kPurposeKeyId = 3;
struct Subkey {
  std::array<unsigned char, 32> bytes{};
  Subkey() = default;
  Subkey(Subkey&& o) noexcept;  // wipes `o`
  Subkey(const Subkey&) = delete;
  Subkey& operator=(const Subkey&) = delete;
  ~Subkey();  // wiped
};
Subkey derive(const MasterKey& key, uint64_t purpose);

// The vault file's checksum over `covered` (everything before the mac line).
std::string vault_mac(std::string_view covered, const MasterKey& key);

}  // namespace md::secrets::internal
