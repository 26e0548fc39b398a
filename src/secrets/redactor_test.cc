// The redactor: every derived form, overlaps, adjacency, streaming at every
// split point, and a randomized differential test against the naive one.
#include <nlohmann/json.hpp>
#include <sodium.h>

#include <random>

#include <gtest/gtest.h>

#include "core/log.h"
#include "secrets/redact_impl.h"
#include "secrets/secrets.h"

namespace md::secrets {
namespace {

using internal::base64_core;
using internal::naive_redact;

std::shared_ptr<const Redactor> make(std::initializer_list<std::pair<const char*, std::string>> s) {
  SecretMap m;
  for (const auto& [k, v] : s) m.emplace(k, Secret(v));
  auto r = Redactor::create(m);
  EXPECT_TRUE(r) << r.error().what();
  return *r;
}

std::string b64(std::string_view bin, bool url) {
  std::string out(sodium_base64_encoded_len(bin.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bin.data()),
                    bin.size(),
                    url ? sodium_base64_VARIANT_URLSAFE : sodium_base64_VARIANT_ORIGINAL);
  out.resize(std::char_traits<char>::length(out.c_str()));
  return out;
}

std::string stream_all(const std::shared_ptr<const Redactor>& r,
                       const std::vector<std::string_view>& chunks) {
  Redactor::Stream s(r);
  std::string out;
  for (auto c : chunks) out += s.write(c);
  return out + s.flush();
}

TEST(Redactor, RefusesShortSecretsSayingWhyWithoutTheValue) {
  SecretMap m;
  m.emplace("PIN", Secret("z9q"));
  auto r = Redactor::create(m);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kInvalidArgument);
  EXPECT_NE(r.error().message().find("secret PIN is 3 bytes long; secrets must be at least 4"),
            std::string::npos);
  EXPECT_NE(r.error().message().find("cannot be masked"), std::string::npos);
  EXPECT_EQ(r.error().message().find("z9q"), std::string::npos);
  m["PIN"] = Secret("");
  EXPECT_NE(Redactor::create(m).error().message().find("secret PIN is empty"), std::string::npos);
}

TEST(Redactor, NoSecretsIsIdentity) {
  auto r = make({});
  EXPECT_EQ(r->redact("anything at all"), "anything at all");
  Redactor::Stream s(r);
  EXPECT_EQ(s.write("partial"), "partial");
  EXPECT_EQ(s.flush(), "");
}

TEST(Redactor, MasksTheValueEverywhere) {
  auto r = make({{"TOKEN", "s3cr3t-t0ken"}, {"PW", "hunter2!"}});
  EXPECT_EQ(r->redact("token=s3cr3t-t0ken pw=hunter2! again s3cr3t-t0ken"),
            "token=[REDACTED] pw=[REDACTED] again [REDACTED]");
  EXPECT_EQ(r->redact("s3cr3t-t0ke"), "s3cr3t-t0ke");  // a prefix is not the secret
  EXPECT_EQ(r->redact(""), "");
  EXPECT_EQ(r->redact("s3cr3t-t0ken"), "[REDACTED]");
}

TEST(Redactor, ShortSecretsOfFourToSevenBytes) {
  auto r = make({{"A", "k3y!"}, {"B", "pa55wd"}, {"C", "0123456789"}});
  EXPECT_EQ(r->redact("x k3y! y pa55wd z 0123456789."), "x [REDACTED] y [REDACTED] z [REDACTED].");
  EXPECT_EQ(r->redact("k3y!k3y!"), "[REDACTED]");
}

// base64_core keeps exactly the characters that no neighbouring byte changes.
TEST(RedactorForms, Base64CoreIsExactlyTheNeighbourIndependentPart) {
  std::mt19937 rng(7);
  for (size_t n = 4; n <= 12; ++n) {
    std::string value(n, '\0');
    for (char& c : value) c = static_cast<char>(rng());
    for (int offset = 0; offset < 3; ++offset) {
      for (bool url : {false, true}) {
        std::string core = base64_core(value, offset, url);
        ASSERT_GE(core.size(), 4u);
        // The core appears at the same place whatever the neighbours are ...
        size_t at = std::string::npos;
        std::vector<std::string> encs;
        for (int trial = 0; trial < 64; ++trial) {
          std::string pre(static_cast<size_t>(offset) + 3 * (trial % 2), '\0');
          for (char& c : pre) c = static_cast<char>(rng());
          std::string post(static_cast<size_t>(trial % 3), '\0');
          for (char& c : post) c = static_cast<char>(rng());
          std::string enc = b64(pre + value + post, url);
          size_t pos = (8 * pre.size() + 5) / 6;
          ASSERT_EQ(enc.substr(pos, core.size()), core) << "n=" << n << " offset=" << offset;
          if (trial % 2 == 0) encs.push_back(enc);
          at = pos;
        }
        // ... and the characters just outside it do depend on them.
        size_t before = (8 * static_cast<size_t>(offset) + 5) / 6 - 1;
        size_t after = (8 * static_cast<size_t>(offset) + 5) / 6 + core.size();
        bool before_varies = offset == 0, after_varies = false;
        for (const auto& e : encs) {
          if (offset != 0 && e[before] != encs[0][before]) before_varies = true;
          if (after < e.size() && (after >= encs[0].size() || e[after] != encs[0][after]))
            after_varies = true;
        }
        EXPECT_TRUE(before_varies) << "n=" << n << " offset=" << offset;
        EXPECT_TRUE(after_varies || n % 3 == static_cast<size_t>((3 - offset) % 3)) << "n=" << n << " offset=" << offset;
        (void)at;
      }
    }
  }
}

TEST(RedactorForms, Base64FromEveryOffsetBothAlphabets) {
  // Bytes chosen so the standard and URL alphabets differ (+ / vs - _).
  for (std::string value : {std::string("\xfb\xff\xbf\xfe\xef\xff-key-\xfb\xff"),
                            std::string("AKIAIOSFODNN7EXAMPLE"), std::string("tiny")}) {
    auto r = make({{"S", value}});
    for (int offset = 0; offset < 3; ++offset) {
      for (bool url : {false, true}) {
        for (std::string post : {"", "x", "yz", "\n\n\n"}) {
          std::string pre = std::string("user:") .substr(0, static_cast<size_t>(offset) + 3);
          std::string enc = b64(pre + value + post, url);
          std::string core = base64_core(value, offset + 3, url);
          size_t at = enc.find(core);
          ASSERT_NE(at, std::string::npos);
          std::string line = "Authorization: Basic " + enc + " end";
          std::string expect = "Authorization: Basic " + enc.substr(0, at) + "[REDACTED]" +
                               enc.substr(at + core.size()) + " end";
          EXPECT_EQ(r->redact(line), expect) << "offset " << offset << " url " << url;
        }
      }
    }
  }
}

TEST(RedactorForms, UrlEncodedEveryStyle) {
  auto r = make({{"PW", "p@ss w/rd:x&y"}});
  for (const char* form : {"p%40ss%20w%2Frd%3Ax%26y",   // strict, upper
                           "p%40ss%20w%2frd%3ax%26y",   // strict, lower
                           "p%40ss+w%2Frd%3Ax%26y",     // form encoding
                           "p%40ss+w%2frd%3ax%26y",
                           "p%40ss%20w/rd%3Ax%26y",     // Python quote(): '/' kept
                           "p%40ss+w/rd%3ax%26y"}) {
    EXPECT_EQ(r->redact(std::string("GET /cb?pw=") + form + "&n=1"), "GET /cb?pw=[REDACTED]&n=1")
        << form;
  }
  auto js = make({{"T", "it's (a) *secret*!"}});
  EXPECT_EQ(js->redact("q=it's%20(a)%20*secret*!&"), "q=[REDACTED]&");  // encodeURIComponent
  EXPECT_EQ(js->redact("q=it%27s%20%28a%29%20%2Asecret%2A%21&"), "q=[REDACTED]&");
}

TEST(RedactorForms, JsonEscapedEveryStyle) {
  std::string value = "pa\"ss\\wo/rd\n\ttab <é> & \x01 \xf0\x9f\x94\x91";
  auto r = make({{"V", value}});
  nlohmann::json j = value;
  std::string plain = j.dump();                   // minimal escaping, UTF-8 kept
  std::string ascii = j.dump(-1, ' ', true);      // \u00e9, surrogate pair for the emoji
  ASSERT_NE(plain, ascii);
  for (const std::string& quoted : {plain, ascii}) {
    std::string body = quoted.substr(1, quoted.size() - 2);
    EXPECT_EQ(r->redact("{\"password\":\"" + body + "\"}"), "{\"password\":\"[REDACTED]\"}")
        << body;
  }
  // Go's HTML-safe encoder and "\/" escaping.
  auto go = make({{"V", "a<b>&c/d"}});
  EXPECT_EQ(go->redact(R"({"v":"a\u003cb\u003e\u0026c/d"})"), R"({"v":"[REDACTED]"})");
  EXPECT_EQ(go->redact(R"({"v":"a<b>&c\/d"})"), R"({"v":"[REDACTED]"})");
  EXPECT_EQ(go->redact(R"({"v":"a\u003Cb\u003E\u0026c/d"})"), R"({"v":"[REDACTED]"})");
}

TEST(RedactorForms, EachLineOfAMultiLineSecret) {
  std::string pem = "-----BEGIN KEY-----\r\nMIIEvQIBADANBgkq\r\nab\r\n-----END KEY-----";
  auto r = make({{"KEY", pem}});
  EXPECT_EQ(r->redact("key: " + pem + "\n"), "key: [REDACTED]\n");
  EXPECT_EQ(r->redact("line 2 was MIIEvQIBADANBgkq alone"), "line 2 was [REDACTED] alone");
  EXPECT_EQ(r->redact("-----END KEY-----"), "[REDACTED]");
  EXPECT_EQ(r->redact("ab"), "ab");  // lines under 4 bytes are not masked on their own
  nlohmann::json j = pem;
  EXPECT_EQ(r->redact(j.dump()), "\"[REDACTED]\"");
}

TEST(Redactor, OverlappingAndAdjacentSecretsMergeIntoOneMask) {
  auto r = make({{"A", "abcdef"}, {"B", "defghi"}, {"C", "1111"}, {"D", "2222"}});
  EXPECT_EQ(r->redact("<abcdefghi>"), "<[REDACTED]>");
  EXPECT_EQ(r->redact("<11112222>"), "<[REDACTED]>");
  EXPECT_EQ(r->redact("<1111 2222>"), "<[REDACTED] [REDACTED]>");
  EXPECT_EQ(r->redact("<111111>"), "<[REDACTED]>");  // overlapping repeats of one secret
  EXPECT_EQ(r->redact("abcdefabcdef"), "[REDACTED]");
}

TEST(RedactorStream, SecretSplitAcrossTwoWritesAtEverySplitPoint) {
  auto r = make({{"A", "correct-horse-battery"}, {"B", "k3y!"}, {"C", "p@ss w/rd"}});
  std::string text = "a=correct-horse-battery b=k3y! c=p%40ss%20w%2Frd d=" +
                     b64("xcorrect-horse-battery", false) + " end";
  std::string want = r->redact(text);
  EXPECT_EQ(want.find("correct"), std::string::npos);
  for (size_t i = 0; i <= text.size(); ++i) {
    std::string_view t = text;
    ASSERT_EQ(stream_all(r, {t.substr(0, i), t.substr(i)}), want) << "split at " << i;
  }
}

TEST(RedactorStream, SecretSplitAcrossThreeWritesAtEveryPairOfSplitPoints) {
  auto r = make({{"A", "s3cr3t-value-of-some-length"}, {"B", "tiny"}});
  std::string text = "[s3cr3t-value-of-some-length|tiny|tinytiny]";
  std::string want = r->redact(text);
  EXPECT_EQ(want, "[[REDACTED]|[REDACTED]|[REDACTED]]");
  std::string_view t = text;
  for (size_t i = 0; i <= text.size(); ++i)
    for (size_t j = i; j <= text.size(); ++j)
      ASSERT_EQ(stream_all(r, {t.substr(0, i), t.substr(i, j - i), t.substr(j)}), want)
          << "splits at " << i << "," << j;
}

TEST(RedactorStream, ByteAtATimeAndHoldBackBound) {
  auto r = make({{"A", "0123456789abcdef"}});
  std::string text = "xx0123456789abcdef0123456789abcdefyy";
  std::vector<std::string_view> bytes;
  for (size_t i = 0; i < text.size(); ++i) bytes.push_back(std::string_view(text).substr(i, 1));
  EXPECT_EQ(stream_all(r, bytes), "xx[REDACTED]yy");

  Redactor::Stream s(r);
  std::string clean(1000, '.');
  std::string out = s.write(clean);
  EXPECT_EQ(out.size(), clean.size() - (r->longest_pattern() - 1));
  EXPECT_EQ(out + s.flush(), clean);
}

TEST(RedactorStream, FlushStartsAFreshSegment) {
  auto r = make({{"A", "abcdefgh"}});
  Redactor::Stream s(r);
  std::string out = s.write("abcd");
  out += s.flush();
  EXPECT_EQ(out, "abcd");
  out = s.write("abcdefgh!");
  out += s.flush();
  EXPECT_EQ(out, "[REDACTED]!");
}

// Random secrets over a tiny alphabet (many overlaps) and random texts built
// from pieces of their forms: fast == naive, and any chunking == one shot.
TEST(RedactorDifferential, MatchesNaiveOnRandomInputs) {
  std::mt19937 rng(12345);
  auto rnd = [&](size_t lo, size_t hi) {
    return lo + static_cast<size_t>(rng() % static_cast<unsigned>(hi - lo + 1));
  };
  for (int iter = 0; iter < 300; ++iter) {
    std::string alphabet = iter % 3 == 0 ? "ab" : iter % 3 == 1 ? "abc/+= \n\"" : "";
    SecretMap m;
    int n = static_cast<int>(rnd(1, 12));
    for (int i = 0; i < n; ++i) {
      std::string v(rnd(4, iter % 5 == 0 ? 40 : 20), '\0');
      for (char& c : v)
        c = alphabet.empty() ? static_cast<char>(rng()) : alphabet[rng() % alphabet.size()];
      m.emplace("S" + std::to_string(i), Secret(v));
    }
    auto r = Redactor::create(m);
    ASSERT_TRUE(r);
    const auto& pats = (*r)->patterns();
    std::string text;
    while (text.size() < 600) {
      if (rng() % 3 == 0) {
        const std::string& p = pats[rng() % pats.size()];
        size_t a = rnd(0, p.size() / 3), b = rnd(a, p.size());
        text += rng() % 2 ? p : p.substr(a, b - a);
      } else {
        size_t k = rnd(0, 8);
        for (size_t i = 0; i < k; ++i)
          text += alphabet.empty() ? static_cast<char>(rng()) : alphabet[rng() % alphabet.size()];
      }
    }
    std::string want = naive_redact(pats, text);
    ASSERT_EQ((*r)->redact(text), want) << "iteration " << iter;
    std::vector<std::string_view> chunks;
    for (size_t pos = 0; pos < text.size();) {
      size_t len = std::min(text.size() - pos, rnd(0, 50));
      chunks.push_back(std::string_view(text).substr(pos, len));
      pos += len;
    }
    ASSERT_EQ(stream_all(*r, chunks), want) << "iteration " << iter;
  }
}

TEST(RedactorDifferential, ManySecretsLongText) {
  std::mt19937 rng(99);
  SecretMap m;
  for (int i = 0; i < 300; ++i) {
    std::string v(16 + rng() % 49, '\0');
    for (char& c : v) c = static_cast<char>(33 + rng() % 94);
    m.emplace("K" + std::to_string(i), Secret(v));
  }
  auto r = Redactor::create(m);
  ASSERT_TRUE(r);
  const auto& pats = (*r)->patterns();
  std::string text;
  while (text.size() < 200000) {
    text += "2026-11-22T09:00:00Z info request id=" + std::to_string(rng()) + " ";
    if (rng() % 10 == 0) text += pats[rng() % pats.size()];
    text += '\n';
  }
  EXPECT_EQ((*r)->redact(text), naive_redact(pats, text));
}

TEST(RedactorLog, InstalledRedactorMasksEveryLogLine) {
  auto sink = std::make_shared<log::MemorySink>();
  log::set_sinks({sink});
  install_log_redactor(make({{"T", "tok-123456"}}));
  log::Logger("test").info("calling with tok-123456", {{"header", "Bearer tok-123456"}});
  install_log_redactor(nullptr);
  log::Logger("test").info("after: tok-123456");
  log::reset();
  auto lines = sink->lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].find("tok-123456"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("[REDACTED]"), std::string::npos);
  EXPECT_NE(lines[1].find("tok-123456"), std::string::npos);
}

}  // namespace
}  // namespace md::secrets
