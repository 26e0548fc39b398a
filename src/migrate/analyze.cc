#include "migrate/analyze.h"

#include <algorithm>
#include <initializer_list>

namespace md::migrate {
namespace {

// A read position in a statement's tokens.
class Cursor {
 public:
  explicit Cursor(const std::vector<Token>& t, size_t i = 0) : t_(t), i_(i) {}
  bool done() const { return i_ >= t_.size(); }
  size_t pos() const { return i_; }
  void seek(size_t i) { i_ = i; }
  const Token* peek(size_t ahead = 0) const { return i_ + ahead < t_.size() ? &t_[i_ + ahead] : nullptr; }
  bool is(std::string_view w, size_t ahead = 0) const {
    const Token* t = peek(ahead);
    return t && t->kind == TokKind::kWord && t->text == w;
  }
  bool is_punct(std::string_view p) const {
    const Token* t = peek();
    return t && t->kind == TokKind::kPunct && t->text == p;
  }
  bool accept(std::string_view w) {
    if (!is(w)) return false;
    ++i_;
    return true;
  }
  bool accept_all(std::initializer_list<std::string_view> ws) {
    size_t k = 0;
    for (std::string_view w : ws)
      if (!is(w, k++)) return false;
    i_ += ws.size();
    return true;
  }
  bool accept_punct(std::string_view p) {
    if (!is_punct(p)) return false;
    ++i_;
    return true;
  }
  // A possibly qualified name: a.b.c (words or quoted identifiers). "" if none.
  std::string name() {
    std::string out;
    for (;;) {
      const Token* t = peek();
      if (!t || (t->kind != TokKind::kWord && t->kind != TokKind::kIdent)) break;
      out += t->text;
      ++i_;
      if (is_punct(".") && peek(1) && (peek(1)->kind == TokKind::kWord || peek(1)->kind == TokKind::kIdent)) {
        out += '.';
        ++i_;
        continue;
      }
      break;
    }
    return out;
  }
  void skip() { ++i_; }
  // Skips to the matching ')' when at '('.
  void skip_parens() {
    if (!is_punct("(")) return;
    int depth = 0;
    while (!done()) {
      if (is_punct("(")) ++depth;
      if (is_punct(")") && --depth == 0) {
        ++i_;
        return;
      }
      ++i_;
    }
  }
  // Finds word `w` at paren depth 0 from here; npos if none.
  size_t find(std::string_view w) const {
    int depth = 0;
    for (size_t k = i_; k < t_.size(); ++k) {
      if (t_[k].kind == TokKind::kPunct && t_[k].text == "(") ++depth;
      if (t_[k].kind == TokKind::kPunct && t_[k].text == ")") --depth;
      if (depth == 0 && t_[k].kind == TokKind::kWord && t_[k].text == w) return k;
    }
    return std::string::npos;
  }

 private:
  const std::vector<Token>& t_;
  size_t i_;
};

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

bool is_pseudo_role(const std::string& r) {
  return r == "public" || r == "current_user" || r == "session_user" || r == "current_role";
}

class Analyzer {
 public:
  Analyzer(const std::vector<Token>& t, const AnalysisContext& ctx) : t_(t), c_(t), ctx_(ctx) {}

  StatementFacts run() {
    for (const Token& tok : t_) f_.words.push_back(tok.text);
    if (c_.done()) return f_;
    if (c_.accept("create")) create();
    else if (c_.accept("alter")) alter();
    else if (c_.accept("drop")) drop();
    else if (c_.is("vacuum")) vacuum();
    else if (c_.is("reindex")) reindex();
    else if (c_.accept("cluster")) cluster();
    else if (c_.accept_all({"refresh", "materialized", "view"})) refresh();
    else if (c_.accept("truncate")) truncate();
    else if (c_.accept("lock")) lock_stmt();
    else if (c_.accept_all({"insert", "into"})) dml("INSERT INTO");
    else if (c_.accept("update")) { c_.accept("only"); dml("UPDATE"); }
    else if (c_.accept_all({"delete", "from"})) { c_.accept("only"); dml("DELETE FROM"); }
    else if (c_.accept_all({"comment", "on"})) comment();
    else if (c_.accept("do")) do_block();
    else if (c_.is("grant") || c_.is("revoke")) grant();
    else if (c_.is("begin") || c_.is("commit") || c_.is("rollback") || c_.is("end") ||
             c_.is("savepoint") || c_.is("release") || c_.is("abort") ||
             (c_.is("start") && c_.is("transaction", 1))) {
      f_.explicit_transaction = true;
      f_.summary = upper(t_[0].text);
    }
    if (f_.summary.empty()) f_.summary = head(2);
    return f_;
  }

