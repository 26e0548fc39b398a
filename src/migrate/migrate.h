// The migration engine: plan, lint and apply Supabase-layout SQL migrations
// (<dir>/<version>_<name>.sql) against a Postgres database, with a history
// that the Supabase CLI reads as its own.
//
// CONTRACT for deploy/ and cli/ (names stable; fields may be added):
//
//   Request req{settings, dir, url, deployment_id, actor};
//   Plan p = MD_TRY(plan(req));            // preflight + plan, writes nothing
//   if (!p.verdict.ok) refuse(p.verdict.reasons);
//   ApplyReport ex = apply(req, Selection::kExpand);    // before the switch
//   ...switch traffic, stop the old release...
//   ApplyReport co = apply(req, Selection::kContract);  // after the old release stopped
//
// Ordering rule (expand/contract): files always run in version order, never
// reordered. A pending contract file that comes BEFORE a pending expand file
// (in version order) cannot be split into "expand now, contract later"
// without reordering, so plan() refuses it (reason "contract file X precedes
// expand file Y") and apply(kExpand / kContract) fail with
// kFailedPrecondition before touching anything. The fix is to declare X
// `-- meshdeploy:phase expand` when it is safe beside the old release, or to
// ship it in a later deploy (never renumber a file applied elsewhere).
// `migrate up` (Selection::kAll) has no release switch and applies every
// pending file in order regardless of phase.
//
// Every call blocks; none is thread-safe on a shared Request (copy it).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "core/clock.h"
#include "core/error.h"
#include "secrets/secrets.h"

