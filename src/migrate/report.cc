#include "migrate/report.h"

#include <nlohmann/json.hpp>

#include "core/json.h"

namespace md::migrate {
namespace {

using nlohmann::json;

bool in_scope(const PlannedFile& f, Scope s) {
  if (s == Scope::kAll) return f.state != FileState::kMissing;
  return f.state == FileState::kPending || f.state == FileState::kOutOfOrder ||
         f.state == FileState::kPartial;
}

// WHY the blind spots: a statement whose SQL could not all be read must never
// read as "no lock".
std::string locks_text(const std::vector<Lock>& locks, const std::vector<std::string>& blind) {
  if (!blind.empty()) {
    std::string s = "locks UNKNOWN (" + std::to_string(blind.size()) + " part(s) not analysed)";
    for (const Lock& l : locks)
      s += ", at least " + std::string(lock_mode_name(l.mode)) + " on " + l.target;
    return s;
  }
  if (locks.empty()) return "no lock on existing tables";
  std::string s;
  for (const Lock& l : locks) {
    if (!s.empty()) s += ", ";
    s += std::string(lock_mode_name(l.mode)) + " on " + l.target + (l.new_object ? " (new)" : "");
  }
  return s;
}

json finding_json(const Finding& f) {
  return json{{"file", f.file},        {"line", f.line},
              {"rule", f.rule},        {"severity", std::string(severity_name(f.severity))},
              {"message", f.message},  {"why", f.why},
              {"recipe", f.recipe},    {"acknowledged", f.acknowledged},
              {"reason", f.ack_reason}};
}

json problems_json(const std::vector<Problem>& ps) {
  json a = json::array();
  for (const Problem& p : ps)
    a.push_back({{"code", p.code},
                 {"file", p.file},
                 {"line", p.line},
                 {"message", p.message},
                 {"fix", p.fix},
                 {"blocking", p.blocking}});
  return a;
}

std::string finding_text(const Finding& f) {
  std::string s = f.file + ":" + std::to_string(f.line) + ": " +
                  std::string(severity_name(f.severity)) + " " + f.rule + ": " + f.message + "\n";
  if (f.acknowledged) return s + "    allowed: " + f.ack_reason + "\n";
  return s + "    why: " + f.why + "\n    fix: " + f.recipe + "\n";
}

std::string problems_text(const Plan& p) {
  std::string s;
  for (const Problem& pr : p.problems)
    s += std::string(pr.blocking ? "error " : "warning ") + pr.code + ": " + pr.message +
         (pr.fix.empty() ? "" : "\n    fix: " + pr.fix) + "\n";
  return s;
}

std::string verdict_text(const Verdict& v) {
  if (v.ok) return "verdict: ok\n";
  std::string s = "verdict: refused\n";
  for (const auto& r : v.reasons) s += "  - " + r + "\n";
  return s;
}

}  // namespace

std::string status_text(const Plan& p) {
  std::string s;
  if (p.server_version) s += "server: Postgres " + std::to_string(p.server_version / 10000) + "\n";
  size_t pending = 0;
  for (const PlannedFile& f : p.files) {
    std::string state(file_state_name(f.state));
    if (f.state == FileState::kPartial)
      state += " (" + std::to_string(f.resume_at) + "/" + std::to_string(f.statements.size()) +
               " statements done)";
    s += f.version + "  " + f.name + "  " + state + "  " + std::string(phase_name(f.phase)) + "\n";
    pending += in_scope(f, Scope::kPending);
  }
  if (p.files.empty()) s += "no migration files\n";
  s += std::to_string(pending) + " pending\n";
  return s + problems_text(p);
}

std::string plan_text(const Plan& p) {
  std::string s;
  for (const PlannedFile* f : p.pending()) {
    s += f->file + "  " + std::string(phase_name(f->phase)) +
         (f->phase_declared ? " (declared)" : "") + "  " +
         (f->transactional ? "one transaction" : "statement by statement, outside a transaction") +
         (f->state == FileState::kPartial
              ? ", resumes at statement " + std::to_string(f->resume_at + 1)
              : "") +
         "\n";
    for (const PlannedStatement& st : f->statements) {
      s += "  line " + std::to_string(st.line) + ": " + st.summary + "\n      " +
           (st.transactional ? "transactional" : "NOT transactional") + "; " +
           locks_text(st.locks, st.blind_spots) + "; " + std::string(phase_name(st.phase)) + "\n";
      for (const Finding& fd : st.findings) {
        std::string t = finding_text(fd);
        std::string indented;
        for (size_t i = 0, b = 0; i <= t.size(); ++i)
          if (i == t.size() || t[i] == '\n') {
            if (i > b) indented += "      " + t.substr(b, i - b) + "\n";
            b = i + 1;
          }
        s += indented;
      }
    }
  }
  if (p.pending().empty()) s += "nothing to apply\n";
  return s + problems_text(p) + verdict_text(p.verdict);
}

std::vector<Finding> blocking_findings(const Plan& p, Scope scope) {
  std::vector<Finding> out;
  for (const PlannedFile& f : p.files) {
    if (!in_scope(f, scope)) continue;
    for (const Finding& fd : f.findings())
      if (!fd.acknowledged && fd.severity == Severity::kError) out.push_back(fd);
  }
  return out;
}

std::string lint_text(const Plan& p, Scope scope) {
  std::string s;
  size_t files = 0, errors = 0, warnings = 0, acked = 0;
  for (const PlannedFile& f : p.files) {
    if (!in_scope(f, scope)) continue;
    ++files;
    for (const Finding& fd : f.findings()) {
      s += finding_text(fd);
      if (fd.acknowledged)
        ++acked;
      else if (fd.severity == Severity::kError)
        ++errors;
      else
        ++warnings;
    }
  }
  s += std::to_string(files) + " file(s) linted: " + std::to_string(errors) + " error(s), " +
       std::to_string(warnings) + " warning(s), " + std::to_string(acked) + " acknowledged\n";
  return s;
}

std::string apply_text(const ApplyReport& r) {
  std::string s;
  if (!r.backup_path.empty()) s += "backup: " + r.backup_path + "\n";
  for (const AppliedFile& a : r.applied) {
    s += "applied " + a.version + "_" + a.name + ".sql  " + std::string(phase_name(a.phase)) +
         "  " + std::to_string(a.statements) + " statement(s) in " +
         std::to_string(a.duration.count()) + " ms";
    if (a.resumed_from) s += ", resumed at statement " + std::to_string(a.resumed_from + 1);
    if (a.lock_retries) s += ", " + std::to_string(a.lock_retries) + " lock-timeout retries";
    s += "\n";
  }
  for (const Problem& p : r.problems)
    s += "warning " + p.code + ": " + p.message + "\n    fix: " + p.fix + "\n";
  if (r.ok() && r.applied.empty()) s += "nothing to apply: the database is up to date\n";
  return s;
}

std::string plan_json(const Plan& p, Scope scope) {
  json files = json::array();
  for (const PlannedFile& f : p.files) {
    if (scope == Scope::kPending && !in_scope(f, Scope::kPending)) continue;
    json sts = json::array();
    for (const PlannedStatement& st : f.statements) {
      json locks = json::array();
      for (const Lock& l : st.locks)
        locks.push_back({{"mode", std::string(lock_mode_name(l.mode))},
                         {"target", l.target},
                         {"new", l.new_object}});
      json fs = json::array();
      for (const Finding& fd : st.findings) fs.push_back(finding_json(fd));
      sts.push_back({{"line", st.line},
                     {"summary", st.summary},
                     {"transactional", st.transactional},
                     {"phase", std::string(phase_name(st.phase))},
                     {"locks", locks},
                     {"findings", fs},
                     {"blind_spots", st.blind_spots}});
    }
    files.push_back({{"version", f.version},
                     {"name", f.name},
                     {"file", f.file},
                     {"sha256", f.sha256},
                     {"state", std::string(file_state_name(f.state))},
                     {"phase", std::string(phase_name(f.phase))},
                     {"phase_declared", f.phase_declared},
                     {"transactional", f.transactional},
                     {"resume_at", f.resume_at},
                     {"statements", sts}});
  }
  json j{{"server_version", p.server_version},
         {"files", files},
         {"problems", problems_json(p.problems)},
         {"verdict", {{"ok", p.verdict.ok}, {"reasons", p.verdict.reasons}}}};
  return to_json_text(j, 2) + "\n";
}

std::string lint_json(const Plan& p, Scope scope) {
  json a = json::array();
  for (const PlannedFile& f : p.files) {
    if (!in_scope(f, scope)) continue;
    for (const Finding& fd : f.findings()) a.push_back(finding_json(fd));
  }
  return to_json_text(json{{"findings", a}, {"blocking", blocking_findings(p, scope).size()}}, 2) +
         "\n";
}

std::string apply_json(const ApplyReport& r) {
  json applied = json::array();
  for (const AppliedFile& a : r.applied)
    applied.push_back({{"version", a.version},
                       {"name", a.name},
                       {"phase", std::string(phase_name(a.phase))},
                       {"transactional", a.transactional},
                       {"statements", a.statements},
                       {"resumed_from", a.resumed_from},
                       {"lock_retries", a.lock_retries},
                       {"duration_ms", a.duration.count()}});
  json j{{"ok", r.ok()},
         {"applied", applied},
         {"problems", problems_json(r.problems)},
         {"backup", r.backup_path}};
  if (r.error) j["error"] = r.error->what();
  if (r.failure)
    j["failure"] = {{"file", r.failure->file},
                    {"line", r.failure->line},
                    {"statement", r.failure->statement},
                    {"sqlstate", r.failure->sqlstate},
                    {"message", r.failure->message},
                    {"detail", r.failure->detail},
                    {"hint", r.failure->hint}};
  return to_json_text(j, 2) + "\n";
}

}  // namespace md::migrate