 private:
  std::string head(size_t n) const {
    std::string s;
    for (size_t k = 0; k < t_.size() && k < n; ++k) {
      if (t_[k].kind != TokKind::kWord) break;
      s += (s.empty() ? "" : " ") + upper(t_[k].text);
    }
    return s;
  }
  std::string rel(const std::string& n) {
    std::string q = qualify(n);
    size_t dot = q.find('.');
    if (dot != std::string::npos && std::count(q.begin(), q.end(), '.') == 1) f_.schemas.push_back(q.substr(0, dot));
    return q;
  }
  void lock(LockMode m, const std::string& target) {
    if (target.empty()) return;
    bool fresh = ctx_.new_relations.count(target) > 0;
    for (Lock& l : f_.locks) {
      if (l.target == target) {
        l.mode = std::max(l.mode, m);
        return;
      }
    }
    f_.locks.push_back(Lock{m, target, fresh});
  }
  void roles_after(std::string_view kw) {
    size_t k = c_.find(kw);
    if (k == std::string::npos) return;
    Cursor r(t_, k + 1);
    for (;;) {
      r.accept("group");
      std::string n = r.name();
      if (n.empty()) break;
      if (!is_pseudo_role(n)) f_.roles.push_back(n);
      if (!r.accept_punct(",")) break;
    }
  }
  void references() {
    for (size_t k = 0; k + 1 < t_.size(); ++k) {
      if (t_[k].kind == TokKind::kWord && t_[k].text == "references") {
        Cursor r(t_, k + 1);
        std::string n = r.name();
        if (!n.empty()) lock(LockMode::kShareRowExclusive, rel(n));
      }
    }
  }

  void create() {
    bool unique = false;
    c_.accept_all({"or", "replace"});
    while (c_.accept("temp") || c_.accept("temporary") || c_.accept("unlogged") || c_.accept("global") ||
           c_.accept("local")) {
    }
    if (c_.accept("unique")) unique = true;
    if (c_.accept("table")) {
      c_.accept_all({"if", "not", "exists"});
      f_.target = rel(c_.name());
      f_.creates_relation = true;
      f_.summary = "CREATE TABLE " + f_.target;
      size_t part = c_.find("partition");
      if (part != std::string::npos && c_.is("of", part - c_.pos() + 1)) {
        Cursor p(t_, part + 2);
        lock(LockMode::kAccessExclusive, rel(p.name()));
      }
      references();
      return;
    }
    if (c_.accept("index")) {
      bool conc = c_.accept("concurrently");
      c_.accept_all({"if", "not", "exists"});
      if (!c_.is("on")) c_.name();
      c_.accept("on");
      c_.accept("only");
      f_.target = rel(c_.name());
      f_.summary = std::string("CREATE ") + (unique ? "UNIQUE " : "") + "INDEX" +
                   (conc ? " CONCURRENTLY" : "") + " ON " + f_.target;
      if (conc) f_.transactional = false;
      lock(conc ? LockMode::kShareUpdateExclusive : LockMode::kShare, f_.target);
      return;
    }
    if (c_.accept_all({"materialized", "view"})) {
      c_.accept_all({"if", "not", "exists"});
      f_.target = rel(c_.name());
      f_.creates_relation = true;
      f_.summary = "CREATE MATERIALIZED VIEW " + f_.target;
      return;
    }
    if (c_.accept("recursive") || c_.is("view")) {
      c_.accept("view");
      f_.target = rel(c_.name());
      f_.creates_relation = true;
      f_.summary = "CREATE VIEW " + f_.target;
      return;
    }
    if (c_.accept("constraint") || c_.is("trigger")) {
      c_.accept("trigger");
      std::string n = c_.name();
      size_t on = c_.find("on");
      if (on != std::string::npos) {
        Cursor t(t_, on + 1);
        f_.target = rel(t.name());
        lock(LockMode::kShareRowExclusive, f_.target);
      }
      f_.summary = "CREATE TRIGGER " + n + " ON " + f_.target;
      return;
    }
    if (c_.accept("policy")) {
      std::string n = c_.name();
      c_.accept("on");
      f_.target = rel(c_.name());
      lock(LockMode::kAccessExclusive, f_.target);
      roles_after("to");
      f_.summary = "CREATE POLICY " + n + " ON " + f_.target;
      return;
    }
    if (c_.accept("extension")) {
      c_.accept_all({"if", "not", "exists"});
      std::string n = c_.name();
      f_.extensions.push_back(n);
      size_t sch = c_.find("schema");
      if (sch != std::string::npos) {
        Cursor s(t_, sch + 1);
        std::string schema = s.name();
        if (!schema.empty()) f_.schemas.push_back(schema);
      }
      f_.summary = "CREATE EXTENSION " + n;
      return;
    }
    if (c_.accept("schema")) {
      c_.accept_all({"if", "not", "exists"});
      std::string n = c_.is("authorization") ? "" : c_.name();
      if (!n.empty()) f_.created_schemas.push_back(n);
      roles_after("authorization");
      f_.summary = "CREATE SCHEMA " + n;
      return;
    }
    if (c_.accept("role") || c_.accept("user") || c_.accept("group")) {
      c_.accept_all({"if", "not", "exists"});
      f_.created_roles.push_back(c_.name());
      f_.summary = "CREATE ROLE " + f_.created_roles.back();
      return;
    }
    if (c_.accept("database") || c_.accept("tablespace") || c_.accept("subscription")) {
      f_.transactional = false;
      f_.summary = head(2);
      return;
    }
    if (c_.accept("sequence")) {
      c_.accept_all({"if", "not", "exists"});
      f_.target = rel(c_.name());
      f_.creates_relation = true;
      f_.summary = "CREATE SEQUENCE " + f_.target;
      return;
    }
    if (c_.accept("function") || c_.accept("procedure") || c_.accept("type") || c_.accept("domain")) {
      std::string n = c_.name();
      rel(n);
      f_.summary = head(c_.pos() > 4 ? 4 : c_.pos()) + " " + n;
      return;
    }
  }

