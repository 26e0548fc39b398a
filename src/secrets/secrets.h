// The encrypted per-environment vault, its master keys, the Secret type and
// the streaming redactor every output passes through. libsodium lives only
// here. CONTRACT: names below are stable for the other subsystems.
// File format: docs/formats/vault.md. Users' guide: docs/secrets.md.
#pragma once

#include <array>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/error.h"

namespace md::config {
struct Environment;
}

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
  friend bool operator==(const Secret& a, const Secret& b) { return a.value_ == b.value_; }

 private:
  std::string value_;
};

using SecretMap = std::map<std::string, Secret>;

// Shorter values cannot be told apart from ordinary text: the vault and
// Redactor::create refuse them.
inline constexpr size_t kMinSecretBytes = 4;

// kInvalidArgument explaining why, when `value` cannot be a secret (empty,
// or shorter than kMinSecretBytes). `name` is used in the message; the value
// never is.
Status check_secret_value(std::string_view name, std::string_view value);

// ---- redaction -------------------------------------------------------------

// Masks every secret value, and its derived forms, as "[REDACTED]": the
// value; each line (of 4+ bytes) of a multi-line value; base64 in the
// standard and URL alphabets as it appears when the value starts at byte
// offset 0, 1 or 2 of the encoded data (trimmed to the characters that do not
// depend on neighbouring bytes); percent-encoded (upper- and lower-case hex;
// space as %20 or '+'; '/' kept or encoded; JavaScript's encodeURIComponent
// set); JSON-escaped (plain, "\/", \u-escaped non-ASCII, HTML-safe, JSON in
// JSON); GitHub's runner list besides: \" for ", '' for ', XML entities,
// the value without surrounding quotes, PowerShell's '&' sections (16+ bytes).
// Also found: a value (or a line of it) split by inserted "\n" / "\r\n"
// (every form is matched with line breaks removed), and a value in any mix
// of escapes, decoded once or twice: JSON \-escapes and \uXXXX, %XX of any
// subset of its bytes, XML/HTML entities (internal::decode_pass).
// Overlapping or adjacent matches merge into one "[REDACTED]".
// Immutable after construction: thread-safe to share.
class Redactor {
 public:
  // kInvalidArgument naming the secret (never its value) when a value is
  // shorter than kMinSecretBytes. An empty map gives a redactor that masks
  // nothing. Blocks for the build only (about 1 ms per 100 secrets).
  static Result<std::shared_ptr<const Redactor>> create(const SecretMap& secrets);
  // Same patterns as create(), for callers that already checked the values
  // (the vault refuses short ones). Values shorter than kMinSecretBytes are
  // NOT masked; prefer create(), which says so.
  explicit Redactor(const SecretMap& secrets);
  ~Redactor();
  Redactor(const Redactor&) = delete;
  Redactor& operator=(const Redactor&) = delete;

  // Redacts a complete text.
  std::string redact(std::string_view text) const;
  // Every pattern masked (values and derived forms), for tests and the
  // benchmark's naive comparison. Secret material: never print it.
  const std::vector<std::string>& patterns() const;
  // The forms searched in the decoded views (values, lines of values), and
  // the longest source span a decoded occurrence may have; for tests.
  const std::vector<std::string>& decoded_patterns() const;
  size_t decode_reach() const;
  // Length of the longest pattern (0 when there are none).
  size_t longest_pattern() const;

  // Streaming: feed chunks in order; a secret split across any number of
  // chunks is still masked, and the concatenated output equals redact() of
  // the concatenated input. Holds back only a tail that could still become
  // a match (a possible prefix of a form, a trailing '\r', an escape that
  // may be incomplete), so text that cannot be part of a secret leaves at
  // once; flush() at a pause or at close. Single owner (not thread-safe);
  // cheap to create.
  class Stream {
   public:
    explicit Stream(std::shared_ptr<const Redactor> r);
    std::string write(std::string_view chunk);  // returns what is safe to emit now
    std::string flush();                        // the held-back tail, redacted; starts afresh
   private:
    std::shared_ptr<const Redactor> r_;
    std::string pending_;
    size_t carry_ = 0;     // leading bytes of pending_ already known to be covered
    bool in_run_ = false;  // the output so far ends inside a masked run
  };
  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Installs `r` as core logging's process-wide redaction filter
// (md::log::set_redaction_filter); nullptr removes it. Every log line logged
// after the call is masked.
void install_log_redactor(std::shared_ptr<const Redactor> r);

// ---- master keys -------------------------------------------------------------

// A 256-bit vault key. Its text form is "mdk1_" + 43 base64url characters,
// exactly what MESHDEPLOY_KEY_<ENV> and key files hold. Movable; the bytes
// are wiped on destruction.
class MasterKey {
 public:
  static MasterKey generate();
  // Parses the text form (surrounding whitespace allowed). kInvalidArgument
  // that never echoes the text.
  static Result<MasterKey> parse(std::string_view text);
  // The text form. Reveals the key: for `secrets keygen` only.
  std::string reveal_text() const;
  // A 16-hex-digit fingerprint stored in the vault, so a wrong key is told
  // apart from a damaged file. Reveals nothing about the key.
  std::string id() const;
  const std::array<unsigned char, 32>& bytes() const { return bytes_; }

