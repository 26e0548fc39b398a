// Placeholder: replaced by the subsystem that owns these commands.
#include "cli/commands.h"

namespace md::cli {
Action setup_migrate_status(CLI::App&, Io& io) { return [&io] { return report(io, Error(Errc::kFailedPrecondition, "not available in this build yet")); }; }
Action setup_migrate_plan(CLI::App&, Io& io) { return [&io] { return report(io, Error(Errc::kFailedPrecondition, "not available in this build yet")); }; }
Action setup_migrate_up(CLI::App&, Io& io) { return [&io] { return report(io, Error(Errc::kFailedPrecondition, "not available in this build yet")); }; }
Action setup_migrate_lint(CLI::App&, Io& io) { return [&io] { return report(io, Error(Errc::kFailedPrecondition, "not available in this build yet")); }; }
Action setup_migrate_baseline(CLI::App&, Io& io) { return [&io] { return report(io, Error(Errc::kFailedPrecondition, "not available in this build yet")); }; }
Action setup_migrate_restore(CLI::App&, Io& io) { return [&io] { return report(io, Error(Errc::kFailedPrecondition, "not available in this build yet")); }; }
}  // namespace md::cli
