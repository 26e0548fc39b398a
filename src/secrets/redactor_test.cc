// The redactor: every derived form, overlaps, adjacency, streaming at every
// split point, and a randomized differential test against the naive one.
#include <gtest/gtest.h>
#include <sodium.h>

#include <nlohmann/json.hpp>
#include <random>

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
        EXPECT_TRUE(after_varies || n % 3 == static_cast<size_t>((3 - offset) % 3))
            << "n=" << n << " offset=" << offset;
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
          std::string pre = std::string("user:").substr(0, static_cast<size_t>(offset) + 3);
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
  for (const char* form : {"p%40ss%20w%2Frd%3Ax%26y",  // strict, upper
                           "p%40ss%20w%2frd%3ax%26y",  // strict, lower
                           "p%40ss+w%2Frd%3Ax%26y",    // form encoding
                           "p%40ss+w%2frd%3ax%26y",
                           "p%40ss%20w/rd%3Ax%26y",  // Python quote(): '/' kept
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
  std::string plain = j.dump();               // minimal escaping, UTF-8 kept
  std::string ascii = j.dump(-1, ' ', true);  // \u00e9, surrogate pair for the emoji
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

// GitHub's runner masks these encodings of a value (actions/runner,
// ValueEncoders): each one is masked here too.
TEST(RedactorForms, GitHubRunnerEncoderList) {
  std::string value = "\"alpha beta and more&+gamma<delta>'x and more\"";
  auto r = make({{"V", value}});
  nlohmann::json j = value;
  std::string json = j.dump();
  json = json.substr(1, json.size() - 2);
  for (const std::string& form : {
           b64(value, false), b64("x" + value, false), b64("xy" + value, true),  // Base64 x3
           std::string(R"(\"alpha beta and more&+gamma<delta>'x and more\")"),   // CommandLineArg
           std::string("\"alpha beta and more&+gamma<delta>''x and more\""),     // ExpressionString
           json,                                                                 // JsonString
           std::string("%22alpha%20beta%20and%20more%26%2Bgamma%3Cdelta%3E%27x%20and%20more%22"),
           std::string("&quot;alpha beta and more&amp;+gamma&lt;delta&gt;&apos;x and more&quot;"),
           std::string("alpha beta and more&+gamma<delta>'x and more"),  // TrimDoubleQuotes
           std::string("\"alpha beta and more&+"),                       // PowerShellPre&
           std::string("amma<delta>'x and more\""),                      // PowerShellPost&
       }) {
    std::string out = r->redact("[[" + form + "]]");
    EXPECT_NE(out.find("[REDACTED]"), std::string::npos) << form;
    EXPECT_EQ(out.find("gamma<delta"), std::string::npos) << form;
    EXPECT_EQ(out.find("amma"), std::string::npos) << form << " -> " << out;
    EXPECT_EQ(out.find("beta and"), std::string::npos) << form << " -> " << out;
  }
}

TEST(RedactorForms, PercentEncodingOfAnyMixOfBytes) {
  auto r = make({{"T", "AKIAexample-Token_42"}});
  EXPECT_EQ(r->redact("k=%41KIAexample-Token_42&"), "k=[REDACTED]&");
  EXPECT_EQ(r->redact("k=%41%4b%49%41example%2DToken%5f42&"), "k=[REDACTED]&");
  std::mt19937 rng(5);
  std::string v = "AKIAexample-Token_42";
  for (int trial = 0; trial < 200; ++trial) {
    std::string enc;
    for (char c : v) {
      if (rng() % 2) {
        char buf[4];
        std::snprintf(buf, sizeof buf, rng() % 2 ? "%%%02X" : "%%%02x",
                      static_cast<unsigned char>(c));
        enc += buf;
      } else {
        enc += c;
      }
    }
    ASSERT_EQ(r->redact("GET /x?t=" + enc + " HTTP/1.1"), "GET /x?t=[REDACTED] HTTP/1.1") << enc;
  }
  // Percent-encoding twice (a URL inside a URL), and inside JSON.
  EXPECT_EQ(r->redact("u=%2541KIAexample-Token_42"), "u=[REDACTED]");
  EXPECT_EQ(r->redact(R"({"u":"\u0041KIAexample%2DToken_42"})"), R"({"u":"[REDACTED]"})");
}

TEST(RedactorForms, JsonHtmlSafeAndJsonInJson) {
  auto r = make({{"V", "p<a>s&s\"w'o\\rd"}});
  // Escapes only < > & (and what JSON must): Go, Rails, serialize-javascript.
  EXPECT_EQ(r->redact(R"({"v":"p\u003ca\u003es\u0026s\"w'o\\rd"})"), R"({"v":"[REDACTED]"})");
  // PHP's JSON_HEX_QUOT | JSON_HEX_APOS | JSON_HEX_TAG | JSON_HEX_AMP.
  EXPECT_EQ(r->redact(R"({"v":"p\u003Ca\u003Es\u0026s\u0022w\u0027o\\rd"})"),
            R"({"v":"[REDACTED]"})");
  // JSON inside a JSON string, as a log shipper wraps a JSON log line.
  nlohmann::json inner = {{"v", "p<a>s&s\"w'o\\rd"}};
  nlohmann::json outer = {{"log", inner.dump()}};
  std::string out = r->redact(outer.dump());
  EXPECT_EQ(out.find("w'o"), std::string::npos) << out;
  EXPECT_NE(out.find("[REDACTED]"), std::string::npos) << out;
  // ... and HTML-safe inside JSON.
  EXPECT_EQ(
      r->redact(R"({"log":"{\"v\":\"p\\u003ca\\u003es\\u0026s\\\"w'o\\\\rd\"}"})").find("w'o"),
      std::string::npos);
  // XML/HTML numeric entities, any mix.
  EXPECT_EQ(r->redact("<v>p&lt;a&#62;s&#x26;s&quot;w&#39;o\\rd</v>"), "<v>[REDACTED]</v>");
}

TEST(RedactorForms, SecretSplitByALineBreakAtEveryOffset) {
  std::string v = "correct-horse-battery";
  auto r = make({{"A", v}});
  for (size_t i = 1; i < v.size(); ++i) {
    for (const char* br : {"\n", "\r\n", "\n\n"}) {
      std::string text = "pw=" + v.substr(0, i) + br + v.substr(i) + " end\n";
      ASSERT_EQ(r->redact(text), "pw=[REDACTED] end\n") << i;
      // The same through a stream cut at every point.
      for (size_t cut = 0; cut <= text.size(); ++cut) {
        std::string_view t = text;
        ASSERT_EQ(stream_all(r, {t.substr(0, cut), t.substr(cut)}), "pw=[REDACTED] end\n")
            << i << " cut " << cut;
      }
    }
  }
  // Lines that merely end and begin with secrets keep their line break.
  EXPECT_EQ(r->redact(v + "\n" + v), "[REDACTED]\n[REDACTED]");
  // And the base64 of a value wrapped at 76 columns, as base64(1) writes it.
  std::string long_value(120, 'k');
  for (size_t i = 0; i < long_value.size(); ++i) long_value[i] = "s3cr3tV4LUE!"[i % 12];
  auto rl = make({{"L", long_value}});
  std::string enc = b64(long_value, false);
  std::string wrapped;
  for (size_t i = 0; i < enc.size(); i += 76) wrapped += enc.substr(i, 76) + "\n";
  EXPECT_EQ(rl->redact(wrapped).find(enc.substr(80, 20)), std::string::npos);
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
  std::string text =
      "a=correct-horse-battery b=k3y! c=p%40ss%20w%2Frd d=" + b64("xcorrect-horse-battery", false) +
      " end";
  std::string want = r->redact(text);
  EXPECT_EQ(want.find("correct"), std::string::npos);
  for (size_t i = 0; i <= text.size(); ++i) {
    std::string_view t = text;
    ASSERT_EQ(stream_all(r, {t.substr(0, i), t.substr(i)}), want) << "split at " << i;
  }
}

TEST(RedactorStream, EveryEncodingSplitAcrossTwoWritesAtEveryOffset) {
  std::string v = "p<a>s&s\"w'o\\rd-42";
  auto r = make({{"V", v}});
  nlohmann::json j = v;
  std::string text = "a=" + j.dump() + " b=p%3ca%3Es%26s%22w%27o%5Crd-42 c=&quot;p&lt;a&gt;s" +
                     "&amp;s&quot;w&apos;o\\rd-42 d=p<a>s&s\"w'\no\\rd-42 e=" +
                     R"(p\u003ca\u003es\u0026s\"w'o\\rd-42)" + " end";
  std::string want = r->redact(text);
  EXPECT_EQ(want, "a=\"[REDACTED]\" b=[REDACTED] c=&quot;[REDACTED] d=[REDACTED] e=[REDACTED] end");
  for (size_t i = 0; i <= text.size(); ++i) {
    std::string_view t = text;
    ASSERT_EQ(stream_all(r, {t.substr(0, i), t.substr(i)}), want) << "split at " << i;
  }
}

// A write that ends inside a secret, then a line break and more output: the
// possible prefix is held across the writes, never released at the break.
TEST(RedactorStream, WriteEndingMidSecretThenOtherOutput) {
  auto r = make({{"A", "hunter2-very-secret-token"}});
  Redactor::Stream s(r);
  std::string out = s.write("token=hunter2-very");
  EXPECT_EQ(out.find("hunter2"), std::string::npos) << out;
  out += s.write("\n");
  out += s.write("-secret-token and more\n");
  out += s.flush();
  EXPECT_EQ(out, "token=[REDACTED] and more\n");
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

  // Text that cannot begin a secret leaves at once; a possible prefix stays.
  Redactor::Stream s(r);
  std::string clean(1000, '.');
  EXPECT_EQ(s.write(clean), clean);
  EXPECT_EQ(s.write("line\n"), "line\n");
  EXPECT_EQ(s.write("x 0123"), "x ");
  EXPECT_EQ(s.flush(), "0123");
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
    std::string alphabet = iter % 4 == 0   ? "ab"
                           : iter % 4 == 1 ? "abc/+= \n\""
                           : iter % 4 == 2 ? "ab\\%&\"'<\r\n;u0"
                                           : "";
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
        std::string p = pats[rng() % pats.size()];
        if (rng() % 4 == 0) {  // percent-encode some bytes, or break the line
          std::string q;
          for (char c : p) {
            if (rng() % 5 == 0) q += rng() % 2 ? "\n" : "\r\n";
            if (rng() % 3 == 0)
              q += "%" + std::string(1, "0123456789ABCDEF"[(c >> 4) & 15]) +
                   "0123456789abcdef"[c & 15];
            else
              q += c;
          }
          p = q;
        }
        size_t a = rnd(0, p.size() / 3), b = rnd(a, p.size());
        text += rng() % 2 ? p : p.substr(a, b - a);
      } else {
        size_t k = rnd(0, 8);
        for (size_t i = 0; i < k; ++i)
          text += alphabet.empty() ? static_cast<char>(rng()) : alphabet[rng() % alphabet.size()];
      }
    }
    std::string want = naive_redact(pats, (*r)->decoded_patterns(), (*r)->decode_reach(), text);
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
  EXPECT_EQ((*r)->redact(text),
            naive_redact(pats, (*r)->decoded_patterns(), (*r)->decode_reach(), text));
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
