// The vault file (docs/formats/vault.md): a versioned text file with one line
// per secret — readable name, last-change time, XChaCha20-Poly1305 sealed
// value whose associated data binds format version, environment and name —
// and a keyed BLAKE2b MAC over everything before the last line.
#include <fcntl.h>
#include <sodium.h>
#include <sys/file.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <system_error>

#include "config/config.h"
#include "core/fs.h"
#include "secrets/crypto.h"
#include "secrets/secrets.h"

namespace md::secrets {
namespace {

constexpr int kFormatVersion = 1;
constexpr std::string_view kComment =
    "# meshdeploy vault: the secrets of one environment, each value encrypted\n"
    "# (XChaCha20-Poly1305). Manage it with `meshdeploy secrets`; an edit by hand\n"
    "# breaks the checksum. Format: docs/formats/vault.md\n";
constexpr size_t kNonce = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
constexpr size_t kTag = crypto_aead_xchacha20poly1305_ietf_ABYTES;

std::string associated_data(const std::string& environment, const std::string& name) {
  std::string ad = "meshdeploy-vault " + std::to_string(kFormatVersion);
  ad += '\0';
  ad += environment;
  ad += '\0';
  ad += name;
  return ad;
}

}  // namespace

std::string internal::vault_mac(std::string_view text, const MasterKey& key) {
  internal::Subkey k = internal::derive(key, internal::kPurposeMac);
  unsigned char out[32];
  crypto_generichash(out, sizeof out, reinterpret_cast<const unsigned char*>(text.data()),
                     text.size(), k.bytes.data(), k.bytes.size());
  return internal::b64url(out, sizeof out);
}

namespace {

// Parses exactly what format_time() prints: 2026-11-22T09:00:00.123Z.
std::optional<SysTime> parse_time(std::string_view s) {
  if (s.size() != 24 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
      s[16] != ':' || s[19] != '.' || s[23] != 'Z')
    return std::nullopt;
  auto num = [&](size_t at, size_t len) -> int {
    int v = 0;
    for (size_t i = at; i < at + len; ++i) {
      if (s[i] < '0' || s[i] > '9') return -1;
      v = v * 10 + (s[i] - '0');
    }
    return v;
  };
  std::tm tm{};
  tm.tm_year = num(0, 4) - 1900;
  tm.tm_mon = num(5, 2) - 1;
  tm.tm_mday = num(8, 2);
  tm.tm_hour = num(11, 2);
  tm.tm_min = num(14, 2);
  tm.tm_sec = num(17, 2);
  int ms = num(20, 3);
  if (tm.tm_year < 0 || tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
      tm.tm_hour < 0 || tm.tm_hour > 23 || tm.tm_min < 0 || tm.tm_min > 59 || tm.tm_sec < 0 ||
      tm.tm_sec > 60 || ms < 0)
    return std::nullopt;
  return from_unix_ms(static_cast<int64_t>(timegm(&tm)) * 1000 + ms);
}

bool valid_environment(std::string_view env) {
  if (env.empty() || env.size() > 128) return false;
  for (char c : env)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
      return false;
  return true;
}

struct SealedLine {
  std::string name;
  SysTime updated_at;
  std::string blob;  // base64url(nonce || ciphertext || tag)
  int line;
};

struct Parsed {
  std::string environment;
  std::string key_id;
  std::vector<SealedLine> secrets;
  size_t mac_offset = 0;  // bytes covered by the MAC
  std::string mac;
};

std::vector<std::string_view> split_fields(std::string_view line) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos <= line.size()) {
    size_t sp = std::min(line.find(' ', pos), line.size());
    out.push_back(line.substr(pos, sp - pos));
    pos = sp + 1;
  }
  return out;
}

