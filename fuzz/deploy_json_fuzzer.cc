// Property: whatever bytes a user, a hook or a migration file puts into a
// string, every JSON output that embeds it is produced without throwing and
// parses back as JSON (invalid UTF-8 becomes U+FFFD; valid UTF-8 is kept as
// is). Covers core/json.h itself, `migrate lint|plan --json` (file name and
// SQL), the controller's --json progress and hook-output lines, and the
// notification payload. Linked with md_deploy, which brings the others.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <string_view>

#include "core/json.h"
#include "deploy/report.h"
#include "migrate/planner.h"
#include "migrate/report.h"
#include "notify/notify.h"

namespace {

using nlohmann::json;

// Every line of `text` must parse as JSON (an output of several lines) or,
// when `whole`, the text as one document.
void must_parse(const std::string& text, bool whole) {
  if (whole) {
    if (json::parse(text, nullptr, false).is_discarded()) std::abort();
    return;
  }
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && json::parse(line, nullptr, false).is_discarded()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string s(reinterpret_cast<const char*>(data), size);

  // The helper: as a value and as a key, compact and indented.
  const json doc = {{"v", s}, {s, 1}, {"list", {s, s}}};
  must_parse(md::to_json_text(doc), true);
  must_parse(md::to_json_text(doc, 2), true);
  // Valid UTF-8 comes back unchanged; anything else only through U+FFFD.
  const std::string back = json::parse(md::to_json_text(json(s))).get<std::string>();
  if (back != s && back.find("\xef\xbf\xbd") == std::string::npos) std::abort();

  // migrate lint/plan --json: the SQL and the file name come from the user.
  md::migrate::PlanInput in;
  md::migrate::LoadedFile f;
  f.ref.version = "20240101000000";
  f.ref.name = s.substr(0, 64);
  f.ref.file = "20240101000000_" + f.ref.name + ".sql";
  f.content = s;
  in.files.push_back(std::move(f));
  if (auto p = md::migrate::make_plan(in)) {
    must_parse(md::migrate::lint_json(*p, md::migrate::Scope::kAll), true);
    must_parse(md::migrate::plan_json(*p, md::migrate::Scope::kAll), true);
  }

  // The controller's --json lines: a step message and a hook's output line.
  md::deploy::Progress pr;
  pr.kind = md::deploy::ProgressKind::kStepDone;
  pr.message = s;
  pr.outcome = s.substr(0, 16);
  pr.deployment_id = s.substr(0, 32);
  must_parse(md::deploy::json_line(pr), true);
  std::ostringstream out;
  {
    md::deploy::Renderer r(out, md::deploy::OutputMode::kJson);
    r.line(s);
  }
  must_parse(out.str(), false);

  // A notification's payload: reason and actor are free text.
  md::notify::Event e;
  e.environment = "production";
  e.reason = s;
  e.actor = s.substr(0, 32);
  must_parse(md::notify::event_json(e), true);
  return 0;
}
