// Placeholder: replaced by the subsystem that owns these commands.
#include "cli/commands.h"

namespace md::cli {
Action setup_proxy_run(CLI::App&, Io& io) { return [&io] { return report(io, Error(Errc::kFailedPrecondition, "not available in this build yet")); }; }
Action setup_proxy_deploy(CLI::App&, Io& io) { return [&io] { return report(io, Error(Errc::kFailedPrecondition, "not available in this build yet")); }; }
Action setup_proxy_canary(CLI::App&, Io& io) { return [&io] { return report(io, Error(Errc::kFailedPrecondition, "not available in this build yet")); }; }
Action setup_proxy_promote(CLI::App&, Io& io) { return [&io] { return report(io, Error(Errc::kFailedPrecondition, "not available in this build yet")); }; }
Action setup_proxy_abort(CLI::App&, Io& io) { return [&io] { return report(io, Error(Errc::kFailedPrecondition, "not available in this build yet")); }; }
Action setup_proxy_status(CLI::App&, Io& io) { return [&io] { return report(io, Error(Errc::kFailedPrecondition, "not available in this build yet")); }; }
Action setup_proxy_metrics(CLI::App&, Io& io) { return [&io] { return report(io, Error(Errc::kFailedPrecondition, "not available in this build yet")); }; }
Action setup_proxy_maintenance(CLI::App&, Io& io) { return [&io] { return report(io, Error(Errc::kFailedPrecondition, "not available in this build yet")); }; }
Action setup_proxy_pause(CLI::App&, Io& io) { return [&io] { return report(io, Error(Errc::kFailedPrecondition, "not available in this build yet")); }; }
Action setup_proxy_resume(CLI::App&, Io& io) { return [&io] { return report(io, Error(Errc::kFailedPrecondition, "not available in this build yet")); }; }
}  // namespace md::cli
