#include "migrate/pgquery.h"

#include <pg_query.h>

namespace md::migrate::pgquery {
namespace {

// WHY a copy: libpg_query reads a C string, and a statement is a view into a file.
std::string c_string(std::string_view sql, std::string* error) {
  if (sql.find('\0') != std::string_view::npos) *error = "NUL byte in SQL text";
  return std::string(sql);
}

template <typename R>
bool take_error(const R& r, Parsed& out) {
  if (!r.error) return false;
  out.error = r.error->message ? r.error->message : "parse error";
  out.position = r.error->cursorpos;
  return true;
}

Tree to_tree(const char* text, Parsed& out) {
  Tree t = Tree::parse(text ? text : "null", nullptr, /*allow_exceptions=*/false);
  if (t.is_discarded()) out.error = "libpg_query returned malformed JSON";
  return t;
}

}  // namespace

Parsed parse_sql(std::string_view sql) {
  Parsed out;
  std::string s = c_string(sql, &out.error);
  if (!out.ok()) return out;
  PgQueryParseResult r = pg_query_parse(s.c_str());
  if (!take_error(r, out)) out.tree = to_tree(r.parse_tree, out);
  pg_query_free_parse_result(r);
  if (!out.ok()) out.tree = nullptr;
  return out;
}

Parsed parse_plpgsql(std::string_view sql) {
  Parsed out;
  std::string s = c_string(sql, &out.error);
  if (!out.ok()) return out;
  PgQueryPlpgsqlParseResult r = pg_query_parse_plpgsql(s.c_str());
  if (!take_error(r, out)) out.tree = to_tree(r.plpgsql_funcs, out);
  pg_query_free_plpgsql_parse_result(r);
  if (!out.ok()) out.tree = nullptr;
  return out;
}

}  // namespace md::migrate::pgquery
