#include "notify/signature.h"

#include <gtest/gtest.h>

namespace md::notify {
namespace {

using secrets::Secret;

// The test vector of the Standard Webhooks reference libraries
// (libraries/*/tests: "test_sign_function").
constexpr char kSpecKey[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
constexpr char kSpecId[] = "msg_p5jXN8AQM9LWM0D4loKWxJek";
constexpr int64_t kSpecTimestamp = 1614265330;
constexpr char kSpecBody[] = R"({"test": 2432232314})";
constexpr char kSpecSignature[] = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

Secret key(const char* whsec) {
  auto k = decode_signing_key(Secret(whsec));
  EXPECT_TRUE(k) << k.error().what();
  return k ? *k : Secret();
}

TEST(Signature, MatchesTheSpecificationTestVector) {
  EXPECT_EQ(sign(kSpecId, kSpecTimestamp, kSpecBody, {key(kSpecKey)}), kSpecSignature);
  EXPECT_TRUE(verify(kSpecId, kSpecTimestamp, kSpecBody, kSpecSignature, key(kSpecKey)));
}

TEST(Signature, AnyChangeBreaksIt) {
  Secret k = key(kSpecKey);
  EXPECT_FALSE(verify(kSpecId, kSpecTimestamp + 1, kSpecBody, kSpecSignature, k));
  EXPECT_FALSE(verify("msg_other", kSpecTimestamp, kSpecBody, kSpecSignature, k));
  EXPECT_FALSE(verify(kSpecId, kSpecTimestamp, R"({"test":2432232314})", kSpecSignature, k));
  // The reference libraries' "invalid signature" case: last character changed.
  EXPECT_FALSE(verify(kSpecId, kSpecTimestamp, kSpecBody,
                      "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=", k));
  EXPECT_FALSE(verify(kSpecId, kSpecTimestamp, kSpecBody,
                      "v1a,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", k));
  EXPECT_FALSE(verify("a.b", kSpecTimestamp, kSpecBody, kSpecSignature, k));
}

TEST(Signature, SeveralKeysWhileRotating) {
  Secret old_key = key(kSpecKey);
  Secret new_key =
      key("whsec_"
          "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
  std::string header = sign(kSpecId, kSpecTimestamp, kSpecBody, {new_key, old_key});
  auto space = header.find(' ');
  ASSERT_NE(space, std::string::npos);
  EXPECT_EQ(header.substr(space + 1), kSpecSignature);
  EXPECT_EQ(header.substr(0, 3), "v1,");
  EXPECT_TRUE(verify(kSpecId, kSpecTimestamp, kSpecBody, header, old_key));
  EXPECT_TRUE(verify(kSpecId, kSpecTimestamp, kSpecBody, header, new_key));
  EXPECT_FALSE(verify(kSpecId, kSpecTimestamp, kSpecBody, header,
                      key("whsec_"
                          "HyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4=")));
  EXPECT_EQ(sign(kSpecId, kSpecTimestamp, kSpecBody, {}), "");
}

TEST(SigningKey, RejectsMalformedKeysWithoutEchoingThem) {
  for (const char* bad : {"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_!!!!",
                          "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS", "whsec_AAAA",
                          "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw====="}) {
    auto k = decode_signing_key(Secret(bad));
    ASSERT_FALSE(k) << bad;
    EXPECT_EQ(k.error().code(), Errc::kInvalidArgument);
    if (std::string_view(bad).size() > 8) {
      EXPECT_EQ(k.error().what().find(std::string_view(bad).substr(6)), std::string::npos);
    }
  }
}

TEST(Base64, RoundTripsAndIsStrict) {
  for (std::string raw : {std::string(), std::string("f"), std::string("fo"), std::string("foo"),
                          std::string("\0\xff\x10", 3), std::string(100, '\x7f')}) {
    auto back = base64_decode(base64_encode(raw));
    ASSERT_TRUE(back);
    EXPECT_EQ(*back, raw);
  }
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_FALSE(base64_decode("Zm8"));
  EXPECT_FALSE(base64_decode("Z=m8"));
  EXPECT_FALSE(base64_decode("Zm-8"));
}

}  // namespace
}  // namespace md::notify
