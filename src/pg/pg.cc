#include "pg/pg.h"

#include <libpq-fe.h>

#include <regex>

namespace md::pg {

struct Connection::Impl {
  PGconn* conn = nullptr;
  ServerError last;
  size_t script_completed = 0;
  std::function<void(std::string_view)> notice;
  ~Impl() {
    if (conn) PQfinish(conn);
  }
};

namespace {

void notice_trampoline(void* arg, const char* message) {
  auto* impl = static_cast<Connection::Impl*>(arg);
  if (impl->notice) impl->notice(message);
}

std::string field(const PGresult* res, int code) {
  const char* v = PQresultErrorField(res, code);
  return v ? v : "";
}

Error server_error(const ServerError& se) {
  std::string msg = se.message + " (SQLSTATE " + se.sqlstate + ")";
  if (!se.detail.empty()) msg += "; detail: " + se.detail;
  if (!se.hint.empty()) msg += "; hint: " + se.hint;
  // Class 08 connection, 40 transaction rollback (serialization, deadlock),
  // 55P03 lock_not_available, 57014 query_canceled: may succeed on retry.
  bool retry = se.sqlstate.rfind("08", 0) == 0 || se.sqlstate.rfind("40", 0) == 0 ||
               se.sqlstate == "55P03" || se.sqlstate == "57P03";
  Errc code = se.sqlstate == "55P03"            ? Errc::kTimeout
              : se.sqlstate == "57014"          ? Errc::kTimeout
              : se.sqlstate.rfind("08", 0) == 0 ? Errc::kUnavailable
              : se.sqlstate.rfind("42", 0) == 0 ? Errc::kInvalidArgument
              : se.sqlstate == "23505"          ? Errc::kAlreadyExists
              : se.sqlstate.rfind("23", 0) == 0 ? Errc::kFailedPrecondition
              : se.sqlstate.rfind("40", 0) == 0 ? Errc::kConflict
                                                : Errc::kFailedPrecondition;
  return Error(code, std::move(msg), retry);
}

Rows collect(PGresult* res) {
  Rows out;
  int nf = PQnfields(res), nt = PQntuples(res);
  out.columns.reserve(static_cast<size_t>(nf));
  for (int f = 0; f < nf; ++f) out.columns.emplace_back(PQfname(res, f));
  out.rows.resize(static_cast<size_t>(nt));
  for (int t = 0; t < nt; ++t) {
    auto& row = out.rows[static_cast<size_t>(t)];
    row.reserve(static_cast<size_t>(nf));
    for (int f = 0; f < nf; ++f) {
      if (PQgetisnull(res, t, f))
        row.emplace_back(std::nullopt);
      else
        row.emplace_back(
            std::string(PQgetvalue(res, t, f), static_cast<size_t>(PQgetlength(res, t, f))));
    }
  }
  const char* tuples = PQcmdTuples(res);
  out.affected = (tuples && *tuples) ? std::stoll(tuples) : 0;
  return out;
}

}  // namespace

const Value& Rows::at(size_t r, std::string_view col) const {
  for (size_t c = 0; c < columns.size(); ++c)
    if (columns[c] == col) return rows.at(r)[c];
  MD_CHECK_MSG(false, "no such column");
  __builtin_unreachable();
}

Connection::Connection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Connection::Connection(Connection&&) noexcept = default;
Connection& Connection::operator=(Connection&&) noexcept = default;
Connection::~Connection() = default;

Result<Connection> Connection::connect(const std::string& url, Millis timeout) {
  long secs = std::max<long>(1, static_cast<long>((timeout.count() + 999) / 1000));
  std::string timeout_s = std::to_string(secs);
  const char* keys[] = {"dbname", "connect_timeout", "application_name", nullptr};
  const char* vals[] = {url.c_str(), timeout_s.c_str(), "meshdeploy", nullptr};
  auto impl = std::make_unique<Impl>();
  impl->conn = PQconnectdbParams(keys, vals, /*expand_dbname=*/1);
  if (!impl->conn) return fail(Errc::kInternal, "libpq: out of memory");
  if (PQstatus(impl->conn) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(impl->conn);
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    // libpq messages do not include the password; the URL we add is redacted.
    return fail(Errc::kUnavailable, "connect to " + redact_url(url) + ": " + msg, true);
  }
  PQsetNoticeProcessor(impl->conn, notice_trampoline, impl.get());
  return Connection(std::move(impl));
}

Result<Rows> Connection::exec(std::string_view sql, const Params& params) {
  impl_->last = {};
  std::string text(sql);
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  PGresult* res = PQexecParams(impl_->conn, text.c_str(), static_cast<int>(values.size()), nullptr,
                               values.data(), nullptr, nullptr, 0);
  std::unique_ptr<PGresult, decltype(&PQclear)> guard(res, &PQclear);
  auto st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return collect(res);
  if (res && !field(res, PG_DIAG_SQLSTATE).empty()) {
    ServerError& se = impl_->last;
    se.severity = field(res, PG_DIAG_SEVERITY);
    se.sqlstate = field(res, PG_DIAG_SQLSTATE);
    se.message = field(res, PG_DIAG_MESSAGE_PRIMARY);
    se.detail = field(res, PG_DIAG_MESSAGE_DETAIL);
    se.hint = field(res, PG_DIAG_MESSAGE_HINT);
    se.context = field(res, PG_DIAG_CONTEXT);
    std::string pos = field(res, PG_DIAG_STATEMENT_POSITION);
    se.position = pos.empty() ? 0 : std::stoi(pos);
    return fail(server_error(se));
  }
  std::string msg = PQerrorMessage(impl_->conn);
  while (!msg.empty() && msg.back() == '\n') msg.pop_back();
  return fail(Errc::kUnavailable, "postgres: " + msg, true);
}

Result<Rows> Connection::exec_script(std::string_view sql) {
  impl_->last = {};
  impl_->script_completed = 0;
  std::string text(sql);
  if (!PQsendQuery(impl_->conn, text.c_str())) {
    std::string msg = PQerrorMessage(impl_->conn);
    return fail(Errc::kUnavailable, "postgres: " + msg, true);
  }
  Rows last;
  std::optional<Error> err;
  while (PGresult* res = PQgetResult(impl_->conn)) {
    std::unique_ptr<PGresult, decltype(&PQclear)> guard(res, &PQclear);
    auto st = PQresultStatus(res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
      last = collect(res);
      if (!err) ++impl_->script_completed;
    } else if (st == PGRES_EMPTY_QUERY) {
      if (!err) ++impl_->script_completed;
    } else if (!err) {
      ServerError& se = impl_->last;
      se.severity = field(res, PG_DIAG_SEVERITY);
      se.sqlstate = field(res, PG_DIAG_SQLSTATE);
      se.message = field(res, PG_DIAG_MESSAGE_PRIMARY);
      se.detail = field(res, PG_DIAG_MESSAGE_DETAIL);
      se.hint = field(res, PG_DIAG_MESSAGE_HINT);
      se.context = field(res, PG_DIAG_CONTEXT);
      std::string pos = field(res, PG_DIAG_STATEMENT_POSITION);
      se.position = pos.empty() ? 0 : std::stoi(pos);
      if (se.sqlstate.empty()) {
        std::string msg = PQerrorMessage(impl_->conn);
        err = Error(Errc::kUnavailable, "postgres: " + msg, true);
      } else {
        err = server_error(se);
      }
    }
  }
  if (err) return fail(*err);
  return last;
}

const ServerError& Connection::last_server_error() const { return impl_->last; }
size_t Connection::script_completed() const { return impl_->script_completed; }
int Connection::server_version() const { return PQserverVersion(impl_->conn); }
int Connection::backend_pid() const { return PQbackendPID(impl_->conn); }
bool Connection::ok() const {
  return impl_ && impl_->conn && PQstatus(impl_->conn) == CONNECTION_OK;
}

bool Connection::cancel() {
  PGcancel* c = PQgetCancel(impl_->conn);
  if (!c) return false;
  char buf[256];
  bool sent = PQcancel(c, buf, sizeof buf) == 1;
  PQfreeCancel(c);
  return sent;
}

void Connection::on_notice(std::function<void(std::string_view)> fn) {
  impl_->notice = std::move(fn);
}

std::string quote_ident(std::string_view ident) {
  std::string out = "\"";
  for (char c : ident) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string quote_literal(std::string_view lit) {
  bool backslash = lit.find('\\') != std::string_view::npos;
  std::string out = backslash ? "E'" : "'";
  for (char c : lit) {
    if (c == '\'') out += '\'';
    if (c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

std::string redact_url(std::string_view url) {
  std::string s(url);
  // scheme://user:password@host -> scheme://user:***@host
  static const std::regex userinfo(R"(^([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@]*):[^@/]*@)");
  s = std::regex_replace(s, userinfo, "$1:***@");
  // password=... in keyword strings or query parameters
  static const std::regex kw(R"((password\s*=\s*)('[^']*'|[^\s&]*))", std::regex::icase);
  return std::regex_replace(s, kw, "$1***");
}

Result<std::vector<std::pair<std::string, std::string>>> env_for(const std::string& url) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(url.c_str(), &err);
  if (!opts) {
    std::string msg = err ? err : "out of memory";
    if (err) PQfreemem(err);
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    return fail(Errc::kInvalidArgument, "database URL " + redact_url(url) + ": " + msg);
  }
  std::vector<std::pair<std::string, std::string>> out;
  for (PQconninfoOption* o = opts; o->keyword; ++o)
    if (o->val && *o->val && o->envvar) out.emplace_back(o->envvar, o->val);
  PQconninfoFree(opts);
  return out;
}

Result<std::vector<Value>> parse_text_array(std::string_view t) {
  if (t.size() < 2 || t.front() != '{' || t.back() != '}')
    return fail(Errc::kInvalidArgument, "not a Postgres array: " + std::string(t.substr(0, 40)));
  std::vector<Value> out;
  size_t i = 1, end = t.size() - 1;
  if (i == end) return out;
  while (i <= end) {
    std::string item;
    bool quoted = false;
    if (t[i] == '"') {
      quoted = true;
      ++i;
      while (i < end && t[i] != '"') {
        if (t[i] == '\\' && i + 1 < end) ++i;
        item += t[i++];
      }
      if (i >= end) return fail(Errc::kInvalidArgument, "unterminated quoted array element");
      ++i;  // closing quote
    } else {
      while (i < end && t[i] != ',') item += t[i++];
    }
    if (!quoted && item == "NULL")
      out.emplace_back(std::nullopt);
    else
      out.emplace_back(std::move(item));
    if (i < end && t[i] != ',') return fail(Errc::kInvalidArgument, "malformed array element");
    ++i;  // comma or the closing brace
  }
  return out;
}

std::string make_text_array(const std::vector<std::string>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

}  // namespace md::pg
