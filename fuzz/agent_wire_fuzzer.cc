// Fuzzes the agent's two parsers of outside bytes: its state file
// (src/agent/state_file.h, read back after a restart) and the JSON bodies of
// its control API (decode<T> in src/agent/api.h). Whatever the bytes, each
// returns a value or an error; whatever it accepts encodes and decodes to
// the same bytes. JSON inputs are also wrapped in a valid header, checksum
// and all, so the body checks are reached.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "agent/api.h"
#include "agent/state_file.h"
#include "core/hash.h"
#include "core/json.h"

namespace {
using nlohmann::json;

void check_state(std::string_view in) {
  auto r = md::agent::decode_state(in);
  if (!r) return;
  std::string again = md::agent::encode_state(*r);
  auto r2 = md::agent::decode_state(again);
  if (!r2 || md::agent::encode_state(*r2) != again) std::abort();
}

template <class T>
void check_request(const json& j) {
  auto r = md::agent::decode<T>(j);
  if (!r) return;
  const json again = md::agent::to_json(*r);
  auto r2 = md::agent::decode<T>(again);
  if (!r2 || md::agent::to_json(*r2) != again) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  check_state(in);
  json j = json::parse(in, nullptr, false);
  if (j.is_discarded()) return 0;
  if (j.is_object()) {
    std::string body = md::to_json_text(j, 1) + "\n";
    check_state("meshdeploy-agent-state 1 " + md::sha256_hex(body) + "\n" + body);
  }
  using namespace md::agent;
  check_request<RegisterArtifact>(j);
  check_request<Unpack>(j);
  check_request<Start>(j);
  check_request<WaitReady>(j);
  check_request<Route>(j);
  check_request<Drain>(j);
  check_request<Stop>(j);
  check_request<Maintenance>(j);
  check_request<Logs>(j);
  check_request<Prune>(j);
  check_request<md::config::Service>(j);
  return 0;
}