  // ALTER TABLE: the strongest lock over its comma-separated actions.
  void alter_table() {
    c_.accept_all({"if", "exists"});
    c_.accept("only");
    f_.target = rel(c_.name());
    c_.accept("*");
    LockMode strongest = LockMode::kNone;
    std::string first_action;
    while (!c_.done()) {
      size_t start = c_.pos();
      LockMode m = LockMode::kAccessExclusive;
      std::string action;
      if (c_.accept("add")) {
        action = "ADD";
        bool constraint = c_.accept("constraint");
        if (constraint) c_.name();
        if (c_.is("foreign")) {
          m = LockMode::kShareRowExclusive;
          action = "ADD FOREIGN KEY";
        } else if (c_.is("check")) {
          action = "ADD CHECK";
        } else if (c_.is("unique")) {
          action = "ADD UNIQUE";
        } else if (c_.is("primary")) {
          action = "ADD PRIMARY KEY";
        } else if (c_.is("exclude")) {
          action = "ADD EXCLUDE";
        } else {
          c_.accept("column");
          action = "ADD COLUMN";
        }
      } else if (c_.accept_all({"validate", "constraint"})) {
        m = LockMode::kShareUpdateExclusive;
        action = "VALIDATE CONSTRAINT";
      } else if (c_.accept("drop")) {
        action = "DROP";
        if (c_.accept("constraint")) action = "DROP CONSTRAINT";
        else {
          c_.accept("column");
          action = "DROP COLUMN";
          f_.destructive = true;
        }
      } else if (c_.accept("rename")) {
        action = "RENAME";
        f_.destructive = true;
      } else if (c_.accept_all({"set", "schema"})) {
        action = "SET SCHEMA";
        f_.destructive = true;
      } else if (c_.accept("alter")) {
        c_.accept("column");
        c_.name();
        action = "ALTER COLUMN";
        if (c_.is("set") && c_.is("statistics", 1)) m = LockMode::kShareUpdateExclusive;
        if (c_.is("set") && c_.peek(1) && c_.peek(1)->text == "(") m = LockMode::kShareUpdateExclusive;
        if (c_.is("drop") && c_.is("default", 1)) f_.destructive = true;
        if (c_.is("type") || (c_.is("set") && c_.is("data", 1))) action = "ALTER COLUMN TYPE";
      } else if (c_.is("set") && c_.peek(1) && c_.peek(1)->text == "(") {
        m = LockMode::kShareUpdateExclusive;
        action = "SET (storage parameters)";
      } else if (c_.accept("cluster") || c_.accept_all({"set", "without", "cluster"})) {
        m = LockMode::kShareUpdateExclusive;
        action = "CLUSTER ON";
      } else if (c_.is("enable") || c_.is("disable")) {
        bool trig = c_.is("trigger", 1) || (c_.is("replica", 1) || c_.is("always", 1));
        action = c_.is("row", 1) ? "ROW LEVEL SECURITY" : "TRIGGER";
        if (trig) m = LockMode::kShareRowExclusive;
      } else if (c_.accept_all({"attach", "partition"})) {
        m = LockMode::kShareUpdateExclusive;
        action = "ATTACH PARTITION";
        lock(LockMode::kAccessExclusive, rel(c_.name()));
      } else if (c_.accept_all({"detach", "partition"})) {
        action = "DETACH PARTITION";
        c_.name();
        if (c_.accept("concurrently")) {
          f_.transactional = false;
          m = LockMode::kShareUpdateExclusive;
        }
        f_.destructive = true;
      } else if (c_.accept_all({"owner", "to"})) {
        action = "OWNER TO";
        std::string r = c_.name();
        if (!is_pseudo_role(r)) f_.roles.push_back(r);
      }
      if (action.empty()) action = c_.peek() ? upper(c_.peek()->text) : "";
      if (first_action.empty()) first_action = action;
      strongest = std::max(strongest, m);
      if (m == LockMode::kShareRowExclusive && action == "ADD FOREIGN KEY") references();
      // to the next top-level comma
      int depth = 0;
      while (!c_.done()) {
        if (c_.is_punct("(")) ++depth;
        if (c_.is_punct(")")) --depth;
        if (depth == 0 && c_.is_punct(",")) break;
        c_.skip();
      }
      if (!c_.accept_punct(",")) break;
      if (c_.pos() == start) c_.skip();
    }
    // ADD COLUMN ... REFERENCES x also locks x.
    if (first_action == "ADD COLUMN") references();
    lock(strongest == LockMode::kNone ? LockMode::kAccessExclusive : strongest, f_.target);
    f_.summary = "ALTER TABLE " + f_.target + (first_action.empty() ? "" : " " + first_action);
  }

