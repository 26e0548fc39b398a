#include "migrate/files.h"

#include <algorithm>
#include <map>
#include <regex>

#include "core/hash.h"
#include "migrate/lint.h"
#include "migrate/statement.h"

namespace md::migrate {
namespace {

struct Allow {
  std::string rule;
  std::string reason;
  int line = 0;
};

std::string trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

int count_lines(std::string_view s) {
  return static_cast<int>(std::count(s.begin(), s.end(), '\n'));
}

}  // namespace

Result<std::vector<FileRef>> list_dir(const std::filesystem::path& dir) {
  std::vector<FileRef> out;
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) return out;
  if (!std::filesystem::is_directory(dir, ec))
    return fail(Errc::kInvalidArgument,
                "migrations folder " + dir.string() + " is not a directory");
  static const std::regex pattern(R"(^([0-9]+)_(.*)\.sql$)");
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    std::string fname = e.path().filename().string();
    std::smatch m;
    if (!std::regex_match(fname, m, pattern)) continue;
    if (!e.is_regular_file(ec) && !e.is_symlink(ec)) continue;
    out.push_back(FileRef{m[1], m[2], fname, e.path()});
  }
  if (ec) return fail(Errc::kIo, "list " + dir.string() + ": " + ec.message());
  auto key = [](const FileRef& f) {
    std::string_view v = f.version;
    while (v.size() > 1 && v.front() == '0') v.remove_prefix(1);
    return std::make_pair(v.size(), std::string(v));
  };
  std::sort(out.begin(), out.end(), [&](const FileRef& a, const FileRef& b) {
    return key(a) != key(b) ? key(a) < key(b) : a.version < b.version;
  });
  for (size_t i = 1; i < out.size(); ++i)
    if (out[i].version == out[i - 1].version)
      return fail(Errc::kInvalidArgument, "two migration files have version " + out[i].version +
                                              ": " + out[i - 1].file + " and " + out[i].file);
  return out;
}

int line_offset(std::string_view statement, int position) {
  int chars = 0, lines = 0;
  for (size_t i = 0; i < statement.size() && chars < position - 1; ++i) {
    unsigned char c = static_cast<unsigned char>(statement[i]);
    if ((c & 0xC0) != 0x80) ++chars;  // count UTF-8 lead bytes only
    if (c == '\n') ++lines;
  }
  return lines;
}

