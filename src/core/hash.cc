// WHY OpenSSL here: it is already linked for TLS (proxy) and SMTP; its EVP
// SHA-256 uses the CPU's SHA extensions. libsodium stays inside secrets/.
#include "core/hash.h"

#include <openssl/evp.h>

#include <fstream>

namespace md {
namespace {
std::string to_hex(const unsigned char* p, unsigned n) {
  static const char* d = "0123456789abcdef";
  std::string s(n * 2, '0');
  for (unsigned i = 0; i < n; ++i) {
    s[2 * i] = d[p[i] >> 4];
    s[2 * i + 1] = d[p[i] & 15];
  }
  return s;
}
}  // namespace

std::string sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  EVP_Digest(data.data(), data.size(), md, &n, EVP_sha256(), nullptr);
  return to_hex(md, n);
}

Result<std::string> sha256_file_hex(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) return fail(Errc::kNotFound, "no file " + path.string());
    return fail(Errc::kIo, "cannot open " + path.string());
  }
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  char buf[1 << 16];
  while (in) {
    in.read(buf, sizeof buf);
    if (in.gcount() > 0) EVP_DigestUpdate(ctx, buf, static_cast<size_t>(in.gcount()));
  }
  bool bad = in.bad();
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  EVP_DigestFinal_ex(ctx, md, &n);
  EVP_MD_CTX_free(ctx);
  if (bad) return fail(Errc::kIo, "read " + path.string());
  return to_hex(md, n);
}

std::string short_checksum(std::string_view data) { return sha256_hex(data).substr(0, 16); }

}  // namespace md
