// The HTTPS listener's TLS: an OpenSSL adapter for non-blocking sockets on
// the worker loops. Internal to src/proxy; the only file with OpenSSL calls.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <memory>

#include "core/error.h"

struct ssl_st;
struct ssl_ctx_st;

namespace md::proxy {

// A server context from PEM files. Thread-safe once loaded.
class TlsContext {
 public:
  // kNotFound / kInvalidArgument naming the file when a file is missing, not
  // PEM, or the key does not match the certificate.
  static Result<std::unique_ptr<TlsContext>> load(const std::filesystem::path& cert_chain,
                                                  const std::filesystem::path& key);
  ~TlsContext();
  ssl_ctx_st* get() const { return ctx_; }

 private:
  explicit TlsContext(ssl_ctx_st* ctx) : ctx_(ctx) {}
  ssl_ctx_st* ctx_;
};

// Results of the calls below: > 0 bytes; 0 end of stream (read) ;
// kTlsAgain: would block, wait for the next readiness edge; kTlsError: fatal.
inline constexpr ssize_t kTlsAgain = -1;
inline constexpr ssize_t kTlsError = -2;

ssl_st* tls_new(const TlsContext& ctx, int fd);  // nullptr on failure
// 1 done, kTlsAgain in progress, kTlsError failed.
ssize_t tls_handshake(ssl_st* ssl);
ssize_t tls_read(ssl_st* ssl, char* buf, size_t len);
ssize_t tls_write(ssl_st* ssl, const char* buf, size_t len);
// Sends close_notify if possible (never blocks) and frees the session.
void tls_close(ssl_st* ssl);

}  // namespace md::proxy
