// Migrator over the migration engine (migrate/migrate.h).
#include <fmt/format.h>

#include "deploy/adapters.h"

namespace md::deploy {
namespace {

class EngineMigrator : public Migrator {
 public:
  explicit EngineMigrator(migrate::Request req) : req_(std::move(req)) {}
  Result<migrate::Plan> plan() override { return migrate::plan(req_); }
  migrate::ApplyReport apply(migrate::Selection sel, const std::string& deployment_id) override {
    migrate::Request r = req_;
    r.deployment_id = deployment_id;
    return migrate::apply(r, sel);
  }

 private:
  migrate::Request req_;
};

bool has_sql_files(const std::filesystem::path& dir) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec))
    if (e.path().extension() == ".sql") return true;
  return false;
}

}  // namespace

Result<std::unique_ptr<Migrator>> make_migrator(const config::Environment& env,
                                                const secrets::SecretMap& secrets,
                                                const std::string& actor, std::string* why_none) {
  if (!env.migrations.enabled) {
    *why_none = "migrations are disabled (migrations.enabled: false)";
    return std::unique_ptr<Migrator>();
  }
  std::filesystem::path dir = env.migrations.dir;
  if (dir.is_relative()) dir = env.base_dir / dir;
  if (!has_sql_files(dir)) {
    *why_none = fmt::format("no migrations in {}", env.migrations.dir);
    return std::unique_ptr<Migrator>();
  }
  auto url = secrets.find(env.migrations.database_url_secret);
  if (url == secrets.end())
    return fail(
        Errc::kNotFound,
        fmt::format("{} holds migrations, but secret {} (migrations.database_url_secret) is not "
                    "in the {} vault: `meshdeploy secrets set --env {} {}`",
                    env.migrations.dir, env.migrations.database_url_secret, env.name, env.name,
                    env.migrations.database_url_secret));
  migrate::Request req;
  req.settings = env.migrations;
  req.dir = dir;
  req.database_url = url->second;
  req.actor = actor;
  req.production = env.name == "production";
  return std::unique_ptr<Migrator>(std::make_unique<EngineMigrator>(std::move(req)));
}

}  // namespace md::deploy
