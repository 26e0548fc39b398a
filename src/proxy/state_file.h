// The persisted routing state (docs/formats/proxy-state.md): what a
// restarted proxy needs to serve as before. Internal to src/proxy.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "proxy/proxy.h"

namespace md::proxy {

struct SetRecord {
  uint64_t id = 0;
  std::vector<Endpoint> targets;
  bool operator==(const SetRecord&) const = default;
};

struct ServiceRecord {
  ServiceSpec spec;
  std::optional<SetRecord> live;
  std::optional<SetRecord> canary;
  int canary_weight = 0;
  bool maintenance = false;
  std::string maintenance_page;
  bool paused = false;
  PauseOptions pause;
};

struct StateRecord {
  uint64_t next_set_id = 1;
  std::vector<ServiceRecord> services;
};

inline constexpr int kStateVersion = 1;

// The file's bytes (pure).
std::string encode_state(const StateRecord& s);
// Parses and verifies the bytes. kCorruption (not JSON, wrong format name,
// checksum mismatch, invalid content), kFailedPrecondition (a newer version).
// `where` names the file in errors.
Result<StateRecord> decode_state(std::string_view data, const std::string& where);

// nullopt when the file does not exist.
Result<std::optional<StateRecord>> load_state(const std::filesystem::path& path);
// Atomic, durable replace with mode 0600.
Status save_state(const std::filesystem::path& path, const StateRecord& s);

}  // namespace md::proxy
