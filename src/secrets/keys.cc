// Master keys: generation, the "mdk1_" text form, and where a key comes from.
#include <sodium.h>

#include <cctype>
#include <cstdlib>

#include "core/fs.h"
#include "secrets/crypto.h"
#include "secrets/secrets.h"

namespace md::secrets {
namespace {
constexpr std::string_view kKeyPrefix = "mdk1_";
}  // namespace

namespace internal {

void ensure_sodium() {
  // WHY a crash: sodium_init fails only when the OS has no entropy source;
  // nothing in meshdeploy can work safely then.
  static const int rc = sodium_init();
  MD_CHECK_MSG(rc >= 0, "libsodium could not initialise (no entropy source?)");
}

std::string b64url(const unsigned char* data, size_t n) {
  std::string out(sodium_base64_encoded_len(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING), '\0');
  sodium_bin2base64(out.data(), out.size(), data, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(std::char_traits<char>::length(out.c_str()));
  return out;
}

std::optional<std::string> unb64url(std::string_view text) {
  std::string out(text.size() * 3 / 4 + 3, '\0');
  size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(),
                        text.size(), nullptr, &len, &end,
                        sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
      end != text.data() + text.size())
    return std::nullopt;
  out.resize(len);
  return out;
}

Subkey derive(const MasterKey& key, uint64_t purpose) {
  ensure_sodium();
  Subkey k;
  static_assert(crypto_kdf_KEYBYTES == 32 && crypto_kdf_CONTEXTBYTES == 8);
  crypto_kdf_derive_from_key(k.bytes.data(), k.bytes.size(), purpose, "mdvault1",
                             key.bytes().data());
  return k;
}

Subkey::Subkey(Subkey&& o) noexcept : bytes(o.bytes) {
  sodium_memzero(o.bytes.data(), o.bytes.size());
}
Subkey::~Subkey() { sodium_memzero(bytes.data(), bytes.size()); }

}  // namespace internal

MasterKey MasterKey::generate() {
  internal::ensure_sodium();
  MasterKey k;
  randombytes_buf(k.bytes_.data(), k.bytes_.size());
  return k;
}

Result<MasterKey> MasterKey::parse(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())))
    text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
    text.remove_suffix(1);
  constexpr const char* kHint =
      " (expected mdk1_ followed by 43 base64url characters, as printed by "
      "`meshdeploy secrets keygen`)";
  if (!text.starts_with(kKeyPrefix))
    return fail(Errc::kInvalidArgument, std::string("not a meshdeploy key") + kHint);
  auto bin = internal::unb64url(text.substr(kKeyPrefix.size()));
  if (!bin || bin->size() != 32) {
    if (bin) sodium_memzero(bin->data(), bin->size());
    return fail(Errc::kInvalidArgument, std::string("malformed meshdeploy key") + kHint);
  }
  MasterKey k;
  std::copy(bin->begin(), bin->end(), k.bytes_.begin());
  sodium_memzero(bin->data(), bin->size());
  return k;
}

std::string MasterKey::reveal_text() const {
  return std::string(kKeyPrefix) + internal::b64url(bytes_.data(), bytes_.size());
}

std::string MasterKey::id() const {
  internal::Subkey k = internal::derive(*this, internal::kPurposeKeyId);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 8; ++i) {
    out += kHex[k.bytes[static_cast<size_t>(i)] >> 4];
    out += kHex[k.bytes[static_cast<size_t>(i)] & 15];
  }
  return out;
}

MasterKey::~MasterKey() { sodium_memzero(bytes_.data(), bytes_.size()); }

std::string key_env_var(std::string_view environment) {
  std::string out = "MESHDEPLOY_KEY_";
  for (char c : environment)
    out += (c == '-' || c == '.') ? '_'
                                  : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

Result<LoadedKey> load_key(std::string_view environment, const std::filesystem::path& key_file) {
  std::string var = key_env_var(environment);
  if (const char* v = std::getenv(var.c_str()); v && *v) {
    auto k = MasterKey::parse(v);
    if (!k) return fail(std::move(k.error()).with_context(var));
    return LoadedKey{std::move(*k), var};
  }
  if (!key_file.empty()) {
    std::string where = "key file " + key_file.string();
    MD_TRY_STATUS(fs::check_private(key_file));
    auto text = fs::read_file(key_file);
    if (!text) return fail(std::move(text.error()).with_context(where));
    auto k = MasterKey::parse(*text);
    sodium_memzero(text->data(), text->size());
    if (!k) return fail(std::move(k.error()).with_context(where));
    return LoadedKey{std::move(*k), key_file.string()};
  }
  return fail(Errc::kNotFound,
              "no key for environment " + std::string(environment) + ": set " + var +
                  " or `key_file:` in meshdeploy.yml (make a key with `meshdeploy secrets keygen "
                  "--env " +
                  std::string(environment) + "`)");
}

}  // namespace md::secrets
