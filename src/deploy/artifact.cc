#include "deploy/artifact.h"

#include <fmt/format.h>

#include "core/fs.h"

namespace md::deploy {
namespace {

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

}  // namespace

std::string artifact_stem(const config::Artifact& a, const std::string& app,
                          const std::string& version) {
  return replace_all(replace_all(a.name_template, "{app}", app), "{version}", version);
}

Result<std::string> version_from_artifact_name(const config::Artifact& a, const std::string& app,
                                               std::string_view file_name) {
  std::string_view stem = file_name;
  for (std::string_view ext : kArtifactExtensions)
    if (stem.size() > ext.size() && stem.substr(stem.size() - ext.size()) == ext) {
      stem.remove_suffix(ext.size());
      break;
    }
  const std::string tmpl = replace_all(a.name_template, "{app}", app);
  const size_t at = tmpl.find("{version}");
  auto bad = [&] {
    return fail(Errc::kInvalidArgument,
                fmt::format("artifact '{}' does not fit artifact.name_template '{}' (+ .tar.gz or "
                            ".tar.zst); pass --version too, or rename it",
                            file_name, a.name_template));
  };
  if (at == std::string::npos) return bad();
  const std::string_view prefix = std::string_view(tmpl).substr(0, at);
  const std::string_view suffix = std::string_view(tmpl).substr(at + 9);
  if (stem.size() <= prefix.size() + suffix.size() || stem.substr(0, prefix.size()) != prefix ||
      stem.substr(stem.size() - suffix.size()) != suffix)
    return bad();
  return std::string(stem.substr(prefix.size(), stem.size() - prefix.size() - suffix.size()));
}

Result<std::string> parse_sha256_file(std::string_view text) {
  const size_t b = text.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return fail(Errc::kInvalidArgument, "empty .sha256 file");
  const size_t e = text.find_first_of(" \t\r\n", b);
  std::string hex(text.substr(b, e == std::string_view::npos ? std::string_view::npos : e - b));
  for (char& c : hex) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (hex.size() != 64 || hex.find_first_not_of("0123456789abcdef") != std::string::npos)
    return fail(Errc::kInvalidArgument,
                "a .sha256 file must start with 64 hex digits (as sha256sum writes)");
  return hex;
}

Result<LocatedArtifact> read_artifact(const std::filesystem::path& path) {
  if (!std::filesystem::is_regular_file(path))
    return fail(Errc::kNotFound, fmt::format("artifact {} does not exist", path.string()));
  const std::filesystem::path sum_file = path.string() + ".sha256";
  auto text = fs::read_file(sum_file);
  if (!text)
    return fail(Errc::kNotFound, fmt::format("{} is missing: write it beside the artifact "
                                             "(`sha256sum {} > {}`)",
                                             sum_file.string(), path.filename().string(),
                                             sum_file.filename().string()));
  LocatedArtifact a;
  a.path = path;
  a.sha256 = MD_TRY_CTX(parse_sha256_file(*text), sum_file.string());
  return a;
}

Result<LocatedArtifact> locate_artifact(const config::Environment& env,
                                        const std::string& version) {
  std::filesystem::path dir = env.artifact.dir;
  if (dir.is_relative()) dir = env.base_dir / dir;
  const std::string stem = artifact_stem(env.artifact, env.app, version);
  std::vector<std::string> tried;
  for (std::string_view ext : kArtifactExtensions) {
    const std::filesystem::path p = dir / (stem + std::string(ext));
    if (std::filesystem::is_regular_file(p)) return read_artifact(p);
    tried.push_back(p.string());
  }
  return fail(Errc::kNotFound,
              fmt::format("no artifact for {}: looked for {}", version, fmt::join(tried, ", ")));
}

}  // namespace md::deploy
