#include "migrate/runner.h"

#include <algorithm>

#include "migrate/analyze.h"
#include "migrate/files.h"
#include "migrate/history.h"

namespace md::migrate {
namespace {

constexpr const char* kLockNotAvailable = "55P03";

size_t chars(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

std::string clip(std::string_view s, size_t max = 300) {
  return s.size() <= max ? std::string(s) : std::string(s.substr(0, max)) + " ...";
}

FileError statement_error(const PlannedFile& f, const PlannedStatement& st, const Error& e,
                          const pg::ServerError& se, int line) {
  StatementFailure sf;
  sf.file = f.file;
  sf.line = line;
  sf.statement = st.text;
  sf.sqlstate = se.sqlstate;
  sf.message = se.sqlstate.empty() ? e.message() : se.message;
  sf.detail = se.detail;
  sf.hint = se.hint;
  std::string msg = f.file + ":" + std::to_string(line) + ": " + sf.message;
  if (!sf.sqlstate.empty()) msg += " (SQLSTATE " + sf.sqlstate + ")";
  if (!sf.detail.empty()) msg += "\n  detail: " + sf.detail;
  if (!sf.hint.empty()) msg += "\n  hint: " + sf.hint;
  msg += "\n  statement: " + clip(st.text);
  return FileError{Error(e.code(), msg, e.retryable()), sf};
}

std::string timeouts_sql(const Request& req, bool local) {
  std::string set = local ? "SET LOCAL " : "SET ";
  return set + "lock_timeout = '" + std::to_string(req.settings.lock_timeout.count()) + "ms';\n" +
         set + "statement_timeout = '" + std::to_string(req.settings.statement_timeout.count()) +
         "ms';\n";
}

std::string lock_of(const PlannedStatement& st) {
  for (const Lock& l : st.locks)
    if (!l.new_object) return std::string(lock_mode_name(l.mode)) + " on " + l.target;
  return "a lock";
}

// The index a CREATE INDEX CONCURRENTLY statement builds, schema-qualified
// with its table's schema; "" if unnamed or not such a statement.
std::string concurrent_index_name(const PlannedStatement& st) {
  LexResult lx = lex(st.text);
  const auto& t = lx.tokens;
  size_t k = 0;
  auto w = [&](std::string_view s) {
    return k < t.size() && t[k].kind == TokKind::kWord && t[k].text == s;
  };
  if (!w("create")) return "";
  ++k;
  if (w("unique")) ++k;
  if (!w("index")) return "";
  ++k;
  if (!w("concurrently")) return "";
  ++k;
  if (w("if")) k += 3;
  if (k >= t.size() || w("on") || (t[k].kind != TokKind::kWord && t[k].kind != TokKind::kIdent))
    return "";
  std::string name = pg::quote_ident(t[k].text);
  std::string schema = "public";
  for (const Lock& l : st.locks) schema = l.target.substr(0, l.target.find('.'));
  return pg::quote_ident(schema) + "." + name;
}

}  // namespace

Millis retry_delay(int attempt, std::mt19937_64& rng) {
  int64_t d = std::min<int64_t>(10000, int64_t{250} << std::min(attempt, 10));
  std::uniform_int_distribution<int64_t> dist(d / 2, d);
  return Millis(dist(rng));
}

FileResult<AppliedFile> apply_transactional(RunContext& rc, const PlannedFile& f) {
  // One simple-protocol message per attempt: BEGIN, timeouts, the file's
  // statements, its history rows, COMMIT. WHY one message: one round trip
  // per file (as fast as dbmate), and the server reports how many statements
  // completed, which names the failing one.
  std::string script = "BEGIN;\n" + timeouts_sql(rc.req, true);
  constexpr size_t kPrefix = 3;
  std::vector<size_t> starts;  // character offset of each statement in the script
  size_t at_chars = chars(script);
  for (const PlannedStatement& st : f.statements) {
    starts.push_back(at_chars);
    script += st.text;
    script += ";\n";
    at_chars += chars(st.text) + 2;
  }
  MonoTime t0 = rc.clock.mono();
  script += record_sql(
      f.version, f.name, f.supabase_statements, f.sha256, std::string(phase_name(f.phase)), true,
      static_cast<int>(f.statements.size()), -1, 0, rc.actor, rc.req.deployment_id);
  script += ";\nCOMMIT;";
  for (int attempt = 0;; ++attempt) {
    auto r = rc.conn.exec_script(script);
    if (r) {
      AppliedFile a;
      a.version = f.version;
      a.name = f.name;
      a.phase = f.phase;
      a.statements = static_cast<int>(f.statements.size());
      a.lock_retries = attempt;
      a.duration = std::chrono::duration_cast<Millis>(rc.clock.mono() - t0);
      return a;
    }
    pg::ServerError se = rc.conn.last_server_error();
    size_t done = rc.conn.script_completed();
    (void)rc.conn.exec("ROLLBACK");
    if (done < kPrefix || done >= kPrefix + f.statements.size()) {
      return tl::unexpected(
          FileError{std::move(r.error()).with_context(f.file + ": record history"), std::nullopt});
    }
    size_t idx = done - kPrefix;
    const PlannedStatement& st = f.statements[idx];
    if (se.sqlstate == kLockNotAvailable && attempt < rc.req.settings.lock_retries) {
      rc.clock.sleep_for(retry_delay(attempt, rc.rng));
      continue;
    }
    int line = st.line;
    if (se.position > 0 && static_cast<size_t>(se.position) > starts[idx])
      line += line_offset(st.text, se.position - static_cast<int>(starts[idx]));
    FileError fe = statement_error(f, st, r.error(), se, line);
    if (se.sqlstate == kLockNotAvailable)
      fe.error = Error(Errc::kTimeout,
                       f.file + ":" + std::to_string(st.line) + ": lock_timeout (" +
                           std::to_string(rc.req.settings.lock_timeout.count()) + " ms) reached " +
                           std::to_string(attempt + 1) + " times waiting for " + lock_of(st) +
                           "; nothing of " + f.file + " was applied\n  statement: " + clip(st.text),
                       true);
    return tl::unexpected(std::move(fe));
  }
}

FileResult<AppliedFile> apply_statements(RunContext& rc, const PlannedFile& f, ApplyReport& rep) {
  auto plain = [&](Error e) {
    return tl::unexpected(FileError{std::move(e).with_context(f.file), std::nullopt});
  };
  MonoTime t0 = rc.clock.mono();
  std::string phase(phase_name(f.phase));
  int total = static_cast<int>(f.statements.size());
  if (auto r = rc.conn.exec_script(timeouts_sql(rc.req, false)); !r) return plain(r.error());
  struct Reset {
    pg::Connection& c;
    ~Reset() { (void)c.exec_script("RESET lock_timeout; RESET statement_timeout;"); }
  } reset{rc.conn};
  // A row already there means an earlier run stopped inside this file: its
  // statement `resume_at` may have completed without its progress being recorded.
  auto row = rc.conn.exec("SELECT 1 FROM supabase_migrations.meshdeploy_history WHERE version = $1",
                          {f.version});
  if (!row) return plain(row.error());
  bool maybe_in_flight = !row->empty();
  if (auto st = record_progress(rc.conn, f.version, f.name, f.sha256, phase, total, f.resume_at,
                                rc.actor, rc.req.deployment_id);
      !st)
    return plain(st.error());
  int retries = 0;
  for (int i = f.resume_at; i < total; ++i) {
    const PlannedStatement& st = f.statements[static_cast<size_t>(i)];
    bool in_flight = maybe_in_flight && i == f.resume_at;
    std::string index = concurrent_index_name(st);
    if (in_flight && !index.empty()) {
      auto valid = index_valid(rc.conn, index);
      if (!valid) return plain(valid.error());
      if (valid->has_value() && **valid) {
        in_flight = false;
        if (auto p = record_progress(rc.conn, f.version, f.name, f.sha256, phase, total, i + 1,
                                     rc.actor, rc.req.deployment_id);
            !p)
          return plain(p.error());
        continue;  // the interrupted build had finished
      }
      if (valid->has_value()) {  // INVALID: left by the interrupted build; rebuild
        auto d = rc.conn.exec_script("DROP INDEX CONCURRENTLY IF EXISTS " + index);
        if (!d) return plain(d.error());
      }
    }
    // A statement that can run in a transaction commits together with its
    // progress row: a kill between the two cannot make a rerun repeat it.
    const std::string begin = "BEGIN;\n";
    std::string sql = st.transactional
                          ? begin + st.text + ";\n" + progress_sql(f.version, i + 1) + ";\nCOMMIT;"
                          : st.text;
    bool recorded = false;
    for (int attempt = 0;; ++attempt) {
      auto r = rc.conn.exec_script(sql);
      if (r) {
        recorded = st.transactional;
        break;
      }
      pg::ServerError se = rc.conn.last_server_error();
      size_t completed = rc.conn.script_completed();
      if (st.transactional) {
        (void)rc.conn.exec("ROLLBACK");
        if (completed != 1) return plain(std::move(r.error()).with_context("record progress"));
        if (se.position > static_cast<int>(begin.size()))
          se.position -= static_cast<int>(begin.size());
        else
          se.position = 0;
      }
      if (in_flight && !st.transactional &&
          (se.sqlstate == "42P07" || se.sqlstate == "42710" || se.sqlstate == "42701"))
        break;  // the interrupted run had completed it
      if (se.sqlstate == kLockNotAvailable && attempt < rc.req.settings.lock_retries) {
        ++retries;
        rc.clock.sleep_for(retry_delay(attempt, rc.rng));
        continue;
      }
      int line = st.line + (se.position > 0 ? line_offset(st.text, se.position) : 0);
      FileError fe = statement_error(f, st, r.error(), se, line);
      if (!index.empty()) {
        auto valid = index_valid(rc.conn, index);
        if (valid && valid->has_value() && !**valid) {
          Problem pb{"invalid-index",
                     f.file,
                     st.line,
                     "CREATE INDEX CONCURRENTLY failed and left index " + index + " INVALID",
                     "DROP INDEX CONCURRENTLY IF EXISTS " + index + ";",
                     true};
          fe.error = Error(
              fe.error.code(),
              fe.error.message() + "\n  left INVALID index " + index + "; clean up with: " + pb.fix,
              fe.error.retryable());
          rep.problems.push_back(std::move(pb));
        }
      }
      if (i > 0)
        fe.error =
            Error(fe.error.code(),
                  fe.error.message() + "\n  statements 1.." + std::to_string(i) + " of " + f.file +
                      " stay applied (it cannot run in a transaction); a rerun resumes here",
                  fe.error.retryable());
      return tl::unexpected(std::move(fe));
    }
    in_flight = false;
    if (recorded) continue;
    if (auto p = record_progress(rc.conn, f.version, f.name, f.sha256, phase, total, i + 1,
                                 rc.actor, rc.req.deployment_id);
        !p)
      return plain(p.error());
  }
  std::string done_sql = "BEGIN;\n" +
                         record_sql(f.version, f.name, f.supabase_statements, f.sha256, phase,
                                    false, total, -1, retries, rc.actor, rc.req.deployment_id) +
                         ";\nCOMMIT;";
  if (auto r = rc.conn.exec_script(done_sql); !r) {
    (void)rc.conn.exec("ROLLBACK");
    return plain(r.error());
  }
  AppliedFile a;
  a.version = f.version;
  a.name = f.name;
  a.phase = f.phase;
  a.transactional = false;
  a.statements = total - f.resume_at;
  a.resumed_from = f.resume_at;
  a.lock_retries = retries;
  a.duration = std::chrono::duration_cast<Millis>(rc.clock.mono() - t0);
  return a;
}

}  // namespace md::migrate