namespace md::migrate {

// ---- what a file is made of ------------------------------------------------

enum class Phase {
  kExpand,    // safe while the old release runs (add table/column/index, ...)
  kContract,  // only once the old release has stopped (drop, rename, ...)
};
std::string_view phase_name(Phase p);  // "expand" | "contract"

// Table-level lock modes, weakest first (Postgres docs, "Table-Level Locks").
enum class LockMode {
  kNone,  // takes no lock on an existing user table (new objects, functions, grants)
  kAccessShare,
  kRowShare,
  kRowExclusive,
  kShareUpdateExclusive,
  kShare,
  kShareRowExclusive,
  kExclusive,
  kAccessExclusive,
};
std::string_view lock_mode_name(LockMode m);  // "ACCESS EXCLUSIVE", "none", ...

// One lock a statement takes, e.g. {kAccessExclusive, "public.workflows"}.
struct Lock {
  LockMode mode = LockMode::kNone;
  std::string target;       // schema-qualified relation ("public." added when unqualified)
  bool new_object = false;  // the relation is created earlier in the same run: nobody waits
};

enum class Severity {
  kError,    // locks, rewrites or breaks the running release: gates `lint` and deploys
  kWarning,  // worth knowing (type choices, portability): shown, never gates
};
std::string_view severity_name(Severity s);  // "error" | "warning"

// One lint finding, anchored to a statement.
struct Finding {
  std::string file;  // file name (no directory), e.g. 20240101000000_init.sql
  int line = 0;      // 1-based line of the statement's first token
  std::string rule;  // stable rule id, e.g. "adding-not-nullable-field"
  Severity severity = Severity::kError;
  std::string message;        // what this statement does that is flagged
  std::string why;            // why it is dangerous on a busy production table
  std::string recipe;         // the safe way to do it
  bool acknowledged = false;  // a `-- meshdeploy:allow <rule> <reason>` covers it
  std::string ack_reason;     // that comment's reason ("" when not acknowledged)
  // "file:line: rule: message" (+ " [allowed: reason]")
  std::string format() const;
};

struct PlannedStatement {
  int line = 0;                   // 1-based start line in the file
  std::string text;               // the statement as written (trimmed, no trailing ';')
  std::string summary;            // first words, e.g. "ALTER TABLE public.workflows ADD COLUMN"
  bool transactional = true;      // false: cannot run inside a transaction block
  std::vector<Lock> locks;        // what it locks on existing relations (may be empty)
  Phase phase = Phase::kExpand;   // phase this statement alone would need
  std::vector<Finding> findings;  // its own and those of the PL/pgSQL bodies it runs
  // What the analysis could not see, e.g. "line 12: EXECUTE of SQL built at
  // run time: ..."; when not empty, `locks` may be incomplete.
  std::vector<std::string> blind_spots;
};

enum class FileState {
  kPending,     // not recorded in the history
  kApplied,     // recorded, checksum matches
  kDrifted,     // recorded, but the file's sha256 changed since it was applied
  kPartial,     // non-transactional file interrupted: some statements done (resumes)
  kMissing,     // recorded in the history, but no file in the directory
  kOutOfOrder,  // pending, yet older than the newest applied version
};
std::string_view file_state_name(FileState s);  // "pending", "applied", ...

struct PlannedFile {
  std::string version;  // the digits before the first '_'
  std::string name;     // the rest of the stem
  std::string file;     // file name
  std::string sha256;   // hex of the file's bytes ("" for kMissing)
  FileState state = FileState::kPending;
  Phase phase = Phase::kExpand;  // declared (`-- meshdeploy:phase contract`) or inferred
  bool phase_declared = false;
  bool transactional = true;  // false: run statement by statement, outside a transaction
  int resume_at = 0;          // kPartial: index of the first statement not yet done
  std::vector<PlannedStatement> statements;
  std::vector<std::string> supabase_statements;  // exactly what the Supabase CLI records
  std::vector<Finding> findings() const;         // all statements' findings, in order
};

// A preflight problem: something that would fail or is unsafe before anything
// runs (missing extension, schema, role; invalid index; drift; ...).
struct Problem {
  std::string code;  // stable id: "missing-extension", "missing-schema", "missing-role",
                     // "invalid-index", "drift", "missing-file", "out-of-order",
                     // "phase-order", "lint"
  std::string file;  // "" when not tied to a file
  int line = 0;
  std::string message;   // names the thing, e.g. "extension \"pg_cron\" is not available"
  std::string fix;       // a command or step that fixes it ("" = none)
  bool blocking = true;  // false: reported only (e.g. an invalid index no pending file touches)
  std::string where() const;  // "file:line: ", "file: " or ""
};

struct Verdict {
  bool ok = true;                    // false: a deploy must not run these migrations
  std::vector<std::string> reasons;  // one line per reason, for output and the journal
};

// ---- inputs ----------------------------------------------------------------

struct Request {
  config::Migrations settings;     // lock_timeout, statement_timeout, retries, include_all,
                                   // backup, backup_dir, require_lint_clean
  std::filesystem::path dir;       // migrations folder (absolute, or relative to the cwd)
  secrets::Secret database_url;    // libpq URL; revealed only to connect
  std::string deployment_id;       // recorded with each applied file ("" outside a deploy)
  std::string actor;               // who runs it, recorded as applied_by (default: $USER)
  bool accept_drift = false;       // up: go on although applied files changed
  Millis runner_lock_wait{60000};  // wait for the one-runner advisory lock at most this long
  bool production = false;         // with settings.backup: pg_dump before applying
  Clock* clock = nullptr;          // backoff, durations; nullptr = real_clock()
  uint64_t jitter_seed = 0;        // 0 = random; tests fix it
};

// ---- results ---------------------------------------------------------------

struct Plan {
  int server_version = 0;          // e.g. 150018; 0 when planned without a database
  std::vector<PlannedFile> files;  // every file and every recorded version, version order
  std::vector<Problem> problems;   // preflight problems (each also in verdict.reasons)
  Verdict verdict;
  std::vector<const PlannedFile*> pending() const;   // kPending/kOutOfOrder/kPartial, in order
  std::vector<const PlannedFile*> expand() const;    // pending expand files
  std::vector<const PlannedFile*> contract() const;  // pending contract files
};

enum class Selection {
  kExpand,    // deploy, before the switch: every pending expand file
  kContract,  // deploy, after the old release stopped: the pending contract files
  kAll,       // `migrate up`: every pending file in version order
};

struct AppliedFile {
  std::string version;
  std::string name;
  Phase phase = Phase::kExpand;
  bool transactional = true;
  int statements = 0;    // statements run by this run
  int resumed_from = 0;  // > 0: a previous run had done this many
  int lock_retries = 0;  // lock timeouts retried before success
  Millis duration{0};
};

// Where and why a statement failed.
struct StatementFailure {
  std::string file;
  int line = 0;
  std::string statement;  // the statement text
  std::string sqlstate;   // "" if not a server error
  std::string message;    // Postgres' message (or ours)
  std::string detail;
  std::string hint;
};

struct ApplyReport {
  std::vector<AppliedFile> applied;         // files this run applied, in order; they stay applied
  std::optional<StatementFailure> failure;  // the statement that stopped the run, if any
  std::optional<Error> error;               // set when the run stopped early
  std::vector<Problem> problems;            // e.g. an invalid index left by a failed build
  std::string backup_path;                  // pg_dump file written before applying ("" = none)
  bool ok() const { return !error.has_value(); }
};

// ---- the calls ------------------------------------------------------------

// Reads the folder only: file list, statements, phases, lint (no server:
// version-dependent rules assume `assume_server_version`). Not an error: an
// empty or absent folder (kNotFound only if `dir` exists but is not a folder).
// kInvalidArgument for a bad file name or unreadable file.
Result<Plan> plan_offline(const Request& req, int assume_server_version = 150000);

// Preflight + plan against the database: history, drift, ordering, available
// extensions, schemas and roles referenced, invalid indexes, lint with the
// server's version, and the verdict a deploy acts on. Writes nothing (the
// history tables are not created). kUnavailable when the server cannot be
// reached; the error never holds the password.
Result<Plan> plan(const Request& req);

// Takes the runner lock, re-plans under it, refuses (error set, nothing
// applied) on problems that block `sel` (drift unless accept_drift, missing
// files, out-of-order unless include_all, phase order, missing extensions,
// invalid indexes); then applies the selected files in version order. Each
// transactional file commits with its history rows; a non-transactional one
// records progress after each statement. A failing file is rolled back (or,
// non-transactional, stops at the failing statement, resumable); earlier
// files stay applied. Lint findings do not stop apply (the CLI's `up` checks
// blockers(plan, kAll, true) first, the deploy plan().verdict). Never throws.
ApplyReport apply(const Request& req, Selection sel);

// Every reason `sel` may not run `p`, one line each, "code: file:line: message":
// the blocking preflight problems (phase order only for kExpand/kContract)
// and, with `lint`, every unacknowledged lint error of a pending file. Empty:
// nothing blocks. Pure; `migrate up` prints them all at once.
std::vector<std::string> blockers(const Plan& p, Selection sel, bool lint);

// Records every file as applied without running it (adopting an existing
// database). Files already recorded are left alone. Returns the versions added.
Result<std::vector<std::string>> baseline(const Request& req,
                                          const std::string& up_to_version = "");

// pg_dump -Fc of the database into settings.backup_dir; returns the path.
Result<std::filesystem::path> backup(const Request& req);
// pg_restore --clean --if-exists of a file written by backup().
Status restore(const Request& req, const std::filesystem::path& dump);

}  // namespace md::migrate
