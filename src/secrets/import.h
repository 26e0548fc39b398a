// `secrets import`: what a dotenv file puts into a vault, all or nothing.
// WHY a header of its own beside secrets.h: only the import command needs
// it, and secrets.h is included almost everywhere.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "secrets/secrets.h"

namespace md::secrets {

// What a dotenv file would put into a vault. Pure: no file, no vault.
struct DotenvImport {
  std::map<std::string, Secret> values;  // name -> value; a later line wins
  std::vector<std::string> skipped;      // names with an empty value (dotenv's "unset"), in order
  // "FILE:LINE: message" per refused name or value; never a value. Not empty
  // = nothing may be imported (all or nothing).
  std::vector<std::string> problems;
};
// Parses `text` (dotenv syntax, config::parse_dotenv; `file` names it in
// messages) into an import. A syntax error is an error (kInvalidArgument,
// file:line); refused names and values are `problems`, not errors.
Result<DotenvImport> plan_dotenv_import(std::string_view text, const std::string& file);

// What applying an import changed, names sorted.
struct ImportOutcome {
  std::vector<std::string> added, changed, unchanged;
};
// Sets every value of `import` in `vault` at `now` (nothing is saved).
// kFailedPrecondition if `import` has problems; Vault::set's errors.
Result<ImportOutcome> apply_import(Vault& vault, DotenvImport import, SysTime now);

}  // namespace md::secrets
