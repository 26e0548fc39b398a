// The one libpq adapter (../shared/STYLE.md point 14). Everything that talks
// to Postgres — the state store's Postgres backend, the migration engine —
// goes through this header; no other folder includes libpq-fe.h.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/error.h"

namespace md::pg {

using Value = std::optional<std::string>;  // nullopt is SQL NULL
using Params = std::vector<Value>;

struct Rows {
  std::vector<std::string> columns;
  std::vector<std::vector<Value>> rows;
  int64_t affected = 0;  // rows changed by INSERT/UPDATE/DELETE, else 0
  // Value of row r, column named `col`; nullopt for NULL. MD_CHECKs the name.
  const Value& at(size_t r, std::string_view col) const;
  bool empty() const { return rows.empty(); }
};

// What the server said about a failed statement (the fields of PQresultErrorField).
struct ServerError {
  std::string severity;  // ERROR, FATAL, ...
  std::string sqlstate;  // e.g. 55P03 lock_not_available
  std::string message;
  std::string detail;
  std::string hint;
  std::string context;
  int position = 0;  // 1-based character offset into the statement, 0 if none
};

// One connection. Not thread-safe: one owner at a time (single strand).
// Movable; closes on destruction.
class Connection {
 public:
  // Connects to a libpq URL or keyword string. Fails with kUnavailable
  // (retryable) when the server cannot be reached within `timeout`; the error
  // never contains the password.
  static Result<Connection> connect(const std::string& url, Millis timeout = Millis(10000));

  Connection(Connection&&) noexcept;
  Connection& operator=(Connection&&) noexcept;
  ~Connection();

  // Runs one statement with $1..$n text parameters (extended protocol).
  // A server error becomes an Error whose message is "<message> (SQLSTATE x)"
  // plus detail and hint; last_server_error() has the fields. Blocks.
  Result<Rows> exec(std::string_view sql, const Params& params = {});

  // Runs SQL text that may hold several statements (simple protocol), as
  // Postgres runs a script. Returns the last statement's rows.
  Result<Rows> exec_script(std::string_view sql);

  // Statements of the last exec_script that completed before it returned
  // (all of them on success; the index of the failing one on error).
  size_t script_completed() const;

  // Fields of the last failed exec/exec_script; empty sqlstate if it was not
  // a server error (e.g. the connection broke).
  const ServerError& last_server_error() const;

  // Server version as an integer, e.g. 150018 for 15.18.
  int server_version() const;
  // Backend process id (for pg_terminate_backend / lock diagnostics).
  int backend_pid() const;
  // True when the connection is usable.
  bool ok() const;
  // Asks the server to cancel the statement running on this connection, from
  // any thread. Returns false if the request could not be sent.
  bool cancel();
  // Receives NOTICE/WARNING messages. Runs on the caller's thread during exec.
  void on_notice(std::function<void(std::string_view)> fn);

  struct Impl;  // public name so the libpq notice callback can reach it

 private:
  explicit Connection(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Quotes an identifier ("a""b") or a literal ('it''s') for SQL text.
std::string quote_ident(std::string_view ident);
std::string quote_literal(std::string_view lit);

// The URL with any password replaced by "***", for logs and errors.
std::string redact_url(std::string_view url);

// The libpq environment variables (PGHOST, PGPASSWORD, ...) equivalent to a
// URL or keyword string, for child processes such as pg_dump: the password
// goes through the environment, never argv. kInvalidArgument if unparsable
// (the message never holds the password).
Result<std::vector<std::pair<std::string, std::string>>> env_for(const std::string& url);

// Parses a Postgres text array ("{a,\"b c\",NULL}") into its elements.
Result<std::vector<Value>> parse_text_array(std::string_view text);
// Builds a Postgres text-array literal from elements.
std::string make_text_array(const std::vector<std::string>& items);

}  // namespace md::pg
