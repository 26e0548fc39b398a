// Private to src/secrets (and its tests and benchmark): the derived forms of
// a secret, and the naive reference redactor the fast one is checked against.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace md::secrets::internal {

// Every form of `value` the redactor masks (the value itself first), without
// duplicates, each at least kMinSecretBytes long. See Redactor in secrets.h.
std::vector<std::string> derived_forms(std::string_view value);

// The characters of base64(prefix + value) that depend only on `value`, for
// a prefix of `offset` (0, 1, 2) bytes, in the standard or URL alphabet.
std::string base64_core(std::string_view value, int offset, bool url_alphabet);

// The reference: marks every occurrence (overlaps included) of every
// pattern, then replaces each maximal run of marked bytes by "[REDACTED]".
// O(patterns x text); for tests and the benchmark only.
std::string naive_redact(const std::vector<std::string>& patterns, std::string_view text);

inline constexpr std::string_view kMask = "[REDACTED]";

}  // namespace md::secrets::internal
