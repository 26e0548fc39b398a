// The redactor: thousands of patterns, >= 1 GB/s on one core.
//
// WHY q-gram filtering, not Aho-Corasick: an automaton over ~7,000 patterns
// touches a large state table at every byte. Instead, patterns are grouped by
// length into tiers; in a tier whose shortest pattern has m bytes, every
// occurrence of every pattern contains a q-byte window (q = 8, or 4 for
// patterns under 8 bytes) that starts at a multiple of s = m - q + 1 in the
// text (q = 4 also for the [8, 16) tier). So the scan looks at one window every s bytes (every 9
// bytes for 16-byte secrets), hashes it and tests one bit of a bitmap built from each pattern's
// windows at offsets 0..s-1. The rare hits are checked in a hash table keyed by the exact window,
// then by memcmp of the whole pattern.
#include <algorithm>
#include <cstring>

#include "core/log.h"
#include "secrets/redact_impl.h"
#include "secrets/secrets.h"

namespace md::secrets {
namespace {

constexpr uint64_t kMul = 0x9E3779B97F4A7C15ULL;

struct Match {
  size_t begin, end;
};

struct Tier {
  unsigned q = 8;  // window bytes: 8, or 4 for patterns shorter than 8
  size_t stride = 1;
  unsigned bitmap_bits = 16;
  std::vector<uint64_t> bitmap;
  unsigned table_bits = 4;
  struct Slot {
    uint64_t key;
    uint32_t begin, count;  // range in entries; count 0 = empty slot
  };
  std::vector<Slot> table;
  struct Entry {
    uint32_t pattern, offset;
  };
  std::vector<Entry> entries;

  static uint64_t load(const char* p, unsigned q) {
    if (q == 8) {
      uint64_t w;
      std::memcpy(&w, p, 8);
      return w;
    }
    uint32_t w;
    std::memcpy(&w, p, 4);
    return w;
  }

  void build(const std::vector<std::string>& patterns, const std::vector<uint32_t>& members) {
    size_t min_len = SIZE_MAX;
    for (uint32_t i : members) min_len = std::min(min_len, patterns[i].size());
    stride = min_len - q + 1;
    struct Raw {
      uint64_t key;
      Entry e;
    };
    std::vector<Raw> raw;
    for (uint32_t i : members)
      for (size_t off = 0; off < stride; ++off)
        raw.push_back({load(patterns[i].data() + off, q), {i, static_cast<uint32_t>(off)}});
    std::sort(raw.begin(), raw.end(), [](const Raw& a, const Raw& b) { return a.key < b.key; });
    // ~32 bits per window: about 3 % of the bits are set, so few false hits.
    bitmap_bits = 16;
    while (bitmap_bits < 24 && (size_t{1} << bitmap_bits) < raw.size() * 32) ++bitmap_bits;
    bitmap.assign((size_t{1} << bitmap_bits) / 64, 0);
    size_t groups = 0;
    for (size_t i = 0; i < raw.size(); ++i) groups += i == 0 || raw[i].key != raw[i - 1].key;
    table_bits = 4;
    while ((size_t{1} << table_bits) < groups * 2) ++table_bits;
    table.assign(size_t{1} << table_bits, Slot{0, 0, 0});
    size_t mask = table.size() - 1;
    for (size_t i = 0; i < raw.size();) {
      size_t j = i;
      while (j < raw.size() && raw[j].key == raw[i].key) entries.push_back(raw[j++].e);
      uint64_t h = raw[i].key * kMul;
      uint64_t b = h >> (64 - bitmap_bits);
      bitmap[b >> 6] |= uint64_t{1} << (b & 63);
      size_t slot = h >> (64 - table_bits);
      while (table[slot].count != 0) slot = (slot + 1) & mask;
      table[slot] = {raw[i].key, static_cast<uint32_t>(entries.size() - (j - i)),
                     static_cast<uint32_t>(j - i)};
      i = j;
    }
  }

