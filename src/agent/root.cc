#include "agent/root.h"

#include <sys/stat.h>

#include "core/files.h"
#include "core/fs.h"

namespace md::agent {
namespace stdfs = std::filesystem;

namespace {

Error refuse(const stdfs::path& root, const std::string& why) {
  return Error(
      Errc::kInvalidArgument,
      "agent root " + root.string() + " " + why +
          "; give a directory of the agent's own, new or empty (e.g. /var/lib/meshdeploy)");
}

Status mark(const stdfs::path& root) {
  return fs::atomic_write(root / kRootMarker,
                          "meshdeploy agent root: this directory and its content belong to "
                          "`meshdeploy agent run` (docs/agent.md)\n",
                          0600);
}

}  // namespace

Result<stdfs::path> claim_root(const stdfs::path& root) {
  std::error_code ec;
  const stdfs::path abs = stdfs::absolute(root, ec).lexically_normal();
  if (ec) return fail(Errc::kInvalidArgument, "agent root " + root.string() + ": " + ec.message());
  const stdfs::path real = stdfs::weakly_canonical(abs, ec);
  if (fs::is_system_dir(abs) || (!ec && fs::is_system_dir(real)))
    return fail(refuse(root, "is a system directory"));

  const auto st = stdfs::status(abs, ec);
  if (!stdfs::exists(st)) {
    MD_TRY_STATUS(fs::ensure_dir(abs, 0700));
    MD_TRY_STATUS(mark(abs));
  } else if (!stdfs::is_directory(st)) {
    return fail(refuse(root, "is not a directory"));
  } else if (!stdfs::exists(abs / kRootMarker, ec) && !stdfs::exists(abs / "agent.lock", ec)) {
    // WHY agent.lock counts: roots made by meshdeploy before the marker.
    if (!stdfs::is_empty(abs, ec) || ec)
      return fail(refuse(root, "is not empty and was not made by meshdeploy (no " +
                                   std::string(kRootMarker) + ")"));
    MD_TRY_STATUS(mark(abs));
  } else if (!stdfs::exists(abs / kRootMarker, ec)) {
    MD_TRY_STATUS(mark(abs));
  }
  stdfs::path canonical = stdfs::canonical(abs, ec);
  if (ec) return fail(Errc::kIo, "agent root " + root.string() + ": " + ec.message());
  return canonical;
}

}  // namespace md::agent
