// pg_dump -Fc before a production run, and pg_restore of such a dump. The
// password reaches the child through PGPASSWORD (pg::env_for), never argv,
// and is cut out of anything the child prints before it reaches a message.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>

#include "core/fs.h"
#include "core/process.h"
#include "migrate/migrate.h"
#include "pg/pg.h"

namespace md::migrate {
namespace {

// Runs a libpq client program (pg_dump, pg_restore) against the request's
// database. A non-zero exit is kFailedPrecondition with the last lines of
// its stderr, the password removed.
Status run_client(const Request& req, std::vector<std::string> argv, const std::string& outcome) {
  auto vars = MD_TRY(pg::env_for(req.database_url.reveal()));
  proc::RunOptions opts;
  std::string password;
  for (auto& [k, v] : vars) {
    if (k == "PGPASSWORD") password = v;
    opts.env.set[k] = v;
  }
  // WHY: a PGSERVICE/PGPASSFILE of the caller must not point the child elsewhere
  opts.env.unset = {"PGSERVICE", "PGSERVICEFILE"};
  std::string program = argv[0];
  proc::RunResult r = MD_TRY_CTX(proc::run(proc::Command::args(std::move(argv)), opts), program);
  if (r.ok()) return ok();
  std::string err = r.err;
  if (!password.empty())
    for (size_t at; (at = err.find(password)) != std::string::npos;)
      err.replace(at, password.size(), "***");
  while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
  if (err.size() > 2000) err = "..." + err.substr(err.size() - 2000);
  return fail(Errc::kFailedPrecondition, program + " " + r.describe() + " (" + outcome + ")" +
                                             (err.empty() ? "" : ": " + err));
}

// Creates `path` empty with mode 0600 (the umask only removes bits), replacing a
// leftover, so that the dump written into it is never readable by others.
Status create_private(const std::filesystem::path& path) {
  std::error_code ec;
  std::filesystem::remove(path, ec);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return fail(Errc::kIo, "create " + path.string() + ": " + std::strerror(errno));
  ::close(fd);
  return ok();
}

// fsync of a file or directory, so that a backup reported as written survives
// a crash of the host.
Status sync_path(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(Errc::kIo, "open " + path.string() + ": " + std::strerror(errno));
  int rc = ::fsync(fd);
  int e = errno;
  ::close(fd);
  if (rc != 0) return fail(Errc::kIo, "fsync " + path.string() + ": " + std::strerror(e));
  return ok();
}

}  // namespace

Result<std::filesystem::path> backup(const Request& req) {
  std::filesystem::path dir = req.settings.backup_dir;
  MD_TRY_STATUS(fs::ensure_dir(dir, 0700));
  // UTC time to the millisecond; never replaces an earlier dump (two runs in
  // one millisecond get -2, -3...). Runs are serialised by the runner lock.
  auto now = std::chrono::system_clock::now();
  std::time_t secs = std::chrono::system_clock::to_time_t(now);
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%S", std::gmtime(&secs));
  std::string stem = std::string("pre-migrate-") + stamp + "." +
                     std::to_string(1000 + ms).substr(1) + "Z" +
                     (req.deployment_id.empty() ? "" : "-" + req.deployment_id);
  std::string name = stem + ".dump";
  for (int n = 2; std::filesystem::exists(dir / name); ++n)
    name = stem + "-" + std::to_string(n) + ".dump";
  std::filesystem::path out = dir / name;
  std::filesystem::path tmp = dir / (name + ".partial");
  MD_TRY_STATUS(create_private(tmp));
  // pg_dump -f opens the existing file for writing: it keeps mode 0600.
  auto st =
      run_client(req, {"pg_dump", "-Fc", "--no-password", "-f", tmp.string()}, "no backup written");
  if (st) st = sync_path(tmp);
  std::error_code ec;
  if (st) {
    std::filesystem::rename(tmp, out, ec);
    if (ec) st = fail(Errc::kIo, "rename " + tmp.string() + ": " + ec.message());
  }
  if (!st) {
    std::filesystem::remove(tmp, ec);
    return fail(std::move(st.error()));
  }
  MD_TRY_STATUS(sync_path(dir));
  return out;
}

Status restore(const Request& req, const std::filesystem::path& dump) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(dump, ec))
    return fail(Errc::kNotFound, "no backup file " + dump.string());
  auto vars = MD_TRY(pg::env_for(req.database_url.reveal()));
  std::vector<std::string> argv = {"pg_restore",     "--clean",       "--if-exists",
                                   "--no-owner",     "--no-password", "--single-transaction",
                                   "--exit-on-error"};
  // WHY --dbname: without it pg_restore prints SQL instead of connecting; the
  // other connection settings (and the password) come from the environment.
  for (const auto& [k, v] : vars)
    if (k == "PGDATABASE") argv.push_back("--dbname=" + v);
  argv.push_back(dump.string());
  return run_client(req, std::move(argv), "nothing restored: the restore ran in one transaction");
}

}  // namespace md::migrate