  void alter() {
    if (c_.accept("table")) return alter_table();
    if (c_.accept("system")) {
      f_.transactional = false;
      f_.summary = "ALTER SYSTEM";
      return;
    }
    if (c_.accept("type")) {
      std::string n = rel(c_.name());
      f_.summary = "ALTER TYPE " + n;
      if (c_.accept_all({"add", "value"})) {
        // WHY: before 12, ALTER TYPE ... ADD VALUE cannot run in a transaction block.
        if (ctx_.server_version < 120000) f_.transactional = false;
        f_.summary += " ADD VALUE";
      } else if (c_.find("rename") != std::string::npos || c_.find("drop") != std::string::npos) {
        f_.destructive = true;
      }
      return;
    }
    if (c_.accept("index")) {
      c_.accept_all({"if", "exists"});
      std::string n = rel(c_.name());
      f_.summary = "ALTER INDEX " + n;
      if (c_.is("rename")) f_.destructive = true;
      lock(c_.is("set") ? LockMode::kShareUpdateExclusive : LockMode::kAccessExclusive, n);
      return;
    }
    for (const char* kind : {"view", "sequence", "function", "procedure", "schema", "domain"}) {
      if (c_.accept(kind)) {
        c_.accept_all({"if", "exists"});
        std::string n = c_.name();
        f_.summary = "ALTER " + upper(kind) + " " + n;
        if (c_.find("rename") != std::string::npos || c_.find("schema") != std::string::npos)
          f_.destructive = std::string(kind) != "schema" || c_.find("rename") != std::string::npos;
        roles_after("to");
        if (std::string(kind) == "view" || std::string(kind) == "sequence") lock(LockMode::kAccessExclusive, rel(n));
        return;
      }
    }
    if (c_.accept_all({"materialized", "view"})) {
      c_.accept_all({"if", "exists"});
      std::string n = rel(c_.name());
      f_.summary = "ALTER MATERIALIZED VIEW " + n;
      if (c_.find("rename") != std::string::npos) f_.destructive = true;
      lock(LockMode::kAccessExclusive, n);
      return;
    }
    if (c_.accept_all({"default", "privileges"})) {
      f_.summary = "ALTER DEFAULT PRIVILEGES";
      roles_after("role");
      roles_after("to");
      return;
    }
    if (c_.accept("database") && c_.find("tablespace") != std::string::npos) f_.transactional = false;
  }

