// dotenv parsing, as motdotla/dotenv and bkeepers/dotenv read files, with
// one deliberate difference: an unquoted value keeps a '#' that is not
// preceded by whitespace (`pa#ss` stays `pa#ss`; motdotla would cut it),
// because cutting a password at '#' silently is worse than keeping it.
// No $VAR expansion: values are stored exactly as written.
#include <cctype>

#include "config/config.h"

namespace md::config {
namespace {

bool key_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
}
bool blank(char c) { return c == ' ' || c == '\t'; }

class DotenvParser {
 public:
  DotenvParser(std::string_view text, const std::string& source) : t_(text), source_(source) {
    if (t_.substr(0, 3) == "\xEF\xBB\xBF") t_.remove_prefix(3);  // UTF-8 BOM
  }

  Result<std::vector<DotenvEntry>> parse() {
    std::vector<DotenvEntry> out;
    while (i_ < t_.size()) {
      skip_blanks();
      if (at_eol()) {
        next_line();
        continue;
      }
      if (t_[i_] == '#') {
        skip_to_eol();
        next_line();
        continue;
      }
      int line = line_;
      if (t_.compare(i_, 6, "export") == 0 && i_ + 6 < t_.size() && blank(t_[i_ + 6])) {
        i_ += 6;
        skip_blanks();
      }
      size_t k = i_;
      while (i_ < t_.size() && key_char(t_[i_])) ++i_;
      std::string key(t_.substr(k, i_ - k));
      skip_blanks();
      if (key.empty() || i_ >= t_.size() || t_[i_] != '=') {
        if (key.empty())
          return error(line, "expected KEY=VALUE (a key is letters, digits, '_', '.' and '-')");
        return error(line, "expected '=' after the key " + key);
      }
      ++i_;
      skip_blanks();
      std::string value = MD_TRY(read_value(line));
      out.push_back({std::move(key), std::move(value), line});
      next_line();
    }
    return out;
  }

 private:
  Result<std::string> read_value(int line) {
    if (at_eol()) return std::string();
    char q = t_[i_];
    if (q == '\'' || q == '"' || q == '`') {
      ++i_;
      std::string v;
      for (;;) {
        if (i_ >= t_.size())
          return error(line, std::string("unterminated ") + quote_name(q) + " value (opened here)");
        char c = t_[i_++];
        if (c == q) break;
        if (c == '\n') ++line_;
        if (c == '\r' && i_ < t_.size() && t_[i_] == '\n') continue;  // CRLF inside quotes -> LF
        if (c == '\\' && q == '"' && i_ < t_.size()) {
          char e = t_[i_++];
          switch (e) {
            case 'n':
              v += '\n';
              break;
            case 'r':
              v += '\r';
              break;
            case 't':
              v += '\t';
              break;
            case '"':
              v += '"';
              break;
            case '\\':
              v += '\\';
              break;
            case '$':
              v += '$';
              break;
            case '\n':
              ++line_;
              v += "\\\n";
              break;
            default:
              v += '\\';
              v += e;
              break;
          }
          continue;
        }
        if (c == '\\' && q == '\'' && i_ < t_.size() && t_[i_] == '\'') {
          v += '\'';  // \' inside single quotes, as motdotla's pattern allows
          ++i_;
          continue;
        }
        v += c;
      }
      skip_blanks();
      if (!at_eol() && t_[i_] != '#')
        return error(line_, std::string("unexpected text after the closing ") + quote_name(q));
      skip_to_eol();
      return v;
    }
    size_t start = i_;
    size_t end = i_;
    while (!at_eol()) {
      if (t_[i_] == '#' && i_ > start && blank(t_[i_ - 1])) break;  // inline comment
      ++i_;
      if (!blank(t_[i_ - 1])) end = i_;
    }
    skip_to_eol();
    std::string v(t_.substr(start, end - start));
    if (!v.empty() && v.back() == '\r') v.pop_back();
    return v;
  }

  static const char* quote_name(char q) {
    return q == '\'' ? "single-quoted" : q == '"' ? "double-quoted" : "backtick-quoted";
  }
  bool at_eol() const {
    return i_ >= t_.size() || t_[i_] == '\n' ||
           (t_[i_] == '\r' && (i_ + 1 >= t_.size() || t_[i_ + 1] == '\n'));
  }
  void skip_blanks() {
    while (i_ < t_.size() && blank(t_[i_])) ++i_;
  }
  void skip_to_eol() {
    while (i_ < t_.size() && t_[i_] != '\n') ++i_;
  }
  void next_line() {
    if (i_ < t_.size() && t_[i_] == '\r') ++i_;
    if (i_ < t_.size() && t_[i_] == '\n') {
      ++i_;
      ++line_;
    }
  }
  // WHY no value in the message: a malformed line may be a pasted secret.
  tl::unexpected<Error> error(int line, std::string what) const {
    return fail(Errc::kInvalidArgument, source_ + ":" + std::to_string(line) + ": " + what);
  }

  std::string_view t_;
  const std::string& source_;
  size_t i_ = 0;
  int line_ = 1;
};

}  // namespace

Result<std::vector<DotenvEntry>> parse_dotenv(std::string_view text,
                                              const std::string& source_name) {
  return DotenvParser(text, source_name).parse();
}

}  // namespace md::config