  MasterKey(const MasterKey&) = default;
  MasterKey& operator=(const MasterKey&) = default;
  ~MasterKey();

 private:
  MasterKey() = default;
  std::array<unsigned char, 32> bytes_{};
};

// "MESHDEPLOY_KEY_" + environment upper-cased, '-' and '.' as '_'.
std::string key_env_var(std::string_view environment);

// Where a key came from, for messages ("MESHDEPLOY_KEY_PRODUCTION" or a path).
struct LoadedKey {
  MasterKey key;
  std::string source;
};
// The environment's master key: $MESHDEPLOY_KEY_<ENV> when set and non-empty,
// else `key_file` when not empty. A key file readable or writable by group
// or others is refused (kPermissionDenied, with the chmod to run). kNotFound
// when neither is set, saying how to provide one. Reads the process env.
Result<LoadedKey> load_key(std::string_view environment, const std::filesystem::path& key_file);

// ---- the vault ---------------------------------------------------------------

// Readable without the key: names and last-change times.
struct VaultEntry {
  std::string name;
  SysTime updated_at{};
};

// One environment's secrets file, decrypted in memory. Single owner.
// Blocking (file I/O). Nothing is written until save().
class Vault {
 public:
  // A new, empty vault for `environment` at `path` (not written yet).
  static Vault create(std::filesystem::path path, std::string environment, MasterKey key);
  // Reads, authenticates and decrypts the file. kNotFound if it does not
  // exist; kPermissionDenied for a wrong key; kCorruption for a damaged or
  // edited file (or one moved from another environment). Every error names
  // the file; the file is never changed by open().
  static Result<Vault> open(const std::filesystem::path& path, const std::string& environment,
                            const MasterKey& key);
  // open(), or create() when the file does not exist.
  static Result<Vault> open_or_create(const std::filesystem::path& path,
                                      const std::string& environment, const MasterKey& key);
  // Names and times without the key (nothing is authenticated). kNotFound /
  // kCorruption as open().
  static Result<std::vector<VaultEntry>> peek(const std::filesystem::path& path);
  // open() and peek() of file content already read (e.g. from `git show`);
  // `path` is where it came from, for messages and a later save().
  static Result<Vault> open_text(std::string_view text, const std::filesystem::path& path,
                                 const std::string& environment, const MasterKey& key);
  static Result<std::vector<VaultEntry>> peek_text(std::string_view text,
                                                   const std::filesystem::path& path);

  const std::filesystem::path& path() const { return path_; }
  const std::string& environment() const { return environment_; }
  // kNotFound naming the secret and the vault.
  Result<Secret> get(const std::string& name) const;
  bool contains(const std::string& name) const { return values_.count(name) != 0; }
  // Sorted by name.
  std::vector<VaultEntry> list() const;
  const SecretMap& secrets() const { return values_; }
  // Adds or replaces. kInvalidArgument for a name that is not
  // [A-Za-z_][A-Za-z0-9_]* (at most 128) or a value check_secret_value refuses.
  // Returns true when the value changed (false: same value, nothing to do).
  Result<bool> set(const std::string& name, Secret value, SysTime now);
  // kNotFound if absent.
  Status remove(const std::string& name);
  // Re-encrypts everything under `key` at the next save().
  void rekey(MasterKey key) { key_ = std::move(key); }
  const MasterKey& key() const { return key_; }
  // Encrypts every value with a fresh nonce and replaces the file atomically
  // (temp file, fsync, rename, fsync dir), creating its directory if needed.
  Status save() const;

 private:
  Vault(std::filesystem::path path, std::string environment, MasterKey key)
      : path_(std::move(path)), environment_(std::move(environment)), key_(std::move(key)) {}
  std::filesystem::path path_;
  std::string environment_;
  MasterKey key_;
  SecretMap values_;
  std::map<std::string, SysTime> updated_;
};

// Serialises the read-modify-write of one vault between processes (two
// `secrets set` at once must not lose one): an exclusive flock on the
// vault's directory (created if missing), so no lock file is left in the
// repository. Waits up to `wait`, then kConflict. Released on destruction.
// Once held it removes the temp files a killed write of this vault left
// (".<vault name>.tmp.*", 0600) and makes sure the directory's .gitignore
// ignores such temps ("/.*.tmp.*": the file is created, or the line appended).
class VaultLock {
 public:
  static Result<VaultLock> acquire(const std::filesystem::path& vault, Millis wait = Millis(10000));
  VaultLock(VaultLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  VaultLock& operator=(VaultLock&&) = delete;
  ~VaultLock();

 private:
  explicit VaultLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// kInvalidArgument unless `name` is a valid secret name (see Vault::set).
Status check_secret_name(std::string_view name);

// ---- one environment ---------------------------------------------------------

// The vault file and key file a resolved environment uses: `vault:` (default
// .meshdeploy/secrets/<env>.vault) and `key_file:` (default none), relative
// to the directory of meshdeploy.yml.
struct VaultLocation {
  std::filesystem::path vault;
  std::filesystem::path key_file;  // empty: only MESHDEPLOY_KEY_<ENV>
  std::string environment;
};
VaultLocation vault_location(const config::Environment& env);

// Loads the environment's key and opens its vault; a missing vault file is
// an empty map (an app may have no secrets). What a deploy calls.
Result<SecretMap> load_secrets(const config::Environment& env);

}  // namespace md::secrets