  void drop() {
    f_.destructive = true;
    if (c_.accept("table")) {
      c_.accept_all({"if", "exists"});
      f_.target = rel(c_.name());
      lock(LockMode::kAccessExclusive, f_.target);
      while (c_.accept_punct(",")) lock(LockMode::kAccessExclusive, rel(c_.name()));
      f_.summary = "DROP TABLE " + f_.target;
      return;
    }
    if (c_.accept("index")) {
      bool conc = c_.accept("concurrently");
      c_.accept_all({"if", "exists"});
      f_.target = rel(c_.name());
      if (conc) f_.transactional = false;
      lock(conc ? LockMode::kShareUpdateExclusive : LockMode::kAccessExclusive, f_.target);
      f_.summary = std::string("DROP INDEX") + (conc ? " CONCURRENTLY " : " ") + f_.target;
      return;
    }
    if (c_.accept("trigger") || c_.accept("policy") || c_.accept("rule")) {
      std::string kind = upper(t_[1].text);
      c_.accept_all({"if", "exists"});
      std::string n = c_.name();
      c_.accept("on");
      f_.target = rel(c_.name());
      lock(LockMode::kAccessExclusive, f_.target);
      f_.summary = "DROP " + kind + " " + n + " ON " + f_.target;
      return;
    }
    if (c_.accept("database") || c_.accept("tablespace") || c_.accept("subscription")) {
      f_.transactional = false;
      f_.summary = head(2);
      return;
    }
    bool mat = c_.accept("materialized");
    if (c_.accept("view") || c_.accept("sequence")) {
      c_.accept_all({"if", "exists"});
      f_.target = rel(c_.name());
      lock(LockMode::kAccessExclusive, f_.target);
      f_.summary = std::string("DROP ") + (mat ? "MATERIALIZED VIEW " : upper(t_[1].text) + " ") + f_.target;
      return;
    }
    f_.summary = head(2);
  }

  void vacuum() {
    c_.skip();
    f_.transactional = false;
    bool full = false;
    if (c_.is_punct("(")) {
      size_t k = c_.pos();
      while (k < t_.size() && t_[k].text != ")") {
        if (t_[k].text == "full") full = true;
        ++k;
      }
      c_.seek(k + 1);
    }
    while (c_.accept("full") || c_.accept("freeze") || c_.accept("verbose") || c_.accept("analyze") ||
           c_.accept("analyse")) {
      if (t_[c_.pos() - 1].text == "full") full = true;
    }
    f_.summary = full ? "VACUUM FULL" : "VACUUM";
    for (;;) {
      std::string n = c_.name();
      if (n.empty()) break;
      lock(full ? LockMode::kAccessExclusive : LockMode::kShareUpdateExclusive, rel(n));
      c_.skip_parens();
      if (!c_.accept_punct(",")) break;
    }
  }

  void reindex() {
    c_.skip();
    if (c_.is_punct("(")) c_.skip_parens();
    std::string kind = c_.peek() ? c_.peek()->text : "";
    c_.skip();
    bool conc = c_.accept("concurrently");
    std::string n = c_.name();
    f_.summary = "REINDEX " + upper(kind) + (conc ? " CONCURRENTLY " : " ") + n;
    if (conc || kind == "schema" || kind == "database" || kind == "system") f_.transactional = false;
    if (kind == "table") lock(conc ? LockMode::kShareUpdateExclusive : LockMode::kShare, rel(n));
    if (kind == "index") lock(conc ? LockMode::kShareUpdateExclusive : LockMode::kAccessExclusive, rel(n));
  }

  void cluster() {
    c_.accept("verbose");
    std::string n = c_.name();
    f_.summary = "CLUSTER " + n;
    if (n.empty()) f_.transactional = false;
    else lock(LockMode::kAccessExclusive, rel(n));
  }

  void refresh() {
    bool conc = c_.accept("concurrently");
    f_.target = rel(c_.name());
    lock(conc ? LockMode::kExclusive : LockMode::kAccessExclusive, f_.target);
    f_.summary = std::string("REFRESH MATERIALIZED VIEW ") + (conc ? "CONCURRENTLY " : "") + f_.target;
  }

  void truncate() {
    f_.destructive = true;
    c_.accept("table");
    c_.accept("only");
    f_.target = rel(c_.name());
    lock(LockMode::kAccessExclusive, f_.target);
    while (c_.accept_punct(",")) lock(LockMode::kAccessExclusive, rel(c_.name()));
    f_.summary = "TRUNCATE " + f_.target;
  }

