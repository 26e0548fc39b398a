// Property: analysing a migration file (Postgres's parser on each statement,
// PL/pgSQL of DO blocks and of the functions it calls) never crashes or
// hangs, and every finding points at a line of the file.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "migrate/files.h"

// WHY: libpg_query 15-4.0.0 (Debian 12) does not free its 1-byte stderr
// buffer when a PL/pgSQL body fails to compile: a bounded leak in the library,
// not ours. LeakSanitizer reads this hook from the program it runs in.
extern "C" const char* __lsan_default_suppressions() { return "leak:pg_query_raw_parse\n"; }

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 4096) return 0;  // WHY: libpg_query is linear; longer inputs only slow the search
  std::string_view sql(reinterpret_cast<const char*>(data), size);
  md::migrate::AnalysisContext ctx;
  auto p = md::migrate::parse_file(md::migrate::FileRef{"1", "f", "1_f.sql", {}}, sql, ctx);
  if (!p) return 0;  // unterminated quote, psql meta-command: a clean error
  int lines = 1 + static_cast<int>(std::count(sql.begin(), sql.end(), '\n'));
  for (const auto& f : p->planned.findings())
    if (f.line < 1 || f.line > lines || f.rule.empty()) std::abort();
  for (const auto& st : p->planned.statements)
    for (const auto& l : st.locks)
      if (l.target.empty()) std::abort();
  return 0;
}