  // The patterns whose window at some offset equals the text window at t.
  void verify(const char* p, size_t n, size_t t, uint64_t w, uint64_t h,
              const std::vector<std::string>& patterns, std::vector<Match>& out) const {
    size_t mask = table.size() - 1;
    size_t slot = h >> (64 - table_bits);
    while (table[slot].count != 0 && table[slot].key != w) slot = (slot + 1) & mask;
    const Slot& s = table[slot];
    for (uint32_t k = s.begin; k < s.begin + s.count; ++k) {
      const Entry& e = entries[k];
      if (e.offset > t) continue;
      size_t begin = t - e.offset;
      const std::string& pat = patterns[e.pattern];
      if (begin + pat.size() <= n && std::memcmp(p + begin, pat.data(), pat.size()) == 0)
        out.push_back({begin, begin + pat.size()});
    }
  }

  template <unsigned Q>
  void scan_q(const char* p, size_t n, const std::vector<std::string>& patterns,
              std::vector<Match>& out) const {
    if (n < Q) return;
    const unsigned shift = 64 - bitmap_bits;
    const uint64_t* bits = bitmap.data();
    const size_t last = n - Q;
    size_t t = 0;
    // WHY four windows per round: the bitmap loads are independent, so the
    // CPU overlaps their cache misses.
    for (; t + 3 * stride <= last; t += 4 * stride) {
      uint64_t w0 = load(p + t, Q), w1 = load(p + t + stride, Q);
      uint64_t w2 = load(p + t + 2 * stride, Q), w3 = load(p + t + 3 * stride, Q);
      uint64_t h0 = w0 * kMul, h1 = w1 * kMul, h2 = w2 * kMul, h3 = w3 * kMul;
      uint64_t b0 = h0 >> shift, b1 = h1 >> shift, b2 = h2 >> shift, b3 = h3 >> shift;
      uint64_t any =
          ((bits[b0 >> 6] >> (b0 & 63)) & 1) | (((bits[b1 >> 6] >> (b1 & 63)) & 1) << 1) |
          (((bits[b2 >> 6] >> (b2 & 63)) & 1) << 2) | (((bits[b3 >> 6] >> (b3 & 63)) & 1) << 3);
      if (any == 0) [[likely]]
        continue;
      if (any & 1) verify(p, n, t, w0, h0, patterns, out);
      if (any & 2) verify(p, n, t + stride, w1, h1, patterns, out);
      if (any & 4) verify(p, n, t + 2 * stride, w2, h2, patterns, out);
      if (any & 8) verify(p, n, t + 3 * stride, w3, h3, patterns, out);
    }
    for (; t <= last; t += stride) {
      uint64_t w = load(p + t, Q), h = w * kMul, b = h >> shift;
      if ((bits[b >> 6] >> (b & 63)) & 1) verify(p, n, t, w, h, patterns, out);
    }
  }

  void scan(std::string_view text, const std::vector<std::string>& patterns,
            std::vector<Match>& out) const {
    if (q == 8)
      scan_q<8>(text.data(), text.size(), patterns, out);
    else
      scan_q<4>(text.data(), text.size(), patterns, out);
  }
};

// A set of patterns with its tiers: finds every occurrence in a text.
struct Matcher {
  std::vector<std::string> patterns;  // sorted, unique
  std::vector<Tier> tiers;
  size_t longest = 0;

