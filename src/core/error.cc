#include "core/error.h"

namespace md {

std::string_view errc_name(Errc c) {
  switch (c) {
    case Errc::kInvalidArgument:
      return "invalid_argument";
    case Errc::kNotFound:
      return "not_found";
    case Errc::kAlreadyExists:
      return "already_exists";
    case Errc::kPermissionDenied:
      return "permission_denied";
    case Errc::kFailedPrecondition:
      return "failed_precondition";
    case Errc::kConflict:
      return "conflict";
    case Errc::kUnavailable:
      return "unavailable";
    case Errc::kTimeout:
      return "timeout";
    case Errc::kCorruption:
      return "corruption";
    case Errc::kIo:
      return "io";
    case Errc::kCancelled:
      return "cancelled";
    case Errc::kInternal:
      return "internal";
  }
  return "unknown";
}

void check_failed(const char* expr, const char* file, int line, const char* msg) {
  std::fprintf(stderr, "meshdeploy: internal check failed: %s at %s:%d%s%s\n", expr, file, line,
               msg ? ": " : "", msg ? msg : "");
  std::abort();
}

}  // namespace md