Result<Parsed> parse(std::string_view text, const std::string& where) {
  auto bad = [&](int line, const std::string& what) {
    return fail(Errc::kCorruption, "vault " + where + ":" + std::to_string(line) + ": " + what +
                                       " (the file is damaged or was edited by hand)");
  };
  if (text.empty()) return bad(1, "empty file");
  if (text.back() != '\n') return bad(1, "truncated: the last line has no newline");
  enum { kVersion, kEnvironment, kKeyId, kBody, kEnd } want = kVersion;
  Parsed p;
  size_t pos = 0;
  int line_no = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl - pos);
    size_t line_start = pos;
    pos = nl + 1;
    ++line_no;
    if (want == kEnd) return bad(line_no, "text after the mac line");
    if (line.starts_with("#")) continue;
    std::vector<std::string_view> f = split_fields(line);
    switch (want) {
      case kVersion: {
        if (f.size() != 2 || f[0] != "meshdeploy-vault")
          return bad(line_no, "not a meshdeploy vault (expected `meshdeploy-vault 1`)");
        if (f[1] != "1") {
          bool digits = !f[1].empty() && f[1].size() < 6 &&
                        f[1].find_first_not_of("0123456789") == std::string_view::npos;
          if (!digits) return bad(line_no, "malformed format version");
          return fail(Errc::kFailedPrecondition,
                      "vault " + where + " uses format version " + std::string(f[1]) +
                          "; this meshdeploy reads version " + std::to_string(kFormatVersion) +
                          ": upgrade meshdeploy");
        }
        want = kEnvironment;
        break;
      }
      case kEnvironment:
        if (f.size() != 2 || f[0] != "environment" || !valid_environment(f[1]))
          return bad(line_no, "expected `environment NAME`");
        p.environment = f[1];
        want = kKeyId;
        break;
      case kKeyId:
        if (f.size() != 2 || f[0] != "key-id" || f[1].size() != 16 ||
            f[1].find_first_not_of("0123456789abcdef") != std::string_view::npos)
          return bad(line_no, "expected `key-id` and 16 hex digits");
        p.key_id = f[1];
        want = kBody;
        break;
      case kBody:
        if (f.size() == 4 && f[0] == "secret") {
          if (!check_secret_name(f[1])) return bad(line_no, "invalid secret name");
          if (!p.secrets.empty() && p.secrets.back().name >= f[1])
            return bad(line_no, "secret names out of order or repeated");
          auto t = parse_time(f[2]);
          if (!t) return bad(line_no, "malformed time of secret " + std::string(f[1]));
          if (f[3].size() < (kNonce + kTag) * 4 / 3)
            return bad(line_no, "sealed value of secret " + std::string(f[1]) + " is too short");
          p.secrets.push_back({std::string(f[1]), *t, std::string(f[3]), line_no});
        } else if (f.size() == 2 && f[0] == "mac") {
          p.mac_offset = line_start;
          p.mac = f[1];
          want = kEnd;
        } else {
          return bad(line_no, "expected `secret NAME TIME VALUE` or `mac CHECKSUM`");
        }
        break;
      case kEnd:
        break;
    }
  }
  if (want != kEnd) return bad(line_no, "truncated: no mac line");
  return p;
}

Result<std::string> read_vault(const std::filesystem::path& path) {
  auto text = fs::read_file(path);
  if (!text) {
    if (text.error().code() == Errc::kNotFound)
      return fail(Errc::kNotFound, "vault " + path.string() + " does not exist");
    return fail(std::move(text.error()).with_context("vault " + path.string()));
  }
  return std::move(*text);
}

}  // namespace

Status check_secret_name(std::string_view name) {
  bool ok_name = !name.empty() && name.size() <= 128 && !(name[0] >= '0' && name[0] <= '9');
  for (char c : name)
    ok_name = ok_name && (std::isalnum(static_cast<unsigned char>(c)) || c == '_') &&
              static_cast<unsigned char>(c) < 0x80;
  if (!ok_name)
    return fail(Errc::kInvalidArgument,
                "secret name '" + std::string(name.substr(0, 128)) +
                    "' is not valid: use letters, digits and '_', not starting with a digit "
                    "(like an environment variable, e.g. DATABASE_URL)");
  return ok();
}

Vault Vault::create(std::filesystem::path path, std::string environment, MasterKey key) {
  return Vault(std::move(path), std::move(environment), std::move(key));
}

Result<Vault> Vault::open(const std::filesystem::path& path, const std::string& environment,
                          const MasterKey& key) {
  std::string text = MD_TRY(read_vault(path));
  return open_text(text, path, environment, key);
}

