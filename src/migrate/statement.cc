#include "migrate/statement.h"

#include <algorithm>
#include <utility>

#include "migrate/lint.h"

namespace md::migrate {
namespace {

using pgquery::Tree;

constexpr int kMaxDepth = 8;  // nested calls followed; deeper ones are a blind spot

std::string query_of(const Tree& expr) {
  auto e = expr.find("PLpgSQL_expr");
  if (e == expr.end() || !e->is_object()) return "";
  auto q = e->find("query");
  return q != e->end() && q->is_string() ? q->get<std::string>() : "";
}

// The line (relative to the statement, 1-based) where the body string of a
// DO block or CREATE FUNCTION ... AS begins.
int body_line_of(const std::vector<Token>& t, bool after_as) {
  for (size_t k = 0; k < t.size(); ++k) {
    if (t[k].kind != TokKind::kString) continue;
    if (after_as && !(k > 0 && t[k - 1].kind == TokKind::kWord && t[k - 1].text == "as")) continue;
    return t[k].line;
  }
  return 1;
}

void merge_lock(std::vector<Lock>& into, const Lock& l) {
  for (Lock& x : into) {
    if (x.target != l.target) continue;
    x.mode = std::max(x.mode, l.mode);
    x.new_object = x.new_object && l.new_object;
    return;
  }
  into.push_back(l);
}

class Walker {
 public:
  Walker(const std::string& file, AnalysisContext& ctx, AnalysedStatement& out)
      : file_(file), ctx_(ctx), out_(out) {}

  // Analyses one statement; appends its findings and blind spots to out_ and
  // returns its facts with those of the bodies it runs merged in.
  StatementFacts statement(std::string_view sql, int line, int depth, const std::string& via,
                           bool quiet = false) {
    LexResult lx = lex(sql);
    pgquery::Parsed p = pgquery::parse_sql(sql);
    if (!p.ok() || !p.tree.contains("stmts") || p.tree["stmts"].empty()) {
      StatementFacts f = unparsed(lx.tokens, p.error);
      if (quiet) return f;
      if (!p.ok()) {
        blind(line, via + f.summary + " is not valid Postgres 15 SQL (" + p.error +
                        "): its locks are unknown");
        lint(lx.tokens, f, line, via);
      }
      return f;
    }
    StatementFacts f;
    bool first = true;
    for (const Tree& s : p.tree["stmts"]) {
      StatementFacts one = analyze(s["stmt"], lx.tokens, ctx_);
      if (first)
        f = std::move(one);
      else
        merge(f, one);
      first = false;
    }
    if (!quiet) lint(lx.tokens, f, line, via);
    if (f.do_block) {
      pgquery::Parsed body = pgquery::parse_plpgsql(sql);
      int body_line = line + body_line_of(lx.tokens, false) - 1;
      if (!body.ok() || !body.tree.is_array() || body.tree.empty())
        blind(body_line,
              via + "DO block not parsed as PL/pgSQL (" + body.error + "): its locks are unknown");
      else
        function_body(body.tree[0], body_line, depth, via, f);
    }
    for (const std::string& name : f.calls) call(name, line, depth, via, f);
    note(f, sql, lx.tokens, line);
    return f;
  }

 private:
  void blind(int line, std::string what) {
    out_.blind_spots.push_back("line " + std::to_string(line) + ": " + what);
    const RuleDoc* d = find_rule("unanalysed-sql");
    Finding fd;
    fd.file = file_;
    fd.line = line;
    fd.rule = "unanalysed-sql";
    fd.severity = d->severity;
    fd.message = std::move(what);
    fd.why = std::string(d->why);
    fd.recipe = std::string(d->recipe);
    out_.findings.push_back(std::move(fd));
  }

  void lint(const std::vector<Token>& tokens, const StatementFacts& f, int line,
            const std::string& via) {
    for (Finding& fd : lint_statement(tokens, f, ctx_, file_, line)) {
      if (fd.rule == "missing-lock-timeout") ctx_.warned_lock_timeout = true;
      fd.message = via + fd.message;
      out_.findings.push_back(std::move(fd));
    }
  }

  // What a body statement adds to the statement that runs it.
  static void merge(StatementFacts& into, const StatementFacts& f) {
    for (const Lock& l : f.locks) merge_lock(into.locks, l);
    into.destructive |= f.destructive;
    into.transactional &= f.transactional;
    for (const auto& s : f.created_schemas) into.created_schemas.push_back(s);
    for (const auto& r : f.created_roles) into.created_roles.push_back(r);
  }

  // Effects of a statement on the ones after it.
  void note(const StatementFacts& f, std::string_view sql, const std::vector<Token>& tokens,
            int line) {
    if (f.creates_relation && !f.target.empty()) ctx_.new_relations.insert(f.target);
    if (f.sets_lock_timeout) ctx_.file_sets_lock_timeout = true;
    for (const Lock& l : f.locks)
      if (l.mode == LockMode::kAccessExclusive) ctx_.ddl_tables.insert(l.target);
    if (f.validates_constraint) ctx_.validated_tables.insert(f.target);
    if (f.defines) {
      FunctionDef d = *f.defines;
      d.sql = std::string(sql);
      d.file = file_;
      d.body_line = line + body_line_of(tokens, true) - 1;
      ctx_.functions[d.name] = std::move(d);
    }
  }

