#include "proxy/state_file.h"

#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "core/hash.h"
#include "core/json.h"

namespace md::proxy {

using nlohmann::json;

namespace {

constexpr const char* kFormat = "meshdeploy-proxy-state";

json set_json(const std::optional<SetRecord>& s) {
  if (!s) return nullptr;
  json t = json::array();
  for (const auto& e : s->targets) t.push_back(e.str());
  return {{"id", s->id}, {"targets", t}};
}

Result<std::optional<SetRecord>> set_from(const json& j, const std::string& where) {
  if (j.is_null()) return std::optional<SetRecord>();
  SetRecord s;
  s.id = j.at("id").get<uint64_t>();
  if (s.id == 0) return fail(Errc::kCorruption, where + ": set id 0");
  for (const auto& t : j.at("targets"))
    s.targets.push_back(MD_TRY_CTX(parse_endpoint(t.get<std::string>()), where));
  return std::optional<SetRecord>(std::move(s));
}

}  // namespace

std::string encode_state(const StateRecord& s) {
  json services = json::array();
  for (const auto& r : s.services)
    services.push_back({{"spec", to_json(r.spec)},
                        {"live", set_json(r.live)},
                        {"canary", set_json(r.canary)},
                        {"canary_weight", r.canary_weight},
                        {"maintenance", {{"on", r.maintenance}, {"page", r.maintenance_page}}},
                        {"pause",
                         {{"on", r.paused},
                          {"max_held", r.pause.max_held},
                          {"max_wait_ms", r.pause.max_wait.count()}}}});
  json state = {{"next_set_id", s.next_set_id}, {"services", services}};
  json doc = {{"format", kFormat},
              {"version", kStateVersion},
              {"checksum", short_checksum(to_json_text(state))},
              {"state", state}};
  return to_json_text(doc, 2) + "\n";
}

Result<StateRecord> decode_state(std::string_view data, const std::string& where) {
  json doc;
  try {
    doc = json::parse(data);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for 1e99999
    return fail(Errc::kCorruption, where + ": not valid JSON (" + e.what() + ")");
  }
  try {
    if (!doc.is_object() || doc.value("format", "") != kFormat)
      return fail(Errc::kCorruption, where + ": not a meshdeploy proxy state file");
    int version = doc.at("version").get<int>();
    if (version > kStateVersion)
      return fail(Errc::kFailedPrecondition,
                  where + ": format version " + std::to_string(version) +
                      " was written by a newer meshdeploy (this one reads up to " +
                      std::to_string(kStateVersion) + ")");
    if (version < 1) return fail(Errc::kCorruption, where + ": bad format version");
    const json& state = doc.at("state");
    std::string want = doc.at("checksum").get<std::string>();
    std::string got = short_checksum(to_json_text(state));
    if (want != got)
      return fail(Errc::kCorruption, where + ": checksum mismatch (file says " + want +
                                         ", content gives " + got + "): edited or damaged");
    StateRecord s;
    s.next_set_id = state.at("next_set_id").get<uint64_t>();
    for (const auto& j : state.at("services")) {
      ServiceRecord r;
      auto spec = spec_from_json(j.at("spec"));
      if (!spec) return fail(Errc::kCorruption, where + ": " + spec.error().what());
      r.spec = std::move(*spec);
      std::string w = where + ": service " + r.spec.name;
      r.live = MD_TRY(set_from(j.at("live"), w));
      r.canary = MD_TRY(set_from(j.at("canary"), w));
      r.canary_weight = j.at("canary_weight").get<int>();
      r.maintenance = j.at("maintenance").at("on").get<bool>();
      r.maintenance_page = j.at("maintenance").at("page").get<std::string>();
      r.paused = j.at("pause").at("on").get<bool>();
      r.pause.max_held = j.at("pause").at("max_held").get<int64_t>();
      r.pause.max_wait = Millis(j.at("pause").at("max_wait_ms").get<int64_t>());
      if (r.canary_weight < 0 || r.canary_weight > 100)
        return fail(Errc::kCorruption, w + ": canary_weight out of range");
      for (const auto* set : {&r.live, &r.canary})
        if (*set && (*set)->id >= s.next_set_id)
          return fail(Errc::kCorruption, w + ": set id not below next_set_id");
      s.services.push_back(std::move(r));
    }
    return s;
  } catch (const json::exception& e) {
    return fail(Errc::kCorruption, where + ": " + e.what());
  }
}

Result<std::optional<StateRecord>> load_state(const std::filesystem::path& path) {
  auto data = fs::read_file(path);
  if (!data) {
    if (data.error().code() == Errc::kNotFound) return std::optional<StateRecord>();
    return fail(data.error());
  }
  return std::optional<StateRecord>(MD_TRY(decode_state(*data, "state file " + path.string())));
}

Status save_state(const std::filesystem::path& path, const StateRecord& s) {
  return fs::atomic_write(path, encode_state(s), 0600);
}

}  // namespace md::proxy
