#include "migrate/lexer.h"

#include <algorithm>

namespace md::migrate {
namespace {

bool ident_start(unsigned char c) { return std::isalpha(c) || c == '_' || c >= 0x80; }
bool ident_char(unsigned char c) { return ident_start(c) || std::isdigit(c) || c == '$'; }
bool space(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

class Lexer {
 public:
  Lexer(std::string_view s, bool scs) : s_(s), scs_(scs) {}

  LexResult run() {
    while (i_ < s_.size()) step();
    return std::move(out_);
  }

 private:
  unsigned char at(size_t k) const { return k < s_.size() ? static_cast<unsigned char>(s_[k]) : 0; }

  // Advances i_ to `to`, counting newlines.
  void advance(size_t to) {
    to = std::min(to, s_.size());
    line_ += static_cast<int>(
        std::count(s_.begin() + static_cast<long>(i_), s_.begin() + static_cast<long>(to), '\n'));
    i_ = to;
  }

  void emit(TokKind k, size_t begin, int line, std::string text) {
    out_.tokens.push_back(Token{k, std::move(text), begin, line});
  }

  void unterminated(const char* what, int line) {
    if (!out_.error.empty()) return;
    out_.error = std::string("unterminated ") + what + " starting at line " + std::to_string(line);
    out_.error_line = line;
  }

  void step() {
    size_t b = i_;
    int line = line_;
    unsigned char c = at(i_);
    if (space(c)) return advance(i_ + 1);
    if (c == '-' && at(i_ + 1) == '-') {
      size_t e = s_.find('\n', i_);
      if (e == std::string_view::npos) e = s_.size();
      out_.comments.push_back(Comment{std::string(s_.substr(b + 2, e - b - 2)), line});
      return advance(e);
    }
    if (c == '/' && at(i_ + 1) == '*') return block_comment();
    if (c == '\'') return quoted_string(b, b, false);
    if ((c == 'e' || c == 'E') && at(i_ + 1) == '\'') return quoted_string(b, b + 1, true);
    if ((c == 'b' || c == 'B' || c == 'x' || c == 'X' || c == 'n' || c == 'N') &&
        at(i_ + 1) == '\'')
      return quoted_string(b, b + 1, false);
    if ((c == 'u' || c == 'U') && at(i_ + 1) == '&' && at(i_ + 2) == '\'')
      return quoted_string(b, b + 2, false);
    if ((c == 'u' || c == 'U') && at(i_ + 1) == '&' && at(i_ + 2) == '"') {
      advance(i_ + 2);
      return quoted_ident(b, line);
    }
    if (c == '"') return quoted_ident(b, line);
    if (c == '$') {
      if (std::isdigit(at(i_ + 1))) {
        size_t e = i_ + 1;
        while (std::isdigit(at(e))) ++e;
        emit(TokKind::kParam, b, line, std::string(s_.substr(b, e - b)));
        return advance(e);
      }
      size_t e = i_ + 1;
      if (ident_start(at(e))) {
        while (e < s_.size() && ident_char(at(e)) && at(e) != '$') ++e;
      }
      if (at(e) == '$') return dollar_string(b, e + 1, line);
      emit(TokKind::kPunct, b, line, "$");
      return advance(i_ + 1);
    }
    if (ident_start(c)) {
      size_t e = i_;
      while (e < s_.size() && ident_char(at(e))) ++e;
      emit(TokKind::kWord, b, line, lower(s_.substr(b, e - b)));
      return advance(e);
    }
    if (std::isdigit(c) || (c == '.' && std::isdigit(at(i_ + 1)))) {
      size_t e = i_;
      while (e < s_.size() && (std::isalnum(at(e)) || at(e) == '.' || at(e) == '_')) {
        // stop at ".." (range) so 1..2 is not one number
        if (at(e) == '.' && at(e + 1) == '.') break;
        ++e;
      }
      emit(TokKind::kNumber, b, line, std::string(s_.substr(b, e - b)));
      return advance(e);
    }
    emit(TokKind::kPunct, b, line, std::string(1, static_cast<char>(c)));
    advance(i_ + 1);
  }

  void block_comment() {
    size_t b = i_;
    int line = line_;
    int depth = 0;
    size_t k = i_;
    while (k < s_.size()) {
      if (at(k) == '/' && at(k + 1) == '*') {
        ++depth;
        k += 2;
      } else if (at(k) == '*' && at(k + 1) == '/') {
        k += 2;
        if (--depth == 0) break;
      } else {
        ++k;
      }
    }
    if (depth > 0) unterminated("block comment", line);
    size_t inner_end = depth > 0 ? s_.size() : k - 2;
    out_.comments.push_back(
        Comment{std::string(s_.substr(b + 2, inner_end > b + 2 ? inner_end - b - 2 : 0)), line});
    advance(k);
  }

  // `quote` is the index of the opening quote; `escapes`: backslash escapes.
  void quoted_string(size_t b, size_t quote, bool escapes) {
    int line = line_;
    bool bs = escapes || !scs_;
    size_t k = quote + 1;
    for (;;) {
      if (k >= s_.size()) {
        unterminated("string literal", line);
        break;
      }
      unsigned char c = at(k);
      if (bs && c == '\\') {
        k += 2;
        continue;
      }
      if (c == '\'') {
        if (at(k + 1) == '\'') {
          k += 2;
          continue;
        }
        ++k;
        break;
      }
      ++k;
    }
    k = std::min(k, s_.size());
    emit(TokKind::kString, b, line, std::string(s_.substr(b, k - b)));
    advance(k);
  }

  void quoted_ident(size_t b, int line) {
    size_t k = i_ + 1;
    std::string name;
    for (;;) {
      if (k >= s_.size()) {
        unterminated("quoted identifier", line);
        break;
      }
      if (at(k) == '"') {
        if (at(k + 1) == '"') {
          name += '"';
          k += 2;
          continue;
        }
        ++k;
        break;
      }
      name += s_[k++];
    }
    emit(TokKind::kIdent, b, line, std::move(name));
    advance(k);
  }

  // [b, tag_end) is the opening $tag$.
  void dollar_string(size_t b, size_t tag_end, int line) {
    std::string_view tag = s_.substr(b, tag_end - b);
    size_t close = s_.find(tag, tag_end);
    size_t e;
    if (close == std::string_view::npos) {
      unterminated("dollar-quoted string", line);
      e = s_.size();
    } else {
      e = close + tag.size();
    }
    emit(TokKind::kString, b, line, std::string(s_.substr(b, e - b)));
    advance(e);
  }

  std::string_view s_;
  bool scs_;
  size_t i_ = 0;
  int line_ = 1;
  LexResult out_;
};

bool is_routine_start(const std::vector<std::string>& w) {
  auto routine = [](const std::string& x) { return x == "function" || x == "procedure"; };
  if (w.size() >= 2 && w[0] == "create" && routine(w[1])) return true;
  return w.size() >= 4 && w[0] == "create" && w[1] == "or" && w[2] == "replace" && routine(w[3]);
}

}  // namespace

LexResult lex(std::string_view sql, bool standard_conforming_strings) {
  return Lexer(sql, standard_conforming_strings).run();
}

SplitResult split(std::string_view sql, bool standard_conforming_strings) {
  SplitResult r;
  r.lex = lex(sql, standard_conforming_strings);
  const auto& toks = r.lex.tokens;
  size_t begin = 0;
  size_t first = 0;
  int parens = 0;
  int begin_depth = 0;
  std::vector<std::string> head;  // first words of the statement, for BEGIN ATOMIC
  auto close_piece = [&](size_t end, size_t tok_end) {
    Piece p;
    p.begin = begin;
    p.end = end;
    p.first_token = first;
    p.last_token = tok_end;
    p.has_code = tok_end > first;
    if (p.has_code) {
      p.code_begin = toks[first].offset;
      const Token& last = toks[tok_end - 1];
      p.code_end = last.offset + (last.kind == TokKind::kIdent ? 0 : last.text.size());
      if (last.kind == TokKind::kIdent) {
        // quoted identifiers lost their quotes in `text`: find the closing
        // quote, scanning from after the opening one (U&"..." starts 2 earlier)
        size_t k = sql.find('"', last.offset);
        k = (k == std::string_view::npos ? last.offset : k) + 1;
        while (k < sql.size()) {
          if (sql[k] == '"') {
            if (k + 1 < sql.size() && sql[k + 1] == '"') {
              k += 2;
              continue;
            }
            ++k;
            break;
          }
          ++k;
        }
        p.code_end = k;
      }
      p.line = toks[first].line;
    } else {
      p.code_begin = p.code_end = end;
      p.line = 1 + static_cast<int>(
                       std::count(sql.begin(), sql.begin() + static_cast<long>(begin), '\n'));
    }
    r.pieces.push_back(p);
    begin = end;
    parens = 0;
    begin_depth = 0;
    head.clear();
  };
  for (size_t t = 0; t < toks.size(); ++t) {
    const Token& tok = toks[t];
    if (tok.kind == TokKind::kPunct) {
      if (tok.text == "(") ++parens;
      if (tok.text == ")" && parens > 0) --parens;
      if (tok.text == ";" && parens == 0 && begin_depth == 0) {
        close_piece(tok.offset + 1, t);
        first = t + 1;
        continue;
      }
    } else if (tok.kind == TokKind::kWord) {
      if (head.size() < 4) head.push_back(tok.text);
      // psql's rule (psqlscan.l): inside CREATE [OR REPLACE] FUNCTION/PROCEDURE,
      // BEGIN and CASE open a block that END closes.
      if ((tok.text == "begin" || tok.text == "case") && is_routine_start(head))
        ++begin_depth;
      else if (tok.text == "end" && begin_depth > 0)
        --begin_depth;
    }
  }
  if (begin < sql.size() || r.pieces.empty()) {
    if (begin < sql.size()) close_piece(sql.size(), toks.size());
  }
  return r;
}

std::vector<std::string> supabase_statements(std::string_view sql, const SplitResult& s) {
  std::vector<std::string> out;
  for (const Piece& p : s.pieces) {
    std::string_view t = sql.substr(p.begin, p.end - p.begin);
    while (!t.empty() && t.back() == ';') t.remove_suffix(1);
    while (!t.empty() && space(static_cast<unsigned char>(t.front()))) t.remove_prefix(1);
    while (!t.empty() && space(static_cast<unsigned char>(t.back()))) t.remove_suffix(1);
    if (!t.empty()) out.emplace_back(t);
  }
  return out;
}

}  // namespace md::migrate
