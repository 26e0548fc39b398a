// The Postgres store (in progress: the SQLite store is the default backend).
#include "state/store_impl.h"

namespace md::state::internal {

Result<std::unique_ptr<Store>> open_postgres(const std::string& url, Clock&,
                                             std::span<const SchemaStep>) {
  MD_TRY(parse_pg_url(url));
  return fail(Errc::kFailedPrecondition, "the Postgres state store is not available in this build yet");
}

}  // namespace md::state::internal
