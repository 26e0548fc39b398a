// Responses the proxy makes itself (errors, 404 for unknown hosts),
// prebuilt once so the data path only points at them. Internal.
#pragma once

#include <string_view>

namespace md::proxy {

// The full response bytes for `status` (400, 404, 405, 408, 413, 431, 502,
// 503, 504, 505; others map to 500), with "Connection: close" when `close`.
// The bytes live for the whole process.
std::string_view local_response(int status, bool close);

}  // namespace md::proxy