  void build(std::vector<std::string> all) {
    std::sort(all.begin(), all.end());
    all.erase(std::unique(all.begin(), all.end()), all.end());
    patterns = std::move(all);
    // Tiers by length, [16, inf), [8, 16), [4, 8), each with its own stride:
    // a short pattern must not shrink the long tier's stride.
    std::vector<uint32_t> members[3];
    for (uint32_t i = 0; i < patterns.size(); ++i) {
      size_t len = patterns[i].size();
      longest = std::max(longest, len);
      members[len >= 16 ? 0 : len >= 8 ? 1 : 2].push_back(i);
    }
    for (int k = 0; k < 3; ++k) {
      if (members[k].empty()) continue;
      Tier t;
      // WHY 4-byte windows for [8, 16): the stride is then 5 or more
      // instead of 1; 8-byte windows pay off only from 16 bytes up.
      t.q = k == 0 ? 8 : 4;
      t.build(patterns, members[k]);
      tiers.push_back(std::move(t));
    }
  }
  void scan(std::string_view text, std::vector<Match>& out) const {
    for (const Tier& t : tiers) t.scan(text, patterns, out);
  }
  // Is `s` the beginning of some pattern (or a whole one)?
  bool is_prefix(std::string_view s) const {
    auto it = std::lower_bound(patterns.begin(), patterns.end(), s,
                               [](const std::string& p, std::string_view v) { return p < v; });
    return it != patterns.end() && std::string_view(*it).substr(0, s.size()) == s;
  }
  // The start of the longest suffix of `s` that is a pattern prefix, or
  // s.size() when there is none.
  size_t prefix_start(std::string_view s) const {
    for (size_t k = std::min(s.size(), longest); k > 0; --k)
      if (is_prefix(s.substr(s.size() - k))) return s.size() - k;
    return s.size();
  }
};

// The line-joined view of a text, mapped back by runs (one per line).
struct Joined {
  std::string owned;
  std::string_view text;
  std::vector<std::pair<uint32_t, uint32_t>> runs;  // (joined start, source start)

