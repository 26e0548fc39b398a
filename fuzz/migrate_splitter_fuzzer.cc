// Property: split() never crashes, its pieces are contiguous and cover the
// input exactly, every token lies inside the input, and the Supabase view of
// the statements never holds an empty string.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "migrate/lexer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view sql(reinterpret_cast<const char*>(data), size);
  for (bool scs : {true, false}) {
    md::migrate::SplitResult s = md::migrate::split(sql, scs);
    size_t at = 0;
    for (const auto& p : s.pieces) {
      if (p.begin != at || p.end < p.begin || p.end > size) std::abort();
      if (p.has_code && (p.code_begin < p.begin || p.code_end > p.end || p.code_begin > p.code_end))
        std::abort();
      at = p.end;
    }
    if (at != size) std::abort();
    for (const auto& t : s.lex.tokens)
      if (t.offset >= size && size > 0) std::abort();
    for (const auto& st : md::migrate::supabase_statements(sql, s))
      if (st.empty()) std::abort();
  }
  return 0;
}
