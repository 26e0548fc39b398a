// Cleaning of <root>/artifacts/: uploads abandoned mid-way (the controller
// died between chunks) and artifacts no registration refers to any more.
// Plain file operations; the agent calls them under its operation lock, so
// no chunk is written and no artifact registered meanwhile.
#pragma once

#include <filesystem>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"

namespace md::agent {

// An upload in progress is artifacts/<kUploadPrefix><version>.
inline constexpr std::string_view kUploadPrefix = ".tmp-upload-";

// How long an upload may see no byte before the agent removes it
// (`agent run --upload-expiry`). Every chunk written restarts the count.
inline constexpr Millis kDefaultUploadExpiry{10 * 60 * 1000};

// Removes the uploads in `artifacts_dir` whose last write (mtime) is more
// than `expiry` before `now`. A younger upload, in progress, is never
// touched. Returns the removed file names, sorted. Failures to list or
// remove are not errors (the next round tries again).
std::vector<std::string> remove_stale_uploads(const std::filesystem::path& artifacts_dir,
                                              Millis expiry, SysTime now);

// Removes every entry of `artifacts_dir` whose name is not in `keep` (the
// files of registered artifacts) and is not an upload (those expire by
// remove_stale_uploads): artifacts refused or left behind by a crash.
// Returns the removed names, sorted. Failures are not errors.
std::vector<std::string> remove_orphan_artifacts(const std::filesystem::path& artifacts_dir,
                                                 const std::set<std::string>& keep);

}  // namespace md::agent
