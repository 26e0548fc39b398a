#include "migrate/planner.h"

#include <algorithm>

namespace md::migrate {
namespace {

bool is_pending(FileState s) {
  return s == FileState::kPending || s == FileState::kOutOfOrder || s == FileState::kPartial;
}

void add_problem(Plan& p, std::string code, std::string file, int line, std::string message,
                 std::string fix, bool blocking = true) {
  p.problems.push_back(Problem{std::move(code), std::move(file), line, std::move(message),
                               std::move(fix), blocking});
}

// State of a file given the history.
FileState state_of(const LoadedFile& f, const PlannedFile& pf, const Observed& o, int* resume_at) {
  auto md = o.meshdeploy.find(f.ref.version);
  auto sb = o.supabase.find(f.ref.version);
  if (sb == o.supabase.end()) {
    if (md != o.meshdeploy.end() && !md->second.complete && md->second.statements_done > 0) {
      *resume_at = md->second.statements_done;
      return md->second.checksum == pf.sha256 ? FileState::kPartial : FileState::kDrifted;
    }
    return FileState::kPending;
  }
  if (md != o.meshdeploy.end() && md->second.complete)
    return md->second.checksum == pf.sha256 ? FileState::kApplied : FileState::kDrifted;
  // Applied by another tool (the Supabase CLI): compare the statements it recorded.
  if (!sb->second.statements.empty() && sb->second.statements != pf.supabase_statements)
    return FileState::kDrifted;
  return FileState::kApplied;
}

}  // namespace

Result<Plan> make_plan(const PlanInput& in) {
  Plan plan;
  const Observed* obs = in.observed ? &*in.observed : nullptr;
  plan.server_version = obs ? obs->server_version : 0;
  int version = obs ? obs->server_version : in.assume_server_version;

  // 1. States, before parsing: the lint context depends on what is pending.
  std::vector<FileState> states(in.files.size(), FileState::kPending);
  std::vector<int> resume(in.files.size(), 0);
  std::vector<PlannedFile> shells(in.files.size());
  for (size_t i = 0; i < in.files.size(); ++i) {
    AnalysisContext scratch;
    scratch.server_version = version;
    // statements are needed for the Supabase comparison; cheap enough to parse twice
    auto parsed = parse_file(in.files[i].ref, in.files[i].content, scratch);
    if (!parsed) return fail(std::move(parsed.error()));
    shells[i] = std::move(parsed->planned);
    if (obs) states[i] = state_of(in.files[i], shells[i], *obs, &resume[i]);
  }
  std::string newest_applied;
  if (obs) {
    auto num_less = [](const std::string& a, const std::string& b) {
      return a.size() != b.size() ? a.size() < b.size() : a < b;
    };
    for (const auto& [v, row] : obs->supabase) {
      (void)row;
      if (newest_applied.empty() || num_less(newest_applied, v)) newest_applied = v;
    }
    for (size_t i = 0; i < in.files.size(); ++i)
      if (states[i] == FileState::kPending && !newest_applied.empty() &&
          num_less(in.files[i].ref.version, newest_applied))
        states[i] = FileState::kOutOfOrder;
  }

  // 2. Parse with the right context: pending files share one run context
  //    (a table created by an earlier pending file is new); offline, each
  //    file is its own scope, as squawk lints files.
  AnalysisContext run_ctx;
  run_ctx.server_version = version;
  for (size_t i = 0; i < in.files.size(); ++i) {
    AnalysisContext own;
    own.server_version = version;
    bool shared = obs && is_pending(states[i]);
    AnalysisContext& ctx = shared ? run_ctx : own;
    auto parsed = parse_file(in.files[i].ref, in.files[i].content, ctx);
    if (!parsed) return fail(std::move(parsed.error()));
    PlannedFile pf = std::move(parsed->planned);
    pf.state = states[i];
    pf.resume_at = resume[i];
    const std::string& f = pf.file;
    if (obs && is_pending(states[i])) {
      for (const auto& [ext, line] : parsed->extensions)
        if (!obs->available_extensions.count(ext))
          add_problem(
              plan, "missing-extension", f, line,
              "extension \"" + ext + "\" is not available on the server (pg_available_extensions)",
              "install the extension's package on the server, or remove CREATE EXTENSION " + ext);
      for (const auto& s : parsed->created_schemas) run_ctx.new_relations.insert("schema:" + s);
      for (const auto& r : parsed->created_roles) run_ctx.new_relations.insert("role:" + r);
      for (const auto& [s, line] : parsed->schemas)
        if (!obs->schemas.count(s) && !run_ctx.new_relations.count("schema:" + s))
          add_problem(plan, "missing-schema", f, line, "schema \"" + s + "\" does not exist",
                      "create it in an earlier migration (CREATE SCHEMA IF NOT EXISTS " + s + ")");
      for (const auto& [r, line] : parsed->roles)
        if (!obs->roles.count(r) && !run_ctx.new_relations.count("role:" + r))
          add_problem(plan, "missing-role", f, line, "role \"" + r + "\" does not exist",
                      "create the role first (CREATE ROLE " + r + " NOLOGIN)");
    }
    if (states[i] == FileState::kDrifted) {
      bool partial =
          obs && obs->meshdeploy.count(pf.version) && !obs->meshdeploy.at(pf.version).complete;
      add_problem(
          plan, "drift", f, 0,
          f + (partial ? " changed while partly applied" : " changed after it was applied") +
              " (sha256 differs from the history)",
          "restore the file as applied and put the change in a new migration, or pass "
          "--accept-drift",
          !in.accept_drift);
      if (partial && in.accept_drift) {
        pf.state = FileState::kPartial;
        pf.resume_at = resume[i];
      }
    }
    if (states[i] == FileState::kOutOfOrder)
      add_problem(
          plan, "out-of-order", f, 0,
          f + " is not applied but is older than the newest applied version " + newest_applied,
          "rename it with a newer version, or pass --include-all", !in.settings.include_all);
    plan.files.push_back(std::move(pf));
  }

  // 3. Recorded versions without a file.
  if (obs) {
    for (const auto& entry : obs->supabase) {
      const std::string& v = entry.first;  // WHY not a structured binding: lambdas capture it below
      const SupabaseRow& row = entry.second;
      bool found = std::any_of(in.files.begin(), in.files.end(),
                               [&](const LoadedFile& lf) { return lf.ref.version == v; });
      if (found) continue;
      PlannedFile pf;
      pf.version = v;
      pf.name = row.name;
      pf.file = v + "_" + row.name + ".sql";
      pf.state = FileState::kMissing;
      add_problem(
          plan, "missing-file", pf.file, 0,
          "version " + v + " is recorded as applied but no file " + pf.file + " is in the folder",
          "restore the file from version control (or `supabase migration repair --status "
          "reverted " +
              v + "`)");
      auto pos = std::find_if(plan.files.begin(), plan.files.end(), [&](const PlannedFile& x) {
        return x.version.size() != v.size() ? x.version.size() > v.size() : x.version > v;
      });
      plan.files.insert(pos, std::move(pf));
    }
    for (const InvalidIndex& ix : obs->invalid_indexes)
      add_problem(plan, "invalid-index", "", 0,
                  "index " + ix.index + " on " + ix.table +
                      " is INVALID (a failed CREATE INDEX CONCURRENTLY)",
                  "DROP INDEX CONCURRENTLY IF EXISTS " + ix.index + ";", false);
  }

  // 4. Expand/contract order: a pending contract file before a pending expand file.
  //    WHY the hint is not "renumber": the file may already be applied in
  //    another environment, where a new version would run it a second time.
  const PlannedFile* first_contract = nullptr;
  for (const PlannedFile& pf : plan.files) {
    if (!is_pending(pf.state)) continue;
    if (pf.phase == Phase::kContract && !first_contract) first_contract = &pf;
    if (pf.phase == Phase::kExpand && first_contract) {
      int line = 0;
      for (const PlannedStatement& st : first_contract->statements)
        if (st.phase == Phase::kContract && !line) line = st.line;
      add_problem(plan, "phase-order", first_contract->file, line,
                  "contract file " + first_contract->file + " precedes expand file " + pf.file +
                      ": a deploy runs expand files before the switch and contract files after it",
                  "if " + first_contract->file +
                      " is safe while the old release still runs, put "
                      "'-- meshdeploy:phase expand' at its top; otherwise deploy it after " +
                      pf.file +
                      " is applied (do not renumber a migration already applied elsewhere)");
    }
  }

  // 5. Verdict.
  for (const Problem& p : plan.problems)
    if (p.blocking) plan.verdict.reasons.push_back(p.code + ": " + p.where() + p.message);
  if (in.settings.require_lint_clean) {
    for (const PlannedFile& pf : plan.files) {
      if (!is_pending(pf.state)) continue;
      for (const Finding& f : pf.findings())
        if (!f.acknowledged && f.severity == Severity::kError)
          plan.verdict.reasons.push_back("lint: " + f.format());
    }
  }
  plan.verdict.ok = plan.verdict.reasons.empty();
  return plan;
}

std::vector<std::string> blockers(const Plan& p, Selection sel, bool lint) {
  std::vector<std::string> out;
  for (const Problem& pr : p.problems) {
    if (!pr.blocking || (pr.code == "phase-order" && sel == Selection::kAll)) continue;
    out.push_back(pr.code + ": " + pr.where() + pr.message +
                  (pr.fix.empty() ? "" : " (fix: " + pr.fix + ")"));
  }
  if (!lint) return out;
  for (const PlannedFile* f : p.pending())
    for (const Finding& fd : f->findings())
      if (!fd.acknowledged && fd.severity == Severity::kError)
        out.push_back("lint: " + fd.format());
  return out;
}

}  // namespace md::migrate
