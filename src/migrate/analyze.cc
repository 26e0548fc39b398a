// Facts of one statement from its parse tree. Lock modes follow Postgres 15's
// tablecmds.c (AlterTableGetLockLevel) and the "Table-Level Locks" page.
#include "migrate/analyze.h"

#include <algorithm>

namespace md::migrate {
namespace {

using pgquery::Tree;

const Tree kNull;

// j[key], or null when absent / j is not an object.
const Tree& at(const Tree& j, const char* key) {
  if (!j.is_object()) return kNull;
  auto it = j.find(key);
  return it == j.end() ? kNull : *it;
}
std::string str(const Tree& j, const char* key) {
  const Tree& v = at(j, key);
  return v.is_string() ? v.get<std::string>() : "";
}
bool flag(const Tree& j, const char* key) {
  const Tree& v = at(j, key);
  return v.is_boolean() && v.get<bool>();
}
// {"X": {...}} -> {...} when the node is an X (lists hold wrapped nodes,
// typed fields hold bare ones).
const Tree& unwrap(const Tree& j, const char* type) {
  const Tree& inner = at(j, type);
  return inner.is_null() ? j : inner;
}
// [{"String": {"sval": "s"}}, {"String": {"sval": "x"}}] -> "s.x"
std::string dotted(const Tree& list) {
  std::string out;
  const Tree& items = list.is_object() ? at(unwrap(list, "List"), "items") : list;
  if (!items.is_array()) return out;
  for (const Tree& n : items) {
    std::string s = str(at(n, "String"), "sval");
    if (s.empty()) continue;
    out += (out.empty() ? "" : ".") + s;
  }
  return out;
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// Every FuncCall under `j`, in source order.
void func_calls(const Tree& j, std::vector<std::string>& out) {
  if (j.is_array()) {
    for (const Tree& e : j) func_calls(e, out);
  } else if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() == "FuncCall") out.push_back(qualify(dotted(at(it.value(), "funcname"))));
      func_calls(it.value(), out);
    }
  }
}

// Relations read under `j` (RangeVars), minus CTE names.
void range_vars(const Tree& j, std::vector<std::string>& out, std::set<std::string>& ctes) {
  if (j.is_array()) {
    for (const Tree& e : j) range_vars(e, out, ctes);
    return;
  }
  if (!j.is_object()) return;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() == "CommonTableExpr") ctes.insert(str(it.value(), "ctename"));
    if (it.key() == "RangeVar") {
      const Tree& rv = it.value();
      std::string n = str(rv, "relname");
      if (!ctes.count(n) || !str(rv, "schemaname").empty())
        out.push_back(qualify(str(rv, "schemaname").empty() ? n : str(rv, "schemaname") + "." + n));
    }
    range_vars(it.value(), out, ctes);
  }
}

// Roles named under `j` (RoleSpec of a plain name; PUBLIC, CURRENT_USER... are not roles).
void role_specs(const Tree& j, std::vector<std::string>& out) {
  if (j.is_array()) {
    for (const Tree& e : j) role_specs(e, out);
  } else if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() == "RoleSpec" && str(it.value(), "roletype") == "ROLESPEC_CSTRING")
        out.push_back(str(it.value(), "rolename"));
      else
        role_specs(it.value(), out);
    }
  }
}

bool has_defelem(const Tree& list, const char* name) {
  if (!list.is_array()) return false;
  for (const Tree& d : list)
    if (str(at(d, "DefElem"), "defname") == name) return true;
  return false;
}
std::string defelem_string(const Tree& list, const char* name) {
  if (!list.is_array()) return "";
  for (const Tree& d : list) {
    const Tree& de = at(d, "DefElem");
    if (str(de, "defname") != name) continue;
    const Tree& arg = at(de, "arg");
    if (arg.contains("String")) return str(at(arg, "String"), "sval");
    if (arg.contains("List")) return str(at(at(at(arg, "List"), "items")[0], "String"), "sval");
  }
  return "";
}

