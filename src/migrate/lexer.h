// A Postgres-aware lexer and statement splitter: dollar quoting ($$, $tag$),
// quoted identifiers, string literals ('', E'', standard_conforming_strings
// off), line and nested block comments, parentheses and BEGIN ATOMIC bodies
// (split as psql splits, without psql). Pure; no allocation beyond results.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace md::migrate {

enum class TokKind {
  kWord,    // keyword or bare identifier; `text` is lower-cased
  kIdent,   // "quoted identifier"; `text` is the unquoted name
  kString,  // any string literal, incl. dollar-quoted; `text` is the raw token
  kNumber,
  kParam,  // $1
  kPunct,  // one operator/punctuation character, e.g. ( ) , ; . = :
};

struct Token {
  TokKind kind = TokKind::kPunct;
  std::string text;
  size_t offset = 0;  // byte offset of the token in the lexed text
  int line = 1;       // 1-based line of its first byte
};

struct Comment {
  std::string text;  // without the -- or /* */ markers
  int line = 1;
};

struct LexResult {
  std::vector<Token> tokens;
  std::vector<Comment> comments;
  std::string error;  // "" or e.g. "unterminated dollar-quoted string starting at line 12"
  int error_line = 0;
};

// Lexes `sql`. Never fails hard: an unterminated construct ends at the end of
// the text and is described in `error`.
LexResult lex(std::string_view sql, bool standard_conforming_strings = true);

// One statement-sized piece of a file. Pieces are contiguous: piece i+1
// begins where piece i ends, the first at 0 and the last ends at the input's
// size, so concatenating them gives back the input exactly.
struct Piece {
  size_t begin = 0;
  size_t end = 0;          // one past the terminating ';' (or the end of the input)
  size_t code_begin = 0;   // first byte of the first token (== end if none)
  size_t code_end = 0;     // one past the last token before the ';'
  int line = 1;            // line of the first token (of `begin` if none)
  bool has_code = false;   // false: only whitespace and comments
  size_t first_token = 0;  // index range of this piece's tokens in LexResult::tokens
  size_t last_token = 0;   // (excluding the ';')
};

struct SplitResult {
  LexResult lex;
  std::vector<Piece> pieces;
};

// Splits a script into statements the way psql does: at ';' outside quotes,
// comments, parentheses and BEGIN ... END bodies of CREATE FUNCTION/PROCEDURE.
SplitResult split(std::string_view sql, bool standard_conforming_strings = true);

// The statements exactly as the Supabase CLI records them in
// supabase_migrations.schema_migrations.statements: each piece with trailing
// ';' then surrounding whitespace trimmed, empty pieces dropped.
std::vector<std::string> supabase_statements(std::string_view sql, const SplitResult& s);

}  // namespace md::migrate
