#include "migrate/files.h"

#include <algorithm>
#include <map>
#include <regex>

#include "core/hash.h"
#include "migrate/lint.h"

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

int count_lines(std::string_view s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

}  // namespace

Result<std::vector<FileRef>> list_dir(const std::filesystem::path& dir) {
  std::vector<FileRef> out;
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) return out;
  if (!std::filesystem::is_directory(dir, ec))
    return fail(Errc::kInvalidArgument, "migrations folder " + dir.string() + " is not a directory");
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
      return fail(Errc::kInvalidArgument, "two migration files have version " + out[i].version + ": " +
                                              out[i - 1].file + " and " + out[i].file);
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
    return fail(Errc::kInvalidArgument, ref.file + ":" + std::to_string(sr.lex.error_line) + ": " + sr.lex.error);
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
      if (m[1] == "contract") pf.phase = Phase::kContract;
      else if (m[1] == "expand") pf.phase = Phase::kExpand;
      else
        return fail(Errc::kInvalidArgument, ref.file + ":" + std::to_string(c.line) +
                                                ": meshdeploy:phase must be 'expand' or 'contract', not '" +
                                                m[1].str() + "'");
      pf.phase_declared = true;
    } else if (text.rfind("meshdeploy:", 0) == 0) {
      return fail(Errc::kInvalidArgument, ref.file + ":" + std::to_string(c.line) +
                                              ": unknown directive '" + text.substr(0, 40) +
                                              "' (meshdeploy:allow RULE REASON or meshdeploy:phase expand|contract)");
    }
  }

  ctx.file_sets_lock_timeout = false;
  ctx.warned_lock_timeout = false;
  ctx.ddl_tables.clear();
  bool any_contract = false;
  int prev_end_line = 0;
  for (const Piece& p : sr.pieces) {
    if (!p.has_code) continue;
    std::vector<Token> toks(sr.lex.tokens.begin() + static_cast<long>(p.first_token),
                            sr.lex.tokens.begin() + static_cast<long>(p.last_token));
    if (toks[0].kind == TokKind::kPunct && toks[0].text == "\\")
      return fail(Errc::kInvalidArgument, ref.file + ":" + std::to_string(p.line) +
                                              ": psql meta-command; migrations must be plain SQL");
    std::string text(content.substr(p.code_begin, p.code_end - p.code_begin));
    int end_line = p.line + count_lines(text);
    StatementFacts facts = analyze(toks, ctx);
    PlannedStatement ps;
    ps.line = p.line;
    ps.text = text;
    ps.summary = facts.summary;
    ps.transactional = facts.transactional;
    ps.locks = facts.locks;
    ps.phase = facts.destructive ? Phase::kContract : Phase::kExpand;
    ps.findings = lint_statement(toks, facts, ctx, ref.file, p.line);
    for (Finding& f : ps.findings) {
      for (const Allow& a : allows) {
        bool covers = (a.line >= p.line && a.line <= end_line) || (a.line > prev_end_line && a.line < p.line);
        if (covers && a.rule == f.rule && !a.reason.empty()) {
          f.acknowledged = true;
          f.ack_reason = a.reason;
        }
      }
      if (f.rule == "missing-lock-timeout") ctx.warned_lock_timeout = true;
    }
    // context for later statements
    if (facts.creates_relation && !facts.target.empty()) ctx.new_relations.insert(facts.target);
    if (facts.words.size() >= 2 && facts.words[0] == "set" &&
        (facts.words[1] == "lock_timeout" || (facts.words[1] == "local" && facts.words.size() > 2 &&
                                              facts.words[2] == "lock_timeout")))
      ctx.file_sets_lock_timeout = true;
    for (const Lock& l : facts.locks)
      if (l.mode == LockMode::kAccessExclusive) ctx.ddl_tables.insert(l.target);
    for (size_t k = 0; k + 1 < facts.words.size(); ++k)
      if (facts.words[k] == "validate" && facts.words[k + 1] == "constraint") ctx.validated_tables.insert(facts.target);
    if (!facts.transactional) pf.transactional = false;
    if (ps.phase == Phase::kContract) any_contract = true;
    for (auto& e : facts.extensions) out.extensions.push_back(e);
    for (auto& s : facts.schemas) out.schemas.emplace_back(s, p.line);
    for (auto& r : facts.roles) out.roles.emplace_back(r, p.line);
    for (auto& s : facts.created_schemas) out.created_schemas.push_back(s);
    for (auto& r : facts.created_roles) out.created_roles.push_back(r);
    out.statements.push_back(std::move(text));
    pf.statements.push_back(std::move(ps));
    prev_end_line = end_line;
  }
  if (!pf.phase_declared) pf.phase = any_contract ? Phase::kContract : Phase::kExpand;
  return out;
}

}  // namespace md::migrate
