// The one adapter for Postgres's own SQL and PL/pgSQL grammar (libpg_query
// 15, Debian's libpg-query-dev): statement text in, the server's parse tree
// out as JSON. Nothing else in meshdeploy includes pg_query.h (STYLE 14).
// Thread-safe (libpg_query keeps its memory per thread); blocks only on CPU.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace md::migrate::pgquery {

// Keys keep the parser's order, so a walk visits a body in source order.
using Tree = nlohmann::ordered_json;

struct Parsed {
  Tree tree;          // parse_sql: {"stmts": [{"stmt": {"<Node>": {...}}}, ...]};
                      // parse_plpgsql: [{"PLpgSQL_function": {...}}, ...]
  std::string error;  // "" on success, else the parser's message (the tree is then null)
  int position = 0;   // 1-based character of the error in the input (0 = unknown)
  bool ok() const { return error.empty(); }
};

// Raw parse of one or more SQL statements. A syntax error is not a failure of
// the call: it comes back in `error`, as does input with a NUL byte.
Parsed parse_sql(std::string_view sql);

// PL/pgSQL bodies of every DO block and LANGUAGE plpgsql CREATE FUNCTION in
// `sql`, in order. Same error convention as parse_sql.
Parsed parse_plpgsql(std::string_view sql);

}  // namespace md::migrate::pgquery