  void call(const std::string& name, int line, int depth, const std::string& via,
            StatementFacts& f) {
    auto it = ctx_.functions.find(name);
    if (it == ctx_.functions.end())
      return;  // not created by this run: a built-in or extension function
    const FunctionDef def = it->second;  // copy: the body may redefine it
    if (std::find(stack_.begin(), stack_.end(), name) != stack_.end())
      return;  // recursion: seen already
    std::string where =
        via + "in " + name + "() called at " + file_ + ":" + std::to_string(line) + ": ";
    if (depth >= kMaxDepth) {
      blind(line, where + "calls nested too deep to follow: locks unknown");
      return;
    }
    stack_.push_back(name);
    // WHY: the body may be defined in an earlier file of the run; findings point there.
    std::string caller_file = std::exchange(file_, def.file);
    if (def.language == "plpgsql") {
      pgquery::Parsed body = pgquery::parse_plpgsql(def.sql);
      if (!body.ok() || !body.tree.is_array() || body.tree.empty())
        blind(def.body_line,
              where + "body not parsed as PL/pgSQL (" + body.error + "): its locks are unknown");
      else
        function_body(body.tree[0], def.body_line, depth + 1, where, f);
    } else if (def.language == "sql" && !def.body.empty()) {
      SplitResult sr = split(def.body);
      for (const Piece& p : sr.pieces) {
        if (!p.has_code) continue;
        std::string_view text =
            std::string_view(def.body).substr(p.code_begin, p.code_end - p.code_begin);
        merge(f, statement(text, def.body_line + p.line - 1, depth + 1, where));
      }
    } else {
      blind(def.body_line, where + "a " + (def.language.empty() ? "SQL-standard" : def.language) +
                               " body is not analysed: its locks are unknown");
    }
    file_ = std::move(caller_file);
    stack_.pop_back();
  }

  // Walks a PLpgSQL_function tree in source order.
  void function_body(const Tree& fn, int body_line, int depth, const std::string& via,
                     StatementFacts& f) {
    Body b{body_line, depth, via, f};
    visit(fn, 1, b);
  }

  struct Body {
    int body_line;
    int depth;
    const std::string& via;
    StatementFacts& facts;
  };

  void visit(const Tree& j, int lineno, Body& b) {
    if (j.is_array()) {
      for (const Tree& e : j) visit(e, lineno, b);
      return;
    }
    if (!j.is_object()) return;
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string& k = it.key();
      if (k.rfind("PLpgSQL_stmt_", 0) == 0 && it.value().is_object())
        stmt(k, it.value(), lineno, b);
      else if (k == "PLpgSQL_expr")
        expression(query_of(j), lineno, b);
      else
        visit(it.value(), lineno, b);
    }
  }

  // One PL/pgSQL statement: its SQL is analysed, SQL built at run time is a
  // blind spot, and nested statements are walked.
  void stmt(const std::string& kind, const Tree& v, int lineno, Body& b) {
    if (v.contains("lineno") && v["lineno"].is_number_integer()) lineno = v["lineno"].get<int>();
    std::string sql_key, dyn_key;
    if (kind == "PLpgSQL_stmt_execsql")
      sql_key = "sqlstmt";
    else if (kind == "PLpgSQL_stmt_perform" || kind == "PLpgSQL_stmt_call")
      sql_key = "expr";
    else if (kind == "PLpgSQL_stmt_fors" || kind == "PLpgSQL_stmt_return_query" ||
             kind == "PLpgSQL_stmt_open")
      sql_key = "query";
    if (kind == "PLpgSQL_stmt_dynexecute" || kind == "PLpgSQL_stmt_dynfors") dyn_key = "query";
    if (kind == "PLpgSQL_stmt_return_query" || kind == "PLpgSQL_stmt_open") dyn_key = "dynquery";
    int line = b.body_line + lineno - 1;
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (it.key() == sql_key)
        merge(b.facts, statement(query_of(it.value()), line, b.depth + 1, b.via));
      else if (it.key() == dyn_key)
        dynamic(query_of(it.value()), line, b);
      else
        visit(it.value(), lineno, b);
    }
  }

  // EXECUTE: a constant string is analysed like written SQL; anything built
  // at run time cannot be seen.
  void dynamic(const std::string& expr, int line, Body& b) {
    pgquery::Parsed p = pgquery::parse_sql("SELECT " + expr);
    if (p.ok()) {
      const Tree& stmts = p.tree["stmts"];
      const Tree* val = nullptr;
      if (stmts.size() == 1 && stmts[0]["stmt"].contains("SelectStmt")) {
        const Tree& sel = stmts[0]["stmt"]["SelectStmt"];
        if (sel.contains("targetList") && sel["targetList"].size() == 1)
          val = &sel["targetList"][0]["ResTarget"]["val"];
      }
      if (val && val->contains("A_Const") && (*val)["A_Const"].contains("sval")) {
        std::string text = (*val)["A_Const"]["sval"].value("sval", "");
        merge(b.facts, statement(text, line, b.depth + 1, b.via));
        return;
      }
    }
    blind(line, b.via + "EXECUTE of SQL built at run time: its locks and drops are unknown");
  }

  // A PL/pgSQL expression (condition, assignment, RAISE argument): only the
  // functions of this run that it calls matter.
  void expression(std::string q, int lineno, Body& b) {
    size_t assign = q.find(":=");
    if (assign != std::string::npos) q = q.substr(assign + 2);
    if (q.find_first_not_of(" \t\r\n") == std::string::npos) return;
    merge(b.facts,
          statement("SELECT " + q, b.body_line + lineno - 1, b.depth + 1, b.via, /*quiet=*/true));
  }

  std::string file_;  // where findings point: the file of the body being read
  AnalysisContext& ctx_;
  AnalysedStatement& out_;
  std::vector<std::string> stack_;  // functions being analysed (recursion guard)
};

}  // namespace

AnalysedStatement analyze_statement(std::string_view sql, const std::string& file, int line,
                                    AnalysisContext& ctx) {
  AnalysedStatement out;
  Walker w(file, ctx, out);
  out.facts = w.statement(sql, line, 0, "");
  return out;
}

}  // namespace md::migrate