Result<ParsedFile> parse_file(const FileRef& ref, std::string_view content, AnalysisContext& ctx) {
  ParsedFile out;
  PlannedFile& pf = out.planned;
  pf.version = ref.version;
  pf.name = ref.name;
  pf.file = ref.file;
  pf.sha256 = sha256_hex(content);
  SplitResult sr = split(content);
  if (!sr.lex.error.empty())
    return fail(Errc::kInvalidArgument,
                ref.file + ":" + std::to_string(sr.lex.error_line) + ": " + sr.lex.error);
  pf.supabase_statements = supabase_statements(content, sr);

  std::vector<Allow> allows;
  static const std::regex allow_re(R"(^\s*meshdeploy:allow\s+([A-Za-z0-9_-]+)\s*(.*)$)");
  static const std::regex phase_re(R"(^\s*meshdeploy:phase\s+(\S+)\s*$)");
  for (const Comment& c : sr.lex.comments) {
    std::smatch m;
    std::string text = trim(c.text);
    if (std::regex_match(text, m, allow_re)) {
      allows.push_back(Allow{m[1], trim(m[2].str()), c.line});
    } else if (std::regex_match(text, m, phase_re)) {
      if (m[1] == "contract")
        pf.phase = Phase::kContract;
      else if (m[1] == "expand")
        pf.phase = Phase::kExpand;
      else
        return fail(Errc::kInvalidArgument,
                    ref.file + ":" + std::to_string(c.line) +
                        ": meshdeploy:phase must be 'expand' or 'contract', not '" + m[1].str() +
                        "'");
      pf.phase_declared = true;
    } else if (text.rfind("meshdeploy:", 0) == 0) {
      return fail(Errc::kInvalidArgument,
                  ref.file + ":" + std::to_string(c.line) + ": unknown directive '" +
                      text.substr(0, 40) +
                      "' (meshdeploy:allow RULE REASON or meshdeploy:phase expand|contract)");
    }
  }

  ctx.file_sets_lock_timeout = false;
  ctx.warned_lock_timeout = false;
  ctx.ddl_tables.clear();
  int prev_end_line = 0;
  std::vector<StatementFacts> all_facts;
  for (const Piece& p : sr.pieces) {
    if (!p.has_code) continue;
    const Token& first = sr.lex.tokens[p.first_token];
    if (first.kind == TokKind::kPunct && first.text == "\\")
      return fail(Errc::kInvalidArgument, ref.file + ":" + std::to_string(p.line) +
                                              ": psql meta-command; migrations must be plain SQL");
    std::string text(content.substr(p.code_begin, p.code_end - p.code_begin));
    int end_line = p.line + count_lines(text);
    AnalysedStatement as = analyze_statement(text, ref.file, p.line, ctx);
    StatementFacts& facts = as.facts;
    PlannedStatement ps;
    ps.line = p.line;
    ps.text = text;
    ps.summary = facts.summary;
    ps.transactional = facts.transactional;
    ps.locks = facts.locks;
    ps.phase = facts.destructive ? Phase::kContract : Phase::kExpand;
    ps.findings = std::move(as.findings);
    ps.blind_spots = std::move(as.blind_spots);
    for (Finding& f : ps.findings) {
      for (const Allow& a : allows) {
        bool outside =
            f.line < p.line || f.line > end_line;  // in a function body defined elsewhere
        bool covers = (a.line >= p.line && a.line <= end_line) ||
                      (a.line > prev_end_line && a.line < p.line) ||
                      (outside && (a.line == f.line || a.line == f.line - 1));
        if (covers && a.rule == f.rule && !a.reason.empty()) {
          f.acknowledged = true;
          f.ack_reason = a.reason;
        }
      }
    }
    if (!facts.transactional) pf.transactional = false;
    for (auto& e : facts.extensions) out.extensions.emplace_back(e, p.line);
    for (auto& s : facts.schemas) out.schemas.emplace_back(s, p.line);
    for (auto& r : facts.roles) out.roles.emplace_back(r, p.line);
    for (auto& s : facts.created_schemas) out.created_schemas.push_back(s);
    for (auto& r : facts.created_roles) out.created_roles.push_back(r);
    out.statements.push_back(std::move(text));
    pf.statements.push_back(std::move(ps));
    all_facts.push_back(std::move(facts));
    prev_end_line = end_line;
  }
  // DROP VIEW v then CREATE [OR REPLACE] VIEW v in one transaction: the old
  // release never sees v missing, so the pair is not a contract change.
  // WHY not with CASCADE: the views that depended on v are gone for good.
  for (size_t i = 0; i < all_facts.size() && pf.transactional; ++i) {
    const StatementFacts& d = all_facts[i];
    if (d.node != "DropStmt" || d.dropped_views.empty() || d.drop_cascade) continue;
    bool all_recreated =
        std::all_of(d.dropped_views.begin(), d.dropped_views.end(), [&](const std::string& v) {
          return std::any_of(all_facts.begin() + static_cast<long>(i) + 1, all_facts.end(),
                             [&](const StatementFacts& c) { return c.created_view == v; });
        });
    if (all_recreated) pf.statements[i].phase = Phase::kExpand;
  }
  bool any_contract =
      std::any_of(pf.statements.begin(), pf.statements.end(),
                  [](const PlannedStatement& s) { return s.phase == Phase::kContract; });
  if (!pf.phase_declared) pf.phase = any_contract ? Phase::kContract : Phase::kExpand;
  return out;
}

}  // namespace md::migrate