// The ALTER TABLE subcommand name as written, e.g. AT_AddColumn -> "ADD COLUMN".
std::string action_name(const std::string& subtype, const Tree& cmd) {
  if (subtype == "AT_AddColumn") return "ADD COLUMN";
  if (subtype == "AT_AddConstraint") {
    std::string ct = str(at(at(cmd, "def"), "Constraint"), "contype");
    if (ct == "CONSTR_FOREIGN") return "ADD FOREIGN KEY";
    if (ct == "CONSTR_CHECK") return "ADD CHECK";
    if (ct == "CONSTR_UNIQUE") return "ADD UNIQUE";
    if (ct == "CONSTR_PRIMARY") return "ADD PRIMARY KEY";
    if (ct == "CONSTR_EXCLUSION") return "ADD EXCLUDE";
    return "ADD";
  }
  if (subtype == "AT_ValidateConstraint") return "VALIDATE CONSTRAINT";
  if (subtype == "AT_DropColumn") return "DROP COLUMN";
  if (subtype == "AT_DropConstraint") return "DROP CONSTRAINT";
  if (subtype == "AT_AlterColumnType") return "ALTER COLUMN TYPE";
  if (subtype.rfind("AT_SetNotNull", 0) == 0 || subtype == "AT_DropNotNull" ||
      subtype == "AT_ColumnDefault" || subtype == "AT_SetStatistics" ||
      subtype == "AT_SetOptions" || subtype == "AT_ResetOptions" || subtype == "AT_AddIdentity" ||
      subtype == "AT_SetIdentity" || subtype == "AT_DropIdentity" ||
      subtype == "AT_DropExpression" || subtype == "AT_SetStorage" ||
      subtype == "AT_SetCompression")
    return "ALTER COLUMN";
  if (subtype == "AT_SetRelOptions" || subtype == "AT_ResetRelOptions")
    return "SET (storage parameters)";
  if (subtype == "AT_ClusterOn" || subtype == "AT_DropCluster") return "CLUSTER ON";
  if (subtype.find("RowSecurity") != std::string::npos) return "ROW LEVEL SECURITY";
  if (subtype.find("Trig") != std::string::npos) return "TRIGGER";
  if (subtype == "AT_AttachPartition") return "ATTACH PARTITION";
  if (subtype == "AT_DetachPartition" || subtype == "AT_DetachPartitionFinalize")
    return "DETACH PARTITION";
  if (subtype == "AT_ChangeOwner") return "OWNER TO";
  std::string s = subtype.substr(3);  // AT_SetLogged -> SETLOGGED: good enough for a summary
  return upper(s);
}

// Lock level of one ALTER TABLE subcommand (Postgres 15 AlterTableGetLockLevel).
LockMode alter_lock(const std::string& subtype, const Tree& cmd) {
  if (subtype == "AT_SetStatistics" || subtype == "AT_ClusterOn" || subtype == "AT_DropCluster" ||
      subtype == "AT_SetRelOptions" || subtype == "AT_ResetRelOptions" ||
      subtype == "AT_ReplaceRelOptions" || subtype == "AT_SetOptions" ||
      subtype == "AT_ResetOptions" || subtype == "AT_ValidateConstraint" ||
      subtype == "AT_AttachPartition" || subtype == "AT_DetachPartitionFinalize")
    return LockMode::kShareUpdateExclusive;
  if (subtype == "AT_DetachPartition")
    return flag(at(at(cmd, "def"), "PartitionCmd"), "concurrent") ? LockMode::kShareUpdateExclusive
                                                                  : LockMode::kAccessExclusive;
  if (subtype.rfind("AT_EnableTrig", 0) == 0 || subtype.rfind("AT_EnableAlwaysTrig", 0) == 0 ||
      subtype.rfind("AT_EnableReplicaTrig", 0) == 0 || subtype.rfind("AT_DisableTrig", 0) == 0)
    return LockMode::kShareRowExclusive;
  if (subtype == "AT_AddConstraint" &&
      str(at(at(cmd, "def"), "Constraint"), "contype") == "CONSTR_FOREIGN")
    return LockMode::kShareRowExclusive;
  return LockMode::kAccessExclusive;
}

class Analyzer {
 public:
  Analyzer(const std::vector<Token>& t, const AnalysisContext& ctx) : t_(t), ctx_(ctx) {}

