// Placeholder: replaced by the subsystem that owns these commands.
#include "cli/commands.h"

namespace md::cli {
Action setup_deploy(CLI::App&, Io& io) { return [&io] { return report(io, Error(Errc::kFailedPrecondition, "not available in this build yet")); }; }
Action setup_rollback(CLI::App&, Io& io) { return [&io] { return report(io, Error(Errc::kFailedPrecondition, "not available in this build yet")); }; }
Action setup_promote(CLI::App&, Io& io) { return [&io] { return report(io, Error(Errc::kFailedPrecondition, "not available in this build yet")); }; }
Action setup_abort(CLI::App&, Io& io) { return [&io] { return report(io, Error(Errc::kFailedPrecondition, "not available in this build yet")); }; }
Action setup_status(CLI::App&, Io& io) { return [&io] { return report(io, Error(Errc::kFailedPrecondition, "not available in this build yet")); }; }
Action setup_history(CLI::App&, Io& io) { return [&io] { return report(io, Error(Errc::kFailedPrecondition, "not available in this build yet")); }; }
Action setup_logs(CLI::App&, Io& io) { return [&io] { return report(io, Error(Errc::kFailedPrecondition, "not available in this build yet")); }; }
}  // namespace md::cli
