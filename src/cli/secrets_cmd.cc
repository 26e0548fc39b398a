// Placeholder: replaced by the subsystem that owns these commands.
#include "cli/commands.h"

namespace md::cli {
Action setup_secrets_keygen(CLI::App&, Io& io) { return [&io] { return report(io, Error(Errc::kFailedPrecondition, "not available in this build yet")); }; }
Action setup_secrets_set(CLI::App&, Io& io) { return [&io] { return report(io, Error(Errc::kFailedPrecondition, "not available in this build yet")); }; }
Action setup_secrets_get(CLI::App&, Io& io) { return [&io] { return report(io, Error(Errc::kFailedPrecondition, "not available in this build yet")); }; }
Action setup_secrets_list(CLI::App&, Io& io) { return [&io] { return report(io, Error(Errc::kFailedPrecondition, "not available in this build yet")); }; }
Action setup_secrets_rm(CLI::App&, Io& io) { return [&io] { return report(io, Error(Errc::kFailedPrecondition, "not available in this build yet")); }; }
Action setup_secrets_import(CLI::App&, Io& io) { return [&io] { return report(io, Error(Errc::kFailedPrecondition, "not available in this build yet")); }; }
Action setup_secrets_rotate_key(CLI::App&, Io& io) { return [&io] { return report(io, Error(Errc::kFailedPrecondition, "not available in this build yet")); }; }
}  // namespace md::cli
