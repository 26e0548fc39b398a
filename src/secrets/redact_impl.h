// Private to src/secrets (and its tests and benchmark): the derived forms of
// a secret, the views of a text the redactor searches, and the naive
// reference redactor the fast one is checked against.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace md::secrets::internal {

// Every form of `value` the redactor masks (the value itself first), without
// duplicates, each at least kMinSecretBytes long. See Redactor in secrets.h.
std::vector<std::string> derived_forms(std::string_view value);

// The forms searched in the decoded views: the value and each line of a
// multi-line value (line-joined, at least kMinSecretBytes long).
std::vector<std::string> raw_forms(std::string_view value);

// `p` with every "\r\n" and "\n" removed: patterns are matched in this
// "line-joined" space, so a secret split by an inserted line break is found.
std::string strip_line_breaks(std::string_view p);

// The characters of base64(prefix + value) that depend only on `value`, for
// a prefix of `offset` (0, 1, 2) bytes, in the standard or URL alphabet.
std::string base64_core(std::string_view value, int offset, bool url_alphabet);

// A view of a text: its bytes, and for each byte the range [begin, end) of
// the source bytes it came from.
struct View {
  std::string text;
  std::vector<uint32_t> begin, end;
};

// The line-joined view: `in` without "\r\n" / "\n" (other bytes map 1:1).
View joined_view(std::string_view in);

// One decoding pass over `in`: %HH; &lt; &gt; &amp; &quot; &apos; &#N; &#xH;
// and, when `backslash`, \" \\ \/ \' \b \f \n \r \t \uXXXX (surrogate pairs
// too) and \xHH (without it a backslash is literal, as in XML or a URL).
// Bytes that start no valid escape are kept. Maps compose with `in`'s own
// maps (nullptr for identity). Returns false when nothing was decoded.
bool decode_pass(std::string_view in, const View* in_map, bool backslash, View& out);

// Is `c` a byte that can start an escape decode_pass understands?
inline bool escape_byte(char c) { return c == '\\' || c == '%' || c == '&'; }

// Does a valid escape (backslash escapes included) start at t[i]?
bool escape_at(std::string_view t, size_t i);

// The decoded views searched: once and twice, with and without backslash
// escapes. Calls `fn(view)` for each view that differs from `in`.
template <typename Fn>
void for_each_decoded(std::string_view in, const View* in_map, Fn&& fn) {
  bool has_backslash = in.find('\\') != std::string_view::npos;
  for (bool backslash : {true, false}) {
    if (!backslash && !has_backslash) break;  // the same view again
    View once, twice;
    if (!decode_pass(in, in_map, backslash, once)) continue;
    fn(static_cast<const View&>(once));
    bool more = false;  // a second pass only when the first left a valid escape
    for (size_t k = once.text.find_first_of("\\%&"); k != std::string::npos && !more;
         k = once.text.find_first_of("\\%&", k + 1))
      more = escape_at(once.text, k);
    if (more && decode_pass(once.text, &once, backslash, twice))
      fn(static_cast<const View&>(twice));
  }
}

// An occurrence in a decoded view counts when its source bytes span at most
// this many bytes (raw forms up to `longest_raw` bytes): 6 source bytes per
// byte covers %XX everywhere, \uXXXX for a quarter of the bytes, JSON in
// JSON. (Wholly \u-escaped values are static forms; see derived_forms.)
inline size_t decode_reach(size_t longest_raw) { return std::max<size_t>(6 * longest_raw, 160); }

// The reference: marks every occurrence (overlaps included) of every
// pattern in the joined view, and of every raw form in the joined view
// decoded once and twice (source span <= reach), then replaces each maximal
// run of marked source bytes by "[REDACTED]". O(patterns x text); for tests
// and the benchmark only.
std::string naive_redact(const std::vector<std::string>& patterns,
                         const std::vector<std::string>& raw, size_t reach, std::string_view text);

inline constexpr std::string_view kMask = "[REDACTED]";

}  // namespace md::secrets::internal
