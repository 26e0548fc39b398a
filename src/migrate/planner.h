// The pure planner: files + observed server state in, a Plan out. No I/O.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "migrate/files.h"
#include "migrate/history.h"
#include "migrate/migrate.h"

namespace md::migrate {

struct LoadedFile {
  FileRef ref;
  std::string content;
};

struct PlanInput {
  std::vector<LoadedFile> files;     // version order
  std::optional<Observed> observed;  // nullopt: planned without a database
  config::Migrations settings;
  bool accept_drift = false;
  int assume_server_version = 150000;  // used when `observed` is empty
};

// kInvalidArgument for a file that cannot be split (file:line in the message).
Result<Plan> make_plan(const PlanInput& in);

}  // namespace md::migrate