Result<Vault> Vault::open_text(std::string_view text, const std::filesystem::path& path,
                               const std::string& environment, const MasterKey& key) {
  std::string where = path.string();
  Parsed p = MD_TRY(parse(text, where));
  if (p.environment != environment)
    return fail(Errc::kCorruption, "vault " + where + " belongs to environment " + p.environment +
                                       ", not " + environment);
  if (p.key_id != key.id())
    return fail(Errc::kPermissionDenied, "wrong key for vault " + where +
                                             ": it was sealed with key id " + p.key_id +
                                             ", the key given has id " + key.id());
  std::string expected_mac = internal::vault_mac(text.substr(0, p.mac_offset), key);
  if (p.mac.size() != expected_mac.size() ||
      sodium_memcmp(expected_mac.data(), p.mac.data(), p.mac.size()) != 0)
    return fail(Errc::kCorruption,
                "vault " + where +
                    ": checksum mismatch: the file was changed outside meshdeploy or is damaged");
  Vault v(path, environment, key);
  internal::Subkey k = internal::derive(key, internal::kPurposeValues);
  for (const SealedLine& s : p.secrets) {
    auto sealed = internal::unb64url(s.blob);
    if (!sealed || sealed->size() < kNonce + kTag)
      return fail(Errc::kCorruption, "vault " + where + ":" + std::to_string(s.line) +
                                         ": sealed value of secret " + s.name + " is malformed");
    std::string plain(sealed->size() - kNonce - kTag, '\0');
    unsigned long long plain_len = 0;
    std::string ad = associated_data(environment, s.name);
    const auto* c = reinterpret_cast<const unsigned char*>(sealed->data());
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            reinterpret_cast<unsigned char*>(plain.data()), &plain_len, nullptr, c + kNonce,
            sealed->size() - kNonce, reinterpret_cast<const unsigned char*>(ad.data()), ad.size(),
            c, k.bytes.data()) != 0)
      return fail(Errc::kCorruption,
                  "vault " + where + ":" + std::to_string(s.line) + ": secret " + s.name +
                      " does not decrypt: its value was sealed under another name or vault");
    plain.resize(plain_len);
    v.values_.emplace(s.name, Secret(std::move(plain)));
    v.updated_.emplace(s.name, s.updated_at);
  }
  return v;
}

Result<Vault> Vault::open_or_create(const std::filesystem::path& path,
                                    const std::string& environment, const MasterKey& key) {
  auto v = open(path, environment, key);
  if (!v && v.error().code() == Errc::kNotFound) return create(path, environment, key);
  return v;
}

Result<std::vector<VaultEntry>> Vault::peek(const std::filesystem::path& path) {
  std::string text = MD_TRY(read_vault(path));
  return peek_text(text, path);
}

Result<std::vector<VaultEntry>> Vault::peek_text(std::string_view text,
                                                 const std::filesystem::path& path) {
  Parsed p = MD_TRY(parse(text, path.string()));
  std::vector<VaultEntry> out;
  for (const SealedLine& s : p.secrets) out.push_back({s.name, s.updated_at});
  return out;
}

Result<Secret> Vault::get(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end())
    return fail(Errc::kNotFound, "no secret " + name + " in vault " + path_.string());
  return it->second;
}

std::vector<VaultEntry> Vault::list() const {
  std::vector<VaultEntry> out;
  for (const auto& [name, t] : updated_) out.push_back({name, t});
  return out;
}

Result<bool> Vault::set(const std::string& name, Secret value, SysTime now) {
  MD_TRY_STATUS(check_secret_name(name));
  MD_TRY_STATUS(check_secret_value(name, value.reveal()));
  auto it = values_.find(name);
  if (it != values_.end() && it->second == value) return false;
  values_[name] = std::move(value);
  updated_[name] = now;
  return true;
}

Status Vault::remove(const std::string& name) {
  if (values_.erase(name) == 0)
    return fail(Errc::kNotFound, "no secret " + name + " in vault " + path_.string());
  updated_.erase(name);
  return ok();
}

Status Vault::save() const {
  if (!valid_environment(environment_))
    return fail(Errc::kInvalidArgument,
                "environment name '" + environment_ + "' cannot name a vault");
  internal::ensure_sodium();
  internal::Subkey k = internal::derive(key_, internal::kPurposeValues);
  std::string text(kComment);
  text += "meshdeploy-vault " + std::to_string(kFormatVersion) + "\n";
  text += "environment " + environment_ + "\n";
  text += "key-id " + key_.id() + "\n";
  for (const auto& [name, secret] : values_) {
    const std::string& plain = secret.reveal();
    std::string sealed(kNonce + plain.size() + kTag, '\0');
    auto* out = reinterpret_cast<unsigned char*>(sealed.data());
    randombytes_buf(out, kNonce);
    unsigned long long clen = 0;
    std::string ad = associated_data(environment_, name);
    crypto_aead_xchacha20poly1305_ietf_encrypt(
        out + kNonce, &clen, reinterpret_cast<const unsigned char*>(plain.data()), plain.size(),
        reinterpret_cast<const unsigned char*>(ad.data()), ad.size(), nullptr, out, k.bytes.data());
    text += "secret " + name + " " + format_time(updated_.at(name)) + " " +
            internal::b64url(out, kNonce + clen) + "\n";
  }
  text += "mac " + internal::vault_mac(text, key_) + "\n";
  if (path_.has_parent_path()) MD_TRY_STATUS(fs::ensure_dir(path_.parent_path()));
  auto st = fs::atomic_write(path_, text, 0644);
  if (!st) return fail(std::move(st.error()).with_context("vault " + path_.string()));
  return ok();
}