  void lock_stmt() {
    c_.accept("table");
    c_.accept("only");
    std::vector<std::string> names{rel(c_.name())};
    while (c_.accept_punct(",")) names.push_back(rel(c_.name()));
    LockMode m = LockMode::kAccessExclusive;
    if (c_.accept("in")) {
      std::string mode;
      while (!c_.done() && !c_.is("mode")) {
        mode += (mode.empty() ? "" : " ") + c_.peek()->text;
        c_.skip();
      }
      static const std::pair<const char*, LockMode> modes[] = {
          {"access share", LockMode::kAccessShare}, {"row share", LockMode::kRowShare},
          {"row exclusive", LockMode::kRowExclusive}, {"share update exclusive", LockMode::kShareUpdateExclusive},
          {"share", LockMode::kShare}, {"share row exclusive", LockMode::kShareRowExclusive},
          {"exclusive", LockMode::kExclusive}, {"access exclusive", LockMode::kAccessExclusive}};
      for (auto& [name, lm] : modes)
        if (mode == name) m = lm;
    }
    for (const auto& n : names) lock(m, n);
    f_.target = names.front();
    f_.summary = "LOCK TABLE " + f_.target + " IN " + std::string(lock_mode_name(m)) + " MODE";
  }

  void dml(const char* verb) {
    f_.target = rel(c_.name());
    lock(LockMode::kRowExclusive, f_.target);
    f_.summary = std::string(verb) + " " + f_.target;
  }

  void comment() {
    if (c_.accept("table") || c_.accept("column")) {
      std::string n = c_.name();
      if (t_[2].text == "column" && n.rfind('.') != std::string::npos) n = n.substr(0, n.rfind('.'));
      f_.target = rel(n);
      lock(LockMode::kShareUpdateExclusive, f_.target);
    }
    f_.summary = "COMMENT ON " + (t_.size() > 2 ? upper(t_[2].text) : std::string());
  }

  void grant() {
    bool revoke = c_.is("revoke");
    f_.summary = revoke ? "REVOKE" : "GRANT";
    roles_after(revoke ? "from" : "to");
    size_t on = c_.find("on");
    if (on != std::string::npos) {
      Cursor o(t_, on + 1);
      o.accept("table");
      if (o.accept("all") || o.accept("schema") || o.accept("function") || o.accept("sequence")) {
        if (t_[o.pos() - 1].text == "schema") f_.schemas.push_back(o.name());
        return;
      }
      std::string n = o.name();
      if (!n.empty()) f_.summary += " ON " + rel(n);
    }
  }

  // Roles and schemas a DO block creates (`create role x`, `create schema
  // [if not exists] x` in its body), so preflight does not call them missing.
  void do_block() {
    f_.summary = "DO";
    for (const Token& tok : t_) {
      if (tok.kind != TokKind::kString || tok.text.empty() || tok.text[0] != '$') continue;
      size_t open = tok.text.find('$', 1);
      if (open == std::string::npos) continue;
      std::string tag = tok.text.substr(0, open + 1);
      if (tok.text.size() < 2 * tag.size()) continue;
      LexResult body = lex(std::string_view(tok.text).substr(tag.size(), tok.text.size() - 2 * tag.size()));
      const auto& b = body.tokens;
      for (size_t k = 0; k + 2 < b.size(); ++k) {
        if (b[k].kind != TokKind::kWord || b[k].text != "create") continue;
        Cursor c(b, k + 1);
        if (c.accept("role") || c.accept("user") || c.accept("group")) {
          std::string n = c.name();
          if (!n.empty()) f_.created_roles.push_back(n);
        } else if (c.accept("schema")) {
          c.accept_all({"if", "not", "exists"});
          std::string n = c.name();
          if (!n.empty()) f_.created_schemas.push_back(n);
        }
      }
    }
  }

  const std::vector<Token>& t_;
  Cursor c_;
  const AnalysisContext& ctx_;
  StatementFacts f_;
};

}  // namespace

std::string qualify(const std::string& name) {
  if (name.empty() || name.find('.') != std::string::npos) return name;
  return "public." + name;
}

StatementFacts analyze(const std::vector<Token>& tokens, const AnalysisContext& ctx) {
  return Analyzer(tokens, ctx).run();
}

}  // namespace md::migrate
