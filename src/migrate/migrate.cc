// Entry points: plan (observe + pure planner), apply (the one executor),
// baseline. Backup/restore are in backup.cc.
#include "migrate/migrate.h"

#include <cstdlib>
#include <random>

#include "core/fs.h"
#include "migrate/history.h"
#include "migrate/planner.h"
#include "migrate/runner.h"

namespace md::migrate {
namespace {

constexpr int64_t kRunnerLockKey = 0x6d64'6d69'6772'6174;  // "mdmigrat"

Clock& clock_of(const Request& r) { return r.clock ? *r.clock : real_clock(); }

Result<std::vector<LoadedFile>> load_files(const Request& req) {
  auto refs = MD_TRY(list_dir(req.dir));
  std::vector<LoadedFile> out;
  out.reserve(refs.size());
  for (FileRef& r : refs) {
    auto content = fs::read_file(r.path);
    if (!content) return fail(std::move(content.error()).with_context("read " + r.file));
    out.push_back(LoadedFile{std::move(r), std::move(*content)});
  }
  return out;
}

PlanInput input_for(const Request& req, std::vector<LoadedFile> files,
                    std::optional<Observed> obs) {
  PlanInput in;
  in.files = std::move(files);
  in.observed = std::move(obs);
  in.settings = req.settings;
  in.accept_drift = req.accept_drift;
  return in;
}

}  // namespace

Result<pg::Connection> connect(const Request& req) {
  if (req.database_url.empty()) return fail(Errc::kInvalidArgument, "no database URL given");
  return pg::Connection::connect(req.database_url.reveal());
}

Result<Plan> plan_offline(const Request& req, int assume_server_version) {
  auto files = MD_TRY(load_files(req));
  PlanInput in = input_for(req, std::move(files), std::nullopt);
  in.assume_server_version = assume_server_version;
  return make_plan(in);
}

Result<Plan> plan(const Request& req) {
  auto files = MD_TRY(load_files(req));
  auto conn = MD_TRY(connect(req));
  auto obs = MD_TRY(observe(conn));
  return make_plan(input_for(req, std::move(files), std::move(obs)));
}

Status acquire_runner_lock(pg::Connection& c, Millis wait, Clock& clock) {
  MonoTime deadline = clock.mono() + wait;
  Millis pause(50);
  for (;;) {
    // WHY polling pg_try_advisory_lock: a runner blocked in pg_advisory_lock
    // holds a snapshot that CREATE INDEX CONCURRENTLY of the lock holder
    // waits for: a deadlock. A try returns at once.
    auto r =
        c.exec("SELECT pg_try_advisory_lock($1::bigint) AS got", {std::to_string(kRunnerLockKey)});
    if (!r) return fail(std::move(r.error()).with_context("take the migration lock"));
    if (r->at(0, "got") == "t") return ok();
    if (clock.mono() >= deadline)
      return fail(Errc::kConflict,
                  "another migration runner holds the lock on this database (waited " +
                      std::to_string(wait.count()) + " ms)",
                  true);
    clock.sleep_for(pause);
    pause = std::min(Millis(500), pause * 2);
  }
}

void release_runner_lock(pg::Connection& c) {
  (void)c.exec("SELECT pg_advisory_unlock($1::bigint)", {std::to_string(kRunnerLockKey)});
}

std::string actor_of(const Request& req) {
  if (!req.actor.empty()) return req.actor;
  const char* u = std::getenv("USER");
  return u && *u ? u : "unknown";
}

ApplyReport apply(const Request& req, Selection sel) {
  ApplyReport rep;
  auto stop = [&](Error e) {
    rep.error = std::move(e);
    return rep;
  };
  auto files = load_files(req);
  if (!files) return stop(files.error());
  auto conn = connect(req);
  if (!conn) return stop(conn.error());
  Clock& clock = clock_of(req);
  if (auto st = acquire_runner_lock(*conn, req.runner_lock_wait, clock); !st)
    return stop(st.error());
  struct Unlock {
    pg::Connection& c;
    ~Unlock() { release_runner_lock(c); }
  } unlock{*conn};

  if (auto st = ensure_tables(*conn); !st) return stop(st.error());
  auto obs = observe(*conn);
  if (!obs) return stop(obs.error());
  auto p = make_plan(input_for(req, std::move(*files), std::move(*obs)));
  if (!p) return stop(p.error());

  // Refuse before touching anything.
  for (const Problem& pr : p->problems)
    if (!pr.blocking) rep.problems.push_back(pr);
  std::string blockers_text;
  for (const std::string& b : blockers(*p, sel, false)) blockers_text += "\n  " + b;
  std::vector<const PlannedFile*> todo;
  for (const PlannedFile* f : p->pending()) {
    if (sel == Selection::kContract && f->phase == Phase::kExpand)
      blockers_text += "\n  phase-order: expand file " + f->file +
                       " is still pending; run the expand phase first";
    if (sel == Selection::kExpand && f->phase == Phase::kContract) continue;
    todo.push_back(f);
  }
  if (!blockers_text.empty())
    return stop(Error(Errc::kFailedPrecondition, "nothing applied:" + blockers_text));

  if (req.settings.backup && req.production && !todo.empty()) {
    auto path = backup(req);
    if (!path) return stop(std::move(path.error()).with_context("backup before migrating"));
    rep.backup_path = path->string();
  }

  std::mt19937_64 rng(req.jitter_seed ? req.jitter_seed : std::random_device{}());
  RunContext rc{*conn, req, clock, rng, actor_of(req)};
  for (const PlannedFile* f : todo) {
    auto applied = f->transactional ? apply_transactional(rc, *f) : apply_statements(rc, *f, rep);
    if (!applied) {
      rep.failure = std::move(applied.error().failure);
      return stop(std::move(applied.error().error));
    }
    rep.applied.push_back(*applied);
  }
  return rep;
}

Result<std::vector<std::string>> baseline(const Request& req, const std::string& up_to_version) {
  auto files = MD_TRY(load_files(req));
  auto conn = MD_TRY(connect(req));
  MD_TRY_STATUS(acquire_runner_lock(conn, req.runner_lock_wait, clock_of(req)));
  struct Unlock {
    pg::Connection& c;
    ~Unlock() { release_runner_lock(c); }
  } unlock{conn};
  MD_TRY_STATUS(ensure_tables(conn));
  auto obs = MD_TRY(observe(conn));
  Plan p = MD_TRY(make_plan(input_for(req, std::move(files), std::move(obs))));
  std::string sql = "BEGIN;\n";
  std::vector<std::string> added;
  auto le = [](const std::string& a, const std::string& b) {
    return a.size() != b.size() ? a.size() < b.size() : a <= b;
  };
  for (const PlannedFile* f : p.pending()) {
    if (!up_to_version.empty() && !le(f->version, up_to_version)) continue;
    if (f->state == FileState::kPartial) continue;
    sql += baseline_sql(f->version, f->name, f->supabase_statements, f->sha256,
                        std::string(phase_name(f->phase)), f->transactional,
                        static_cast<int>(f->statements.size()), actor_of(req)) +
           ";\n";
    added.push_back(f->version);
  }
  sql += "COMMIT;";
  if (!added.empty()) {
    auto r = conn.exec_script(sql);
    if (!r) {
      (void)conn.exec("ROLLBACK");
      return fail(std::move(r.error()).with_context("baseline"));
    }
  }
  return added;
}

}  // namespace md::migrate
