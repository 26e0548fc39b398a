// Placeholder: replaced by the subsystem that owns these commands.
#include "cli/commands.h"

namespace md::cli {
Action setup_config_validate(CLI::App&, Io& io) { return [&io] { return report(io, Error(Errc::kFailedPrecondition, "not available in this build yet")); }; }
Action setup_config_show(CLI::App&, Io& io) { return [&io] { return report(io, Error(Errc::kFailedPrecondition, "not available in this build yet")); }; }
}  // namespace md::cli
