// `secrets import`: a dotenv file into a vault, all or nothing.
#include "config/config.h"
#include "secrets/import.h"

namespace md::secrets {

Result<DotenvImport> plan_dotenv_import(std::string_view text, const std::string& file) {
  auto entries = MD_TRY(config::parse_dotenv(text, file));
  DotenvImport out;
  for (config::DotenvEntry& e : entries) {
    std::string at = file + ":" + std::to_string(e.line) + ": ";
    // WHY skip, not refuse: `NAME=` in a dotenv file means "unset", and
    // .env files keep optional settings that way.
    if (e.value.empty()) {
      out.skipped.push_back(e.key);
      out.values.erase(e.key);
    } else if (auto st = check_secret_name(e.key); !st) {
      out.problems.push_back(at + st.error().message());
    } else if (auto sv = check_secret_value(e.key, e.value); !sv) {
      out.problems.push_back(at + sv.error().message());
    } else {
      out.values.insert_or_assign(e.key, Secret(std::move(e.value)));
    }
  }
  return out;
}

Result<ImportOutcome> apply_import(Vault& vault, DotenvImport import, SysTime now) {
  if (!import.problems.empty())
    return fail(Errc::kFailedPrecondition,
                std::to_string(import.problems.size()) + " problem(s); nothing was imported");
  ImportOutcome out;
  for (auto& [name, value] : import.values) {
    bool existed = vault.contains(name);
    bool changed = MD_TRY(vault.set(name, std::move(value), now));
    (!changed ? out.unchanged : existed ? out.changed : out.added).push_back(name);
  }
  return out;
}

}  // namespace md::secrets