  explicit Joined(std::string_view in) {
    if (std::memchr(in.data(), '\n', in.size()) == nullptr) {
      text = in;
      runs.push_back({0, 0});
      return;
    }
    owned.reserve(in.size());
    for (size_t i = 0; i < in.size();) {
      const void* hit = std::memchr(in.data() + i, '\n', in.size() - i);
      size_t nl = hit ? static_cast<size_t>(static_cast<const char*>(hit) - in.data()) : in.size();
      size_t keep_end = nl > i && nl < in.size() && in[nl - 1] == '\r' ? nl - 1 : nl;
      if (keep_end > i) {
        runs.push_back({static_cast<uint32_t>(owned.size()), static_cast<uint32_t>(i)});
        owned.append(in.substr(i, keep_end - i));
      }
      i = nl + 1;
    }
    if (runs.empty()) runs.push_back({0, 0});
    text = owned;
  }
  size_t source(size_t j) const {
    auto it = std::upper_bound(runs.begin(), runs.end(), j,
                               [](size_t v, const auto& r) { return v < r.first; });
    --it;
    return it->second + (j - it->first);
  }
  Match to_source(size_t jb, size_t je) const { return {source(jb), source(je - 1) + 1}; }
};

// Positions of valid escapes in `t`, ascending.
std::vector<size_t> escape_positions(std::string_view t) {
  std::vector<size_t> out;
  for (char c : {'\\', '%', '&'}) {
    for (const char* p = t.data();
         (p = static_cast<const char*>(std::memchr(p, c, t.size() - (p - t.data())))) != nullptr;
         ++p) {
      size_t i = static_cast<size_t>(p - t.data());
      if (internal::escape_at(t, i)) out.push_back(i);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

struct Redactor::Impl {
  Matcher main;  // every derived form, searched in the joined view
  Matcher raw;   // values and their lines, searched in the decoded views
  size_t reach = 0;

  explicit Impl(const SecretMap& secrets) {
    std::vector<std::string> all, raws;
    for (const auto& [name, s] : secrets) {
      if (s.reveal().size() < kMinSecretBytes) continue;
      for (std::string& f : internal::derived_forms(s.reveal())) all.push_back(std::move(f));
      for (std::string& f : internal::raw_forms(s.reveal())) raws.push_back(std::move(f));
    }
    main.build(std::move(all));
    raw.build(std::move(raws));
    reach = internal::decode_reach(raw.longest);
  }

  // Decoded-view occurrences inside the joined text's window [s, e).
  void scan_decoded(const Joined& j, size_t s, size_t e, std::vector<Match>& out) const {
    internal::for_each_decoded(j.text.substr(s, e - s), nullptr, [&](const internal::View& v) {
      std::vector<Match> found;
      raw.scan(v.text, found);
      for (const Match& m : found) {
        size_t b = v.begin[m.begin], en = v.end[m.end - 1];
        if (en - b <= reach) out.push_back(j.to_source(s + b, s + en));
      }
    });
  }

  // Every occurrence in `buf`, in source coordinates, unsorted.
  std::vector<Match> find(std::string_view buf) const {
    std::vector<Match> out;
    Joined j(buf);
    std::vector<Match> found;
    main.scan(j.text, found);
    for (const Match& m : found) out.push_back(j.to_source(m.begin, m.end));
    // WHY windows around escape bytes: decoding the whole text would cost
    // as much as the scan; an occurrence that a decoding reveals lies within
    // `reach` of an escape byte, and no escape starts within `reach` before
    // a window, so decoding a window gives the same bytes as decoding all.
    std::vector<size_t> esc = escape_positions(j.text);
    for (size_t i = 0; i < esc.size();) {
      size_t s = esc[i] > reach ? esc[i] - reach : 0;
      size_t last = esc[i];
      while (++i < esc.size() && esc[i] <= last + 2 * reach) last = esc[i];
      scan_decoded(j, s, std::min(j.text.size(), last + reach + 1), out);
    }
    return out;
  }

  // How many trailing bytes of `p` a stream must hold back: the longest
  // tail that could still become (part of) an occurrence.
  size_t hold(std::string_view p) const {
    if (p.empty()) return 0;
    size_t window = 2 * (main.longest + 2 * reach) + 64;
    size_t base = p.size() > window ? p.size() - window : 0;
    std::string_view tail = p.substr(base);
    bool cr = tail.back() == '\r';  // may become a "\r\n" that joins lines
    if (cr) tail.remove_suffix(1);
    Joined j(tail);
    size_t start = tail.size();
    size_t js = main.prefix_start(j.text);
    if (js < j.text.size()) start = std::min(start, j.source(js));
    // An escape byte near the end may start an escape not yet complete: hold
    // it, and what before it could begin a form whose next byte it decodes to.
    for (size_t k = j.text.size() > 12 ? j.text.size() - 12 : 0; k < j.text.size(); ++k)
      if (internal::escape_byte(j.text[k])) {
        start = std::min(start, j.source(k));
        size_t ks = main.prefix_start(j.text.substr(0, k));
        if (ks < k) start = std::min(start, j.source(ks));
        break;
      }
    std::vector<size_t> esc = escape_positions(j.text);
    if (!esc.empty() && esc.back() + reach >= j.text.size()) {
      size_t first = esc.size() - 1;  // the escapes chained to the end
      while (first > 0 && esc[first - 1] + 2 * reach >= esc[first]) --first;
      // WHY hold the whole chain's window: what a decoding reveals depends
      // on every escape within reach, and the next call must decode these
      // bytes exactly as a one-shot redact() would; text with no escape
      // within `reach` of it is not held for this reason.
      size_t s = esc[first] > reach ? esc[first] - reach : 0;
      start = std::min(start, j.source(s));
    }
    size_t held = tail.size() - start + (cr ? 1 : 0);
    return held;
  }

  // Emits buf[0, emit_end) redacted into `out`. `carry` leading bytes of buf
  // are covered by a match found earlier; `in_run` says the output so far
  // ends inside a masked run (a covered byte 0 continues it). Matches that
  // start at or after emit_end are left for the next call, which sees those
  // bytes again; on return carry is relative to emit_end.
  void emit(std::string_view buf, size_t emit_end, size_t& carry, bool& in_run,
            std::string& out) const {
    std::vector<Match> found = find(buf);
    if (carry > 0) found.push_back({0, std::min(carry, buf.size())});
    std::sort(found.begin(), found.end(),
              [](const Match& a, const Match& b) { return a.begin < b.begin; });
    out.reserve(out.size() + emit_end);
    size_t pos = 0, furthest = 0;  // end of the furthest match starting before emit_end
    bool last_covered = in_run;
    for (size_t i = 0; i < found.size() && found[i].begin < emit_end;) {
      size_t a = found[i].begin, b = found[i].end;
      while (++i < found.size() && found[i].begin <= b && found[i].begin < emit_end)
        b = std::max(b, found[i].end);
      furthest = std::max(furthest, b);
      if (a > pos) {
        out.append(buf.substr(pos, a - pos));
        last_covered = false;
      }
      if (!(a == 0 && in_run)) out += internal::kMask;
      pos = std::min(b, emit_end);
      last_covered = true;
    }
    if (pos < emit_end) {
      out.append(buf.substr(pos, emit_end - pos));
      last_covered = false;
    }
    if (emit_end > 0 || furthest > 0) in_run = last_covered;
    carry = furthest > emit_end ? furthest - emit_end : 0;
  }
};

Redactor::Redactor(const SecretMap& secrets) : impl_(std::make_unique<Impl>(secrets)) {}
Redactor::~Redactor() = default;

Result<std::shared_ptr<const Redactor>> Redactor::create(const SecretMap& secrets) {
  for (const auto& [name, s] : secrets) MD_TRY_STATUS(check_secret_value(name, s.reveal()));
  return std::make_shared<const Redactor>(secrets);
}

std::string Redactor::redact(std::string_view text) const {
  std::string out;
  if (impl_->main.patterns.empty()) return std::string(text);
  size_t carry = 0;
  bool in_run = false;
  impl_->emit(text, text.size(), carry, in_run, out);
  return out;
}

const std::vector<std::string>& Redactor::patterns() const { return impl_->main.patterns; }
const std::vector<std::string>& Redactor::decoded_patterns() const { return impl_->raw.patterns; }
size_t Redactor::decode_reach() const { return impl_->reach; }
size_t Redactor::longest_pattern() const { return impl_->main.longest; }

Redactor::Stream::Stream(std::shared_ptr<const Redactor> r) : r_(std::move(r)) {
  MD_CHECK(r_ != nullptr);
}

std::string Redactor::Stream::write(std::string_view chunk) {
  const Impl& impl = *r_->impl_;
  if (impl.main.patterns.empty()) return std::string(chunk);
  pending_.append(chunk);
  size_t emit_end = pending_.size() - impl.hold(pending_);
  std::string out;
  if (emit_end == 0) return out;
  impl.emit(pending_, emit_end, carry_, in_run_, out);
  pending_.erase(0, emit_end);
  return out;
}

std::string Redactor::Stream::flush() {
  std::string out;
  if (!pending_.empty() || carry_ > 0)
    r_->impl_->emit(pending_, pending_.size(), carry_, in_run_, out);
  pending_.clear();
  carry_ = 0;
  in_run_ = false;
  return out;
}

Status check_secret_value(std::string_view name, std::string_view value) {
  if (value.empty())
    return fail(Errc::kInvalidArgument, "secret " + std::string(name) + " is empty");
  if (value.size() < kMinSecretBytes)
    return fail(Errc::kInvalidArgument,
                "secret " + std::string(name) + " is " + std::to_string(value.size()) + " byte" +
                    (value.size() == 1 ? "" : "s") + " long; secrets must be at least " +
                    std::to_string(kMinSecretBytes) +
                    " bytes, because a shorter value cannot be masked in logs without masking "
                    "ordinary text too");
  return ok();
}

void install_log_redactor(std::shared_ptr<const Redactor> r) {
  if (!r) {
    log::set_redaction_filter(nullptr);
    return;
  }
  log::set_redaction_filter([r](std::string_view text) { return r->redact(text); });
}

}  // namespace md::secrets
