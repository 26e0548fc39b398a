// Where a release's artifact is and what its checksum is: the file names
// built from artifact.name_template, the version read back from a file
// name, and the `<file>.sha256` format (as sha256sum writes it). Pure except
// locate_artifact(), which looks at the disk.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "core/error.h"

namespace md::deploy {

// The archive extensions a release may have, in the order they are tried.
inline constexpr std::string_view kArtifactExtensions[] = {".tar.gz", ".tgz", ".tar.zst"};

// The file stem for `version`: name_template with {app} and {version}
// replaced, e.g. "meshhook-v2".
std::string artifact_stem(const config::Artifact& a, const std::string& app,
                          const std::string& version);

// The version in an artifact's file name, by matching the template around
// {version}: "meshhook-v2.tar.gz" -> "v2". kInvalidArgument naming the
// template when the name does not fit it.
Result<std::string> version_from_artifact_name(const config::Artifact& a, const std::string& app,
                                               std::string_view file_name);

// The hex digest in a .sha256 file: its first word, 64 hex digits
// (upper-case is lowered). kInvalidArgument otherwise.
Result<std::string> parse_sha256_file(std::string_view text);

struct LocatedArtifact {
  std::filesystem::path path;
  std::string sha256;
};

// The artifact of `version` in env.artifact.dir (relative to meshdeploy.yml),
// with its checksum from <file>.sha256. kNotFound listing where it looked.
Result<LocatedArtifact> locate_artifact(const config::Environment& env, const std::string& version);
// The checksum of a named artifact file, from <file>.sha256.
Result<LocatedArtifact> read_artifact(const std::filesystem::path& path);

}  // namespace md::deploy
