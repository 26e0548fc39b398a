// pg_dump -Fc before a production run, and pg_restore of such a dump. The
// password reaches the child through PGPASSWORD (pg::env_for), never argv.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <ctime>

#include "core/fs.h"
#include "migrate/migrate.h"
#include "pg/pg.h"

extern char** environ;

namespace md::migrate {
namespace {

// Runs argv with the current environment plus `extra`; returns the exit
// status, or kNotFound when the program is missing.
Result<int> run(const std::vector<std::string>& argv, const std::vector<std::pair<std::string, std::string>>& extra) {
  std::vector<std::string> env_store;
  for (char** e = environ; *e; ++e) {
    std::string kv(*e);
    bool overridden = false;
    for (const auto& [k, v] : extra)
      if (kv.rfind(k + "=", 0) == 0) overridden = true;
    if (!overridden) env_store.push_back(std::move(kv));
  }
  for (const auto& [k, v] : extra) env_store.push_back(k + "=" + v);
  std::vector<char*> envp, args;
  for (auto& s : env_store) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_store = argv;
  for (auto& s : argv_store) args.push_back(s.data());
  args.push_back(nullptr);
  pid_t pid;
  int rc = posix_spawnp(&pid, args[0], nullptr, nullptr, args.data(), envp.data());
  if (rc != 0) return fail(rc == ENOENT ? Errc::kNotFound : Errc::kIo, argv[0] + ": " + std::strerror(rc));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

Result<std::filesystem::path> backup(const Request& req) {
  auto env = MD_TRY(pg::env_for(req.database_url.reveal()));
  std::filesystem::path dir = req.settings.backup_dir;
  MD_TRY_STATUS(fs::ensure_dir(dir, 0700));
  std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", std::gmtime(&now));
  std::string name = std::string("pre-migrate-") + stamp + (req.deployment_id.empty() ? "" : "-" + req.deployment_id) + ".dump";
  std::filesystem::path out = dir / name;
  std::filesystem::path tmp = dir / (name + ".partial");
  int rc = MD_TRY_CTX(run({"pg_dump", "-Fc", "--no-password", "-f", tmp.string()}, env), "pg_dump");
  if (rc != 0) {
    std::filesystem::remove(tmp);
    return fail(Errc::kFailedPrecondition, "pg_dump exited with status " + std::to_string(rc) + " (no backup written)");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, out, ec);
  if (ec) return fail(Errc::kIo, "rename " + tmp.string() + ": " + ec.message());
  return out;
}

Status restore(const Request& req, const std::filesystem::path& dump) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(dump, ec)) return fail(Errc::kNotFound, "no backup file " + dump.string());
  auto env = MD_TRY(pg::env_for(req.database_url.reveal()));
  std::string db;
  for (const auto& [k, v] : env)
    if (k == "PGDATABASE") db = v;
  std::vector<std::string> argv = {"pg_restore", "--clean", "--if-exists", "--no-owner", "--no-password",
                                   "--single-transaction", "--exit-on-error"};
  if (!db.empty()) argv.push_back("--dbname=" + db);
  argv.push_back(dump.string());
  int rc = MD_TRY_CTX(run(argv, env), "pg_restore");
  if (rc != 0) return fail(Errc::kFailedPrecondition, "pg_restore exited with status " + std::to_string(rc) + "; the restore was rolled back");
  return ok();
}

}  // namespace md::migrate