namespace {

constexpr std::string_view kIgnoreLine = "/.*.tmp.*";

// Makes sure git never picks up a temp of an interrupted write: the vault's
// directory gets a .gitignore with kIgnoreLine (created, or the line
// appended to the user's own file when it lacks it).
Status ensure_gitignore(const std::filesystem::path& dir) {
  std::filesystem::path p = dir / ".gitignore";
  std::string text;
  if (auto cur = fs::read_file(p)) {
    text = *cur;
    size_t at = 0;
    while (at <= text.size()) {
      size_t nl = text.find('\n', at);
      std::string_view line(text.data() + at, (nl == std::string::npos ? text.size() : nl) - at);
      if (line == kIgnoreLine) return ok();
      if (nl == std::string::npos) break;
      at = nl + 1;
    }
    if (!text.empty() && text.back() != '\n') text += '\n';
  } else if (cur.error().code() != Errc::kNotFound) {
    return fail(std::move(cur.error()));
  } else {
    text = "# Written by meshdeploy: temp files of an interrupted vault write.\n";
  }
  text += std::string(kIgnoreLine) + "\n";
  return fs::atomic_write(p, text, 0644);
}

// Removes the temps a killed write of `vault` left ("." + name + ".tmp.*").
// Called with the vault lock held: every writer holds it, so any such temp
// is stale.
void remove_stale_temps(const std::filesystem::path& dir, const std::filesystem::path& vault) {
  const std::string prefix = "." + vault.filename().string() + ".tmp.";
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) != 0 || !entry.is_regular_file(ec)) continue;
    std::filesystem::remove(entry.path(), ec);
  }
}

}  // namespace

Result<VaultLock> VaultLock::acquire(const std::filesystem::path& vault, Millis wait) {
  std::filesystem::path dir = vault.has_parent_path() ? vault.parent_path() : ".";
  MD_TRY_STATUS(fs::ensure_dir(dir));
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return fail(Errc::kIo, "lock vault directory " + dir.string() + ": " + std::strerror(errno));
  MonoTime deadline = real_clock().mono() + wait;
  while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR) {
      int err = errno;
      ::close(fd);
      return fail(Errc::kIo, "lock vault directory " + dir.string() + ": " + std::strerror(err));
    }
    if (real_clock().mono() >= deadline) {
      ::close(fd);
      return fail(
          Errc::kConflict,
          "vault " + vault.string() + " is being changed by another meshdeploy process; try again");
    }
    real_clock().sleep_for(Millis(20));
  }
  VaultLock held(fd);
  remove_stale_temps(dir, vault);
  if (auto st = ensure_gitignore(dir); !st)
    return fail(std::move(st.error()).with_context("vault directory " + dir.string()));
  return held;
}

VaultLock::~VaultLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the last descriptor releases the flock
}

VaultLocation vault_location(const config::Environment& env) {
  VaultLocation loc;
  loc.environment = env.name;
  std::filesystem::path vault =
      env.vault.empty() ? std::filesystem::path(".meshdeploy/secrets") / (env.name + ".vault")
                        : std::filesystem::path(env.vault);
  loc.vault = env.base_dir / vault;
  if (!env.key_file.empty()) loc.key_file = env.base_dir / env.key_file;
  return loc;
}

Result<SecretMap> load_secrets(const config::Environment& env) {
  VaultLocation loc = vault_location(env);
  std::error_code ec;
  if (!std::filesystem::exists(loc.vault, ec)) return SecretMap{};
  LoadedKey key = MD_TRY(load_key(loc.environment, loc.key_file));
  Vault v = MD_TRY(Vault::open(loc.vault, loc.environment, key.key));
  return v.secrets();
}

}  // namespace md::secrets
