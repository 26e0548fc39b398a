// The agent's root directory: claimed only if meshdeploy made it (or it is
// new or empty), never a system directory, never chmod'ed unless created here.
#pragma once

#include <filesystem>

#include "core/error.h"

namespace md::agent {

// The marker file meshdeploy writes into every root it creates or adopts.
inline constexpr const char* kRootMarker = ".meshdeploy-agent-root";

// Makes `root` usable as the agent's root and returns its canonical path.
// - missing: created (parents too) with mode 0700, and marked;
// - an existing directory with the marker (or the agent.lock of an older
//   meshdeploy): used as it is, its mode untouched;
// - an existing empty directory: marked and used, its mode untouched;
// Refused with kInvalidArgument, nothing changed: "/" and system directories
// (fs::is_system_dir, also after resolving symlinks), a path that is not a
// directory, and a non-empty directory meshdeploy did not make. kIo on
// failures to create. Blocking (filesystem calls).
Result<std::filesystem::path> claim_root(const std::filesystem::path& root);

}  // namespace md::agent
