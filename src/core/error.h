// Errors from the world are values: Result<T> = tl::expected<T, Error>.
// Bugs crash through MD_CHECK; never assert on the environment.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <utility>

namespace md {

// What kind of failure. Callers branch on this, never on message text.
enum class Errc {
  kInvalidArgument,     // bad input from a user or file (config, CLI, request)
  kNotFound,            // a named thing does not exist
  kAlreadyExists,       // creating something that is already there
  kPermissionDenied,    // RBAC, file modes, wrong key
  kFailedPrecondition,  // state does not allow it (drift, unhealthy, wrong phase)
  kConflict,            // someone else holds it (locks, concurrent deploys)
  kUnavailable,         // peer down or unreachable; retry may help
  kTimeout,             // deadline passed; retry may help
  kCorruption,          // checksum/auth failure of stored data
  kIo,                  // local I/O failure
  kCancelled,           // stopped on request (signal, abort)
  kInternal,            // a failure of ours that is not a crash
};

// Name of the code, e.g. "not_found". Never empty.
std::string_view errc_name(Errc c);

// An error: a code, a message, a context chain and whether a retry may help.
// Cheap to move; never carries a secret (callers pass redacted text).
class Error {
 public:
  Error(Errc code, std::string message, bool retryable = false)
      : code_(code), message_(std::move(message)), retryable_(retryable) {}

  Errc code() const { return code_; }
  bool retryable() const { return retryable_; }
  // The innermost message without context, e.g. "connect: timeout".
  const std::string& message() const { return message_; }
  // The full chain, outermost first: "deploy step 7: start v42: connect: timeout".
  std::string what() const { return context_.empty() ? message_ : context_ + message_; }

  // Prepends one context level. Returns *this for chaining.
  Error& context(std::string_view ctx) {
    context_.insert(0, std::string(ctx) + ": ");
    return *this;
  }
  Error&& with_context(std::string_view ctx) && { return std::move(context(ctx)); }

 private:
  Errc code_;
  std::string message_;
  std::string context_;
  bool retryable_;
};

template <class T>
using Result = tl::expected<T, Error>;
using Status = tl::expected<void, Error>;

// Builds the error side of a Result: `return md::fail(Errc::kNotFound, "no release v3");`
inline tl::unexpected<Error> fail(Errc code, std::string message, bool retryable = false) {
  return tl::unexpected<Error>(Error(code, std::move(message), retryable));
}
inline tl::unexpected<Error> fail(Error e) { return tl::unexpected<Error>(std::move(e)); }

// Success for Status-returning functions: `return md::ok();`
inline Status ok() { return {}; }

[[noreturn]] void check_failed(const char* expr, const char* file, int line, const char* msg);

}  // namespace md

// Crashes loudly on a programming error. Not for input or environment checks.
#define MD_CHECK(cond)                                                   \
  do {                                                                   \
    if (!(cond)) ::md::check_failed(#cond, __FILE__, __LINE__, nullptr); \
  } while (0)
#define MD_CHECK_MSG(cond, msg)                                        \
  do {                                                                 \
    if (!(cond)) ::md::check_failed(#cond, __FILE__, __LINE__, (msg)); \
  } while (0)

// Unwraps a Result or returns its error from the enclosing function (GNU
// statement expression, supported by g++ and clang).
#define MD_TRY(expr)                                                                 \
  ({                                                                                 \
    auto&& md_try_result_ = (expr);                                                  \
    if (!md_try_result_) return ::tl::unexpected(std::move(md_try_result_).error()); \
    std::move(md_try_result_).value();                                               \
  })
// Same, for Status (no value).
#define MD_TRY_STATUS(expr)                                                          \
  do {                                                                               \
    auto&& md_try_status_ = (expr);                                                  \
    if (!md_try_status_) return ::tl::unexpected(std::move(md_try_status_).error()); \
  } while (0)
// Same, adding a context level to the error on the way out.
#define MD_TRY_CTX(expr, ctx)                                                       \
  ({                                                                                \
    auto&& md_try_result_ = (expr);                                                 \
    if (!md_try_result_)                                                            \
      return ::tl::unexpected(std::move(md_try_result_.error()).with_context(ctx)); \
    std::move(md_try_result_).value();                                              \
  })
