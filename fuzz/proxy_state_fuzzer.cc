// Fuzzes the proxy's state file decoder (src/proxy/state_file.h): whatever
// the bytes, it returns a record or an error, and a record it accepts
// encodes and decodes to the same bytes. Inputs that are JSON get their
// checksum fixed up too, so the content checks are reached.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

#include "core/hash.h"
#include "core/json.h"
#include "proxy/state_file.h"

namespace {
void check(std::string_view in) {
  auto r = md::proxy::decode_state(in, "fuzz");
  if (!r) return;
  std::string again = md::proxy::encode_state(*r);
  auto r2 = md::proxy::decode_state(again, "fuzz");
  if (!r2 || md::proxy::encode_state(*r2) != again) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  check(in);
  auto j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_object() && j.contains("state")) {
    j["checksum"] = md::short_checksum(md::to_json_text(j["state"]));
    check(md::to_json_text(j));
  }
  return 0;
}