  StatementFacts run(const Tree& stmt) {
    for (const Token& tok : t_) f_.words.push_back(tok.text);
    if (!stmt.is_object() || stmt.empty()) return f_;
    f_.node = stmt.begin().key();
    const Tree& n = stmt.begin().value();
    const std::string& k = f_.node;
    if (k == "CreateStmt")
      create_table(n);
    else if (k == "CreateTableAsStmt")
      create_table_as(n);
    else if (k == "IndexStmt")
      create_index(n);
    else if (k == "ViewStmt")
      created(rv(at(n, "view")), "CREATE VIEW ", true), f_.created_view = f_.target;
    else if (k == "CreateSeqStmt")
      created(rv(at(n, "sequence")), "CREATE SEQUENCE ", true);
    else if (k == "CreateTrigStmt")
      trigger(n);
    else if (k == "CreatePolicyStmt")
      policy(n);
    else if (k == "CreateExtensionStmt")
      extension(n);
    else if (k == "CreateSchemaStmt")
      schema(n);
    else if (k == "CreateRoleStmt")
      f_.created_roles.push_back(str(n, "role")), f_.summary = "CREATE ROLE " + str(n, "role");
    else if (k == "CreatedbStmt" || k == "CreateTableSpaceStmt" || k == "CreateSubscriptionStmt")
      f_.transactional = false;
    else if (k == "DropdbStmt" || k == "DropTableSpaceStmt" || k == "DropSubscriptionStmt")
      f_.transactional = false, f_.destructive = true;
    else if (k == "CreateFunctionStmt")
      function(n);
    else if (k == "AlterTableStmt")
      alter_table(n);
    else if (k == "RenameStmt")
      rename(n);
    else if (k == "AlterObjectSchemaStmt")
      set_schema(n);
    else if (k == "AlterEnumStmt")
      alter_enum(n);
    else if (k == "AlterSystemStmt")
      f_.transactional = false, f_.summary = "ALTER SYSTEM";
    else if (k == "AlterDatabaseStmt" && has_defelem(at(n, "options"), "tablespace"))
      f_.transactional = false;
    else if (k == "AlterSeqStmt")
      lock(LockMode::kAccessExclusive, f_.target = rel(rv(at(n, "sequence")))),
          f_.summary = "ALTER SEQUENCE " + f_.target;
    else if (k == "DropStmt")
      drop(n);
    else if (k == "VacuumStmt")
      vacuum(n);
    else if (k == "ReindexStmt")
      reindex(n);
    else if (k == "ClusterStmt")
      cluster(n);
    else if (k == "RefreshMatViewStmt")
      refresh(n);
    else if (k == "TruncateStmt")
      truncate(n);
    else if (k == "LockStmt")
      lock_stmt(n);
    else if (k == "InsertStmt")
      dml(n, "INSERT INTO "), copy_sources(at(n, "selectStmt"));
    else if (k == "UpdateStmt")
      dml(n, "UPDATE ");
    else if (k == "DeleteStmt")
      dml(n, "DELETE FROM ");
    else if (k == "CommentStmt")
      comment(n);
    else if (k == "GrantStmt")
      grant(n);
    else if (k == "DoStmt")
      f_.do_block = true, f_.summary = "DO";
    else if (k == "TransactionStmt")
      f_.explicit_transaction = true, f_.summary = head(1);
    else if (k == "VariableSetStmt")
      f_.sets_lock_timeout = str(n, "name") == "lock_timeout";
    if (k == "SelectStmt" || k == "CallStmt" || k == "InsertStmt" || k == "UpdateStmt" ||
        k == "DeleteStmt" || k == "CreateTableAsStmt")
      func_calls(n, f_.calls);
    if (k != "DropRoleStmt") role_specs(n, f_.roles);
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
  // A RangeVar (wrapped or bare) -> "s.x" as written.
  static std::string rv(const Tree& j) {
    const Tree& r = unwrap(j, "RangeVar");
    std::string s = str(r, "schemaname");
    return s.empty() ? str(r, "relname") : s + "." + str(r, "relname");
  }
  // Qualifies and records the schema of a written name.
  std::string rel(const std::string& n) {
    std::string q = qualify(n);
    size_t dot = q.find('.');
    if (dot != std::string::npos && std::count(q.begin(), q.end(), '.') == 1)
      f_.schemas.push_back(q.substr(0, dot));
    return q;
  }
  void lock(LockMode m, const std::string& target) {
    if (target.empty()) return;
    for (Lock& l : f_.locks) {
      if (l.target == target) {
        l.mode = std::max(l.mode, m);
        return;
      }
    }
    f_.locks.push_back(Lock{m, target, ctx_.new_relations.count(target) > 0});
  }
  void created(const std::string& name, const char* what, bool relation) {
    f_.target = rel(name);
    f_.creates_relation = relation;
    f_.summary = what + f_.target;
  }
  // Tables a copy reads in full (INSERT ... SELECT, CREATE TABLE ... AS).
  void copy_sources(const Tree& query) {
    if (query.is_null()) return;
    std::vector<std::string> rels;
    std::set<std::string> ctes;
    range_vars(query, rels, ctes);
    for (const std::string& r : rels)
      if (r != f_.target) lock(LockMode::kAccessShare, r);
  }
  void references(const Tree& constraints) {
    if (!constraints.is_array()) return;
    for (const Tree& c : constraints) {
      const Tree& con = at(c, "Constraint");
      if (str(con, "contype") == "CONSTR_FOREIGN")
        lock(LockMode::kShareRowExclusive, rel(rv(at(con, "pktable"))));
    }
  }

  void create_table(const Tree& n) {
    created(rv(at(n, "relation")), "CREATE TABLE ", true);
    if (!at(n, "partbound").is_null())
      for (const Tree& p : at(n, "inhRelations")) lock(LockMode::kAccessExclusive, rel(rv(p)));
    const Tree& elts = at(n, "tableElts");
    if (!elts.is_array()) return;
    for (const Tree& e : elts) {
      references(at(at(e, "ColumnDef"), "constraints"));
      if (e.contains("Constraint")) references(Tree::array({e}));
    }
  }
  void create_table_as(const Tree& n) {
    bool mat = str(n, "objtype") == "OBJECT_MATVIEW";
    created(rv(at(unwrap(at(n, "into"), "IntoClause"), "rel")),
            mat ? "CREATE MATERIALIZED VIEW " : "CREATE TABLE ", true);
    if (!mat) f_.summary += " AS";
    copy_sources(at(n, "query"));
  }
  void create_index(const Tree& n) {
    bool conc = flag(n, "concurrent");
    f_.target = rel(rv(at(n, "relation")));
    f_.summary = std::string("CREATE ") + (flag(n, "unique") ? "UNIQUE " : "") + "INDEX" +
                 (conc ? " CONCURRENTLY" : "") + " ON " + f_.target;
    if (conc) f_.transactional = false;
    lock(conc ? LockMode::kShareUpdateExclusive : LockMode::kShare, f_.target);
  }
  void trigger(const Tree& n) {
    f_.target = rel(rv(at(n, "relation")));
    lock(LockMode::kShareRowExclusive, f_.target);
    f_.summary = "CREATE TRIGGER " + str(n, "trigname") + " ON " + f_.target;
  }
  void policy(const Tree& n) {
    f_.target = rel(rv(at(n, "table")));
    lock(LockMode::kAccessExclusive, f_.target);
    f_.summary = "CREATE POLICY " + str(n, "policy_name") + " ON " + f_.target;
  }
  void extension(const Tree& n) {
    std::string name = str(n, "extname");
    f_.extensions.push_back(name);
    std::string schema = defelem_string(at(n, "options"), "schema");
    if (!schema.empty()) f_.schemas.push_back(schema);
    f_.summary = "CREATE EXTENSION " + name;
  }
  void schema(const Tree& n) {
    std::string name = str(n, "schemaname");
    if (!name.empty()) f_.created_schemas.push_back(name);
    f_.summary = "CREATE SCHEMA " + name;
  }
  void function(const Tree& n) {
    FunctionDef d;
    d.name = qualify(dotted(at(n, "funcname")));
    rel(d.name);
    d.language = defelem_string(at(n, "options"), "language");
    for (char& c : d.language) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    d.body = defelem_string(at(n, "options"), "as");
    f_.summary =
        std::string(flag(n, "is_procedure") ? "CREATE PROCEDURE " : "CREATE FUNCTION ") + d.name;
    f_.defines = std::move(d);
  }

  void alter_table(const Tree& n) {
    std::string objtype = str(n, "objtype");
    f_.target = rel(rv(at(n, "relation")));
    if (objtype != "OBJECT_TABLE" && objtype != "OBJECT_FOREIGN_TABLE") {
      std::string kind =
          objtype == "OBJECT_MATVIEW" ? "MATERIALIZED VIEW" : upper(objtype.substr(7));
      f_.summary = "ALTER " + kind + " " + f_.target;
      bool weak = true;
      for (const Tree& c : at(n, "cmds"))
        weak &= alter_lock(str(at(c, "AlterTableCmd"), "subtype"), at(c, "AlterTableCmd")) ==
                LockMode::kShareUpdateExclusive;
      lock(weak && objtype == "OBJECT_INDEX" ? LockMode::kShareUpdateExclusive
                                             : LockMode::kAccessExclusive,
           f_.target);
      return;
    }
    LockMode strongest = LockMode::kNone;
    std::string first;
    for (const Tree& c : at(n, "cmds")) {
      const Tree& cmd = at(c, "AlterTableCmd");
      std::string st = str(cmd, "subtype");
      if (first.empty()) first = action_name(st, cmd);
      strongest = std::max(strongest, alter_lock(st, cmd));
      const Tree& def = at(cmd, "def");
      if (st == "AT_AddColumn") {
        const Tree& col = at(def, "ColumnDef");
        references(at(col, "constraints"));
        for (const Tree& con : at(col, "constraints"))
          if (str(at(con, "Constraint"), "contype") == "CONSTR_CHECK")
            f_.inline_checks.push_back(str(col, "colname"));
      }
      if (st == "AT_AddConstraint") references(Tree::array({def}));
      if (st == "AT_ValidateConstraint") f_.validates_constraint = true;
      if (st == "AT_DropColumn" || (st == "AT_ColumnDefault" && def.is_null()) ||
          st == "AT_DetachPartition")
        f_.destructive = true;
      if (st == "AT_AttachPartition")
        lock(LockMode::kAccessExclusive, rel(rv(at(at(def, "PartitionCmd"), "name"))));
      if (st == "AT_DetachPartition" && flag(at(def, "PartitionCmd"), "concurrent"))
        f_.transactional = false;
    }
    lock(strongest == LockMode::kNone ? LockMode::kAccessExclusive : strongest, f_.target);
    f_.summary = "ALTER TABLE " + f_.target + (first.empty() ? "" : " " + first);
  }

  void rename(const Tree& n) {
    f_.destructive = true;
    std::string rt = str(n, "renameType");
    const Tree& relation = at(n, "relation");
    if (!relation.is_null()) {
      f_.target = rel(rv(relation));
      lock(LockMode::kAccessExclusive, f_.target);
      std::string kind = str(n, "relationType");
      kind = kind.empty() || rt == "OBJECT_TABLE" || rt == "OBJECT_COLUMN" ||
                     rt == "OBJECT_TABCONSTRAINT"
                 ? "TABLE"
                 : (kind == "OBJECT_MATVIEW" ? "MATERIALIZED VIEW" : upper(kind.substr(7)));
      if (rt == "OBJECT_INDEX" || rt == "OBJECT_VIEW" || rt == "OBJECT_SEQUENCE")
        kind = upper(rt.substr(7));
      f_.summary = "ALTER " + kind + " " + f_.target + " RENAME";
    } else if (rt == "OBJECT_SCHEMA") {
      f_.summary = "ALTER SCHEMA " + str(n, "subname") + " RENAME";
    }
  }
  void set_schema(const Tree& n) {
    f_.destructive = true;
    const Tree& relation = at(n, "relation");
    if (!relation.is_null()) {
      f_.target = rel(rv(relation));
      lock(LockMode::kAccessExclusive, f_.target);
      f_.summary = "ALTER TABLE " + f_.target + " SET SCHEMA";
    }
  }
  void alter_enum(const Tree& n) {
    std::string name = rel(dotted(at(n, "typeName")));
    f_.summary = "ALTER TYPE " + name;
    if (!str(n, "oldVal").empty()) {
      f_.destructive = true;
      f_.summary += " RENAME VALUE";
    } else {
      // WHY: before 12, ALTER TYPE ... ADD VALUE cannot run in a transaction block.
      if (ctx_.server_version < 120000) f_.transactional = false;
      f_.summary += " ADD VALUE";
    }
  }

  void drop(const Tree& n) {
    f_.destructive = true;
    std::string type = str(n, "removeType");
    bool conc = flag(n, "concurrent");
    f_.drop_cascade = str(n, "behavior") == "DROP_CASCADE";
    const Tree& objs = at(n, "objects");
    std::vector<std::string> names;
    if (objs.is_array())
      for (const Tree& o : objs) names.push_back(dotted(o));
    auto relations = [&](const char* what, LockMode m) {
      for (const std::string& nm : names) lock(m, rel(nm));
      if (!names.empty()) f_.target = qualify(names.front());
      f_.summary = std::string("DROP ") + what + f_.target;
    };
    if (type == "OBJECT_TABLE")
      relations("TABLE ", LockMode::kAccessExclusive);
    else if (type == "OBJECT_INDEX") {
      if (conc) f_.transactional = false;
      relations(conc ? "INDEX CONCURRENTLY " : "INDEX ",
                conc ? LockMode::kShareUpdateExclusive : LockMode::kAccessExclusive);
    } else if (type == "OBJECT_VIEW" || type == "OBJECT_MATVIEW") {
      relations(type == "OBJECT_VIEW" ? "VIEW " : "MATERIALIZED VIEW ", LockMode::kAccessExclusive);
      for (const std::string& nm : names) f_.dropped_views.push_back(qualify(nm));
    } else if (type == "OBJECT_SEQUENCE")
      relations("SEQUENCE ", LockMode::kAccessExclusive);
    else if (type == "OBJECT_TRIGGER" || type == "OBJECT_POLICY" || type == "OBJECT_RULE") {
      // objects: [[schema.]table.name]
      std::string full = names.empty() ? "" : names.front();
      size_t dot = full.rfind('.');
      std::string object = dot == std::string::npos ? full : full.substr(dot + 1);
      f_.target = dot == std::string::npos ? "" : rel(full.substr(0, dot));
      lock(LockMode::kAccessExclusive, f_.target);
      f_.summary = "DROP " + upper(type.substr(7)) + " " + object + " ON " + f_.target;
    }
  }

  void vacuum(const Tree& n) {
    bool vac = flag(n, "is_vacuumcmd");
    bool full = has_defelem(at(n, "options"), "full");
    if (vac) f_.transactional = false;
    f_.summary = vac ? (full ? "VACUUM FULL" : "VACUUM") : "ANALYZE";
    for (const Tree& r : at(n, "rels"))
      lock(full ? LockMode::kAccessExclusive : LockMode::kShareUpdateExclusive,
           rel(rv(at(at(r, "VacuumRelation"), "relation"))));
  }
  void reindex(const Tree& n) {
    std::string kind = str(n, "kind");  // REINDEX_OBJECT_INDEX ...
    kind = kind.size() > 15 ? kind.substr(15) : kind;
    bool conc = has_defelem(at(n, "params"), "concurrently");
    std::string name = at(n, "relation").is_null() ? str(n, "name") : rv(at(n, "relation"));
    f_.summary = "REINDEX " + kind + (conc ? " CONCURRENTLY " : " ") + name;
    if (conc || kind == "SCHEMA" || kind == "DATABASE" || kind == "SYSTEM")
      f_.transactional = false;
    if (kind == "TABLE") lock(conc ? LockMode::kShareUpdateExclusive : LockMode::kShare, rel(name));
    if (kind == "INDEX")
      lock(conc ? LockMode::kShareUpdateExclusive : LockMode::kAccessExclusive, rel(name));
  }
  void cluster(const Tree& n) {
    std::string name = at(n, "relation").is_null() ? "" : rv(at(n, "relation"));
    f_.summary = "CLUSTER " + name;
    if (name.empty())
      f_.transactional = false;
    else
      lock(LockMode::kAccessExclusive, f_.target = rel(name));
  }
  void refresh(const Tree& n) {
    bool conc = flag(n, "concurrent");
    f_.target = rel(rv(at(n, "relation")));
    lock(conc ? LockMode::kExclusive : LockMode::kAccessExclusive, f_.target);
    f_.summary =
        std::string("REFRESH MATERIALIZED VIEW ") + (conc ? "CONCURRENTLY " : "") + f_.target;
  }
  void truncate(const Tree& n) {
    f_.destructive = true;
    for (const Tree& r : at(n, "relations")) {
      std::string q = rel(rv(r));
      if (f_.target.empty()) f_.target = q;
      lock(LockMode::kAccessExclusive, q);
    }
    f_.summary = "TRUNCATE " + f_.target;
  }
  void lock_stmt(const Tree& n) {
    static const LockMode modes[] = {LockMode::kNone,
                                     LockMode::kAccessShare,
                                     LockMode::kRowShare,
                                     LockMode::kRowExclusive,
                                     LockMode::kShareUpdateExclusive,
                                     LockMode::kShare,
                                     LockMode::kShareRowExclusive,
                                     LockMode::kExclusive,
                                     LockMode::kAccessExclusive};
    int mode = at(n, "mode").is_number_integer() ? at(n, "mode").get<int>() : 8;
    LockMode m = mode >= 1 && mode <= 8 ? modes[mode] : LockMode::kAccessExclusive;
    for (const Tree& r : at(n, "relations")) {
      std::string q = rel(rv(r));
      if (f_.target.empty()) f_.target = q;
      lock(m, q);
    }
    f_.summary = "LOCK TABLE " + f_.target + " IN " + std::string(lock_mode_name(m)) + " MODE";
  }
  void dml(const Tree& n, const char* verb) {
    f_.target = rel(rv(at(n, "relation")));
    lock(LockMode::kRowExclusive, f_.target);
    f_.summary = verb + f_.target;
  }
  void comment(const Tree& n) {
    std::string type = str(n, "objtype");
    if (type == "OBJECT_TABLE" || type == "OBJECT_COLUMN") {
      std::string name = dotted(at(n, "object"));
      if (type == "OBJECT_COLUMN" && name.rfind('.') != std::string::npos)
        name = name.substr(0, name.rfind('.'));
      f_.target = rel(name);
      lock(LockMode::kShareUpdateExclusive, f_.target);
    }
    f_.summary = head(3);
  }
  void grant(const Tree& n) {
    f_.summary = flag(n, "is_grant") ? "GRANT" : "REVOKE";
    std::string type = str(n, "objtype");
    const Tree& objs = at(n, "objects");
    if (!objs.is_array()) return;
    if (type == "OBJECT_SCHEMA" || str(n, "targtype") == "ACL_TARGET_ALL_IN_SCHEMA") {
      for (const Tree& o : objs) f_.schemas.push_back(str(at(o, "String"), "sval"));
    } else if (type == "OBJECT_TABLE" && !objs.empty()) {
      f_.summary += " ON " + rel(rv(objs[0]));
    }
  }

  const std::vector<Token>& t_;
  const AnalysisContext& ctx_;
  StatementFacts f_;
};

}  // namespace

std::string qualify(const std::string& name) {
  if (name.empty() || name.find('.') != std::string::npos) return name;
  return "public." + name;
}

StatementFacts analyze(const pgquery::Tree& stmt, const std::vector<Token>& tokens,
                       const AnalysisContext& ctx) {
  return Analyzer(tokens, ctx).run(stmt);
}

StatementFacts unparsed(const std::vector<Token>& tokens, std::string error) {
  StatementFacts f = Analyzer(tokens, AnalysisContext{}).run(pgquery::Tree());
  for (size_t k = 0; k < tokens.size() && k < 2 && tokens[k].kind == TokKind::kWord; ++k)
    f.summary += (k ? " " : "") + upper(tokens[k].text);
  f.explicit_transaction =
      !tokens.empty() && (tokens[0].text == "begin" || tokens[0].text == "commit");
  f.parse_error = std::move(error);
  return f;
}

}  // namespace md::migrate
