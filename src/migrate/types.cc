// Names and small accessors of the contract types (migrate.h).
#include "migrate/migrate.h"

namespace md::migrate {

std::string_view phase_name(Phase p) { return p == Phase::kContract ? "contract" : "expand"; }

std::string_view severity_name(Severity s) { return s == Severity::kWarning ? "warning" : "error"; }

std::string_view lock_mode_name(LockMode m) {
  switch (m) {
    case LockMode::kNone:
      return "none";
    case LockMode::kAccessShare:
      return "ACCESS SHARE";
    case LockMode::kRowShare:
      return "ROW SHARE";
    case LockMode::kRowExclusive:
      return "ROW EXCLUSIVE";
    case LockMode::kShareUpdateExclusive:
      return "SHARE UPDATE EXCLUSIVE";
    case LockMode::kShare:
      return "SHARE";
    case LockMode::kShareRowExclusive:
      return "SHARE ROW EXCLUSIVE";
    case LockMode::kExclusive:
      return "EXCLUSIVE";
    case LockMode::kAccessExclusive:
      return "ACCESS EXCLUSIVE";
  }
  return "none";
}

std::string_view file_state_name(FileState s) {
  switch (s) {
    case FileState::kPending:
      return "pending";
    case FileState::kApplied:
      return "applied";
    case FileState::kDrifted:
      return "drifted";
    case FileState::kPartial:
      return "partial";
    case FileState::kMissing:
      return "missing";
    case FileState::kOutOfOrder:
      return "out-of-order";
  }
  return "pending";
}

std::string Finding::format() const {
  std::string s = file + ":" + std::to_string(line) + ": " + rule + ": " + message;
  if (acknowledged) s += " [allowed: " + ack_reason + "]";
  return s;
}

std::string Problem::where() const {
  if (file.empty()) return "";
  return file + (line > 0 ? ":" + std::to_string(line) : std::string()) + ": ";
}

std::vector<Finding> PlannedFile::findings() const {
  std::vector<Finding> out;
  for (const PlannedStatement& s : statements)
    out.insert(out.end(), s.findings.begin(), s.findings.end());
  return out;
}

namespace {
bool pending_state(FileState s) {
  return s == FileState::kPending || s == FileState::kOutOfOrder || s == FileState::kPartial;
}
}  // namespace

std::vector<const PlannedFile*> Plan::pending() const {
  std::vector<const PlannedFile*> out;
  for (const PlannedFile& f : files)
    if (pending_state(f.state)) out.push_back(&f);
  return out;
}

std::vector<const PlannedFile*> Plan::expand() const {
  std::vector<const PlannedFile*> out;
  for (const PlannedFile* f : pending())
    if (f->phase == Phase::kExpand) out.push_back(f);
  return out;
}

std::vector<const PlannedFile*> Plan::contract() const {
  std::vector<const PlannedFile*> out;
  for (const PlannedFile* f : pending())
    if (f->phase == Phase::kContract) out.push_back(f);
  return out;
}

}  // namespace md::migrate
