// Standard Webhooks signatures (https://www.standardwebhooks.com, symmetric
// "v1" scheme): HMAC-SHA256 over "{webhook-id}.{webhook-timestamp}.{body}"
// with a key written "whsec_<base64>". Pure; OpenSSL for HMAC and base64.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "secrets/secrets.h"

namespace md::notify {

// Decodes a "whsec_<base64>" signing key into its raw bytes. kInvalidArgument
// (without the value) when the prefix is missing, the base64 is malformed, or
// the key is shorter than 24 bytes or longer than 64 (the specification's
// range). The result is a secret too.
Result<secrets::Secret> decode_signing_key(const secrets::Secret& whsec);

// The value of the webhook-signature header: "v1,<base64 HMAC>" for each key,
// space-separated, in key order (several keys while one is being rotated).
// `keys` are raw bytes from decode_signing_key. MD_CHECKs that `msg_id` and
// `timestamp` hold no '.' (the specification forbids it).
std::string sign(std::string_view msg_id, int64_t timestamp, std::string_view body,
                 const std::vector<secrets::Secret>& keys);

// True when one of the space-separated "v1,<base64>" entries of `header`
// matches `key` (constant-time comparison). Other versions are ignored.
bool verify(std::string_view msg_id, int64_t timestamp, std::string_view body,
            std::string_view header, const secrets::Secret& key);

// Standard base64 (with padding) of raw bytes, and its strict inverse
// (nullopt-like kInvalidArgument on a bad character or length).
std::string base64_encode(std::string_view raw);
Result<std::string> base64_decode(std::string_view text);

}  // namespace md::notify
