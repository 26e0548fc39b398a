// Standard Webhooks signing with OpenSSL's HMAC and base64.
#include "notify/signature.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <string>

namespace md::notify {
namespace {

constexpr std::string_view kKeyPrefix = "whsec_";

std::string hmac_sha256(const secrets::Secret& key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  const std::string& k = key.reveal();
  MD_CHECK(HMAC(EVP_sha256(), k.data(), static_cast<int>(k.size()),
                reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len));
  return std::string(reinterpret_cast<const char*>(out), len);
}

std::string signed_content(std::string_view msg_id, int64_t timestamp, std::string_view body) {
  MD_CHECK_MSG(msg_id.find('.') == std::string_view::npos, "webhook-id must not contain '.'");
  std::string s;
  s.reserve(msg_id.size() + body.size() + 24);
  s.append(msg_id).append(".").append(std::to_string(timestamp)).append(".").append(body);
  return s;
}

}  // namespace

std::string base64_encode(std::string_view raw) {
  std::string out(4 * ((raw.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(raw.data()),
                          static_cast<int>(raw.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

Result<std::string> base64_decode(std::string_view text) {
  auto is_b64 = [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
  };
  if (text.size() % 4 != 0)
    return fail(Errc::kInvalidArgument, "base64 length is not a multiple of 4");
  size_t pad = 0;
  if (!text.empty() && text.back() == '=') pad = text[text.size() - 2] == '=' ? 2 : 1;
  for (size_t i = 0; i + pad < text.size(); ++i)
    if (!is_b64(text[i])) return fail(Errc::kInvalidArgument, "base64 has an invalid character");
  std::string out(3 * text.size() / 4, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0) return fail(Errc::kInvalidArgument, "base64 does not decode");
  // WHY: EVP_DecodeBlock counts padding as zero bytes.
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

Result<secrets::Secret> decode_signing_key(const secrets::Secret& whsec) {
  std::string_view v = whsec.reveal();
  if (v.substr(0, kKeyPrefix.size()) != kKeyPrefix)
    return fail(Errc::kInvalidArgument, "signing key does not start with 'whsec_'");
  auto raw = base64_decode(v.substr(kKeyPrefix.size()));
  if (!raw)
    return fail(Errc::kInvalidArgument, "signing key: the part after 'whsec_' is not valid base64");
  if (raw->size() < 24 || raw->size() > 64)
    return fail(Errc::kInvalidArgument,
                "signing key must be 24 to 64 bytes (it is " + std::to_string(raw->size()) + ")");
  return secrets::Secret(std::move(*raw));
}

std::string sign(std::string_view msg_id, int64_t timestamp, std::string_view body,
                 const std::vector<secrets::Secret>& keys) {
  std::string content = signed_content(msg_id, timestamp, body);
  std::string header;
  for (const secrets::Secret& k : keys) {
    if (!header.empty()) header += ' ';
    header += "v1," + base64_encode(hmac_sha256(k, content));
  }
  return header;
}

bool verify(std::string_view msg_id, int64_t timestamp, std::string_view body,
            std::string_view header, const secrets::Secret& key) {
  if (msg_id.find('.') != std::string_view::npos) return false;
  std::string expected = base64_encode(hmac_sha256(key, signed_content(msg_id, timestamp, body)));
  bool match = false;
  size_t pos = 0;
  while (pos <= header.size()) {
    size_t end = header.find(' ', pos);
    if (end == std::string_view::npos) end = header.size();
    std::string_view entry = header.substr(pos, end - pos);
    if (entry.substr(0, 3) == "v1,") {
      std::string_view sig = entry.substr(3);
      if (sig.size() == expected.size() &&
          CRYPTO_memcmp(sig.data(), expected.data(), sig.size()) == 0)
        match = true;
    }
    pos = end + 1;
  }
  return match;
}

}  // namespace md::notify
