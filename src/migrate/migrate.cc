// Entry points of the engine. WHY stubs: the contract (migrate.h) lands first
// so deploy/ can build against it; the implementation follows in this folder.
#include "migrate/migrate.h"

namespace md::migrate {
namespace {
Error not_yet() { return Error(Errc::kInternal, "migration engine not implemented yet"); }
}  // namespace

Result<Plan> plan_offline(const Request&, int) { return fail(not_yet()); }
Result<Plan> plan(const Request&) { return fail(not_yet()); }
ApplyReport apply(const Request&, Selection) {
  ApplyReport r;
  r.error = not_yet();
  return r;
}
Result<std::vector<std::string>> baseline(const Request&, const std::string&) { return fail(not_yet()); }
Result<std::filesystem::path> backup(const Request&) { return fail(not_yet()); }
Status restore(const Request&, const std::filesystem::path&) { return fail(not_yet()); }
}  // namespace md::migrate
