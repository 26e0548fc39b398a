#include "proxy/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cerrno>
#include <string>

namespace md::proxy {
namespace {

std::string ssl_errors() {
  std::string out;
  unsigned long e;
  char buf[256];
  while ((e = ERR_get_error()) != 0) {
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown TLS error" : out;
}

int alpn_select(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void*) {
  // Only HTTP/1.1 is spoken; a client offering h2 only gets no ALPN.
  static const unsigned char kProto[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  unsigned char* sel = nullptr;
  if (SSL_select_next_proto(&sel, outlen, kProto, sizeof kProto, in, inlen) ==
      OPENSSL_NPN_NEGOTIATED) {
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

}  // namespace

Result<std::unique_ptr<TlsContext>> TlsContext::load(const std::filesystem::path& cert,
                                                     const std::filesystem::path& key) {
  std::error_code ec;
  if (!std::filesystem::exists(cert, ec))
    return fail(Errc::kNotFound, "TLS certificate " + cert.string() + ": no such file");
  if (!std::filesystem::exists(key, ec))
    return fail(Errc::kNotFound, "TLS key " + key.string() + ": no such file");
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) return fail(Errc::kInternal, "SSL_CTX_new: " + ssl_errors());
  auto ctx_holder = std::unique_ptr<TlsContext>(new TlsContext(ctx));
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
  SSL_CTX_set_alpn_select_cb(ctx, alpn_select, nullptr);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1)
    return fail(Errc::kInvalidArgument, "TLS certificate " + cert.string() +
                                            ": not a PEM certificate chain (" + ssl_errors() + ")");
  if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1)
    return fail(Errc::kInvalidArgument,
                "TLS key " + key.string() + ": not a PEM private key (" + ssl_errors() + ")");
  if (SSL_CTX_check_private_key(ctx) != 1)
    return fail(Errc::kInvalidArgument,
                "TLS key " + key.string() + " does not match certificate " + cert.string());
  return ctx_holder;
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

ssl_st* tls_new(const TlsContext& ctx, int fd) {
  SSL* ssl = SSL_new(ctx.get());
  if (!ssl) return nullptr;
  if (SSL_set_fd(ssl, fd) != 1) {
    SSL_free(ssl);
    return nullptr;
  }
  SSL_set_accept_state(ssl);
  return ssl;
}

namespace {
ssize_t result(SSL* ssl, int rc) {
  int err = SSL_get_error(ssl, rc);
  switch (err) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
      return kTlsAgain;
    case SSL_ERROR_ZERO_RETURN:
      return 0;
    case SSL_ERROR_SYSCALL:
      if (errno == EAGAIN) return kTlsAgain;
      ERR_clear_error();
      return kTlsError;
    default:
      ERR_clear_error();
      return kTlsError;
  }
}
}  // namespace

ssize_t tls_handshake(ssl_st* ssl) {
  int rc = SSL_do_handshake(ssl);
  if (rc == 1) return 1;
  ssize_t r = result(ssl, rc);
  return r == 0 ? kTlsError : r;
}

ssize_t tls_read(ssl_st* ssl, char* buf, size_t len) {
  size_t n = 0;
  int rc = SSL_read_ex(ssl, buf, len, &n);
  if (rc == 1) return static_cast<ssize_t>(n);
  return result(ssl, 0);
}

ssize_t tls_write(ssl_st* ssl, const char* buf, size_t len) {
  size_t n = 0;
  int rc = SSL_write_ex(ssl, buf, len, &n);
  if (rc == 1) return static_cast<ssize_t>(n);
  ssize_t r = result(ssl, 0);
  return r == 0 ? kTlsError : r;
}

void tls_close(ssl_st* ssl) {
  if (!ssl) return;
  if (SSL_is_init_finished(ssl)) SSL_shutdown(ssl);  // non-blocking socket: best effort
  ERR_clear_error();
  SSL_free(ssl);
}

}  // namespace md::proxy
