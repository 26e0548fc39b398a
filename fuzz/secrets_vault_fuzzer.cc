// Fuzzes the vault file reader: parse, key id, MAC, per-value decryption.
// A mutated file almost never carries a valid MAC, which would stop every
// input at the checksum; so when the first byte is odd the input's mac line
// is recomputed first (as a holder of the key could), letting the fuzzer
// reach the per-value checks behind it. Seeds (fuzz/corpus/secrets_vault/)
// are vaults sealed with the key below.
#include <cstddef>
#include <cstdint>
#include <string>

#include "secrets/crypto.h"
#include "secrets/secrets.h"

namespace {
const md::secrets::MasterKey& key() {
  static const md::secrets::MasterKey k =
      *md::secrets::MasterKey::parse("mdk1_ZnV6ei1rZXktZm9yLXRoZS12YXVsdC1wYXJzZXItMDE");
  return k;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  bool remac = data[0] & 1;
  std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (remac) {
    size_t mac = text.rfind("mac ");
    if (mac != std::string::npos && (mac == 0 || text[mac - 1] == '\n')) {
      text.resize(mac);
      text += "mac " + md::secrets::internal::vault_mac(text, key()) + "\n";
    }
  }
  auto names = md::secrets::Vault::peek_text(text, "fuzz.vault");
  auto vault = md::secrets::Vault::open_text(text, "fuzz.vault", "production", key());
  // What the parser accepted without the key, it must accept with it (or
  // refuse only for key, MAC or decryption reasons).
  if (!names && vault) __builtin_trap();
  if (vault && vault->list().size() != names->size()) __builtin_trap();
  return 0;
}
