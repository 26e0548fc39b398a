#include "deploy/artifact.h"

#include <gtest/gtest.h>

namespace md::deploy {
namespace {

TEST(Artifact, StemAndVersionRoundTrip) {
  config::Artifact a;
  EXPECT_EQ(artifact_stem(a, "meshhook", "v2"), "meshhook-v2");
  EXPECT_EQ(*version_from_artifact_name(a, "meshhook", "meshhook-v2.tar.gz"), "v2");
  EXPECT_EQ(*version_from_artifact_name(a, "meshhook", "meshhook-1.2.3-rc.1.tar.zst"),
            "1.2.3-rc.1");
  a.name_template = "release_{version}_{app}";
  EXPECT_EQ(*version_from_artifact_name(a, "web", "release_abc123_web.tgz"), "abc123");
  auto bad = version_from_artifact_name(a, "web", "other-v1.tar.gz");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), Errc::kInvalidArgument);
  EXPECT_FALSE(version_from_artifact_name(a, "web", "release__web.tar.gz"));  // empty version
}

TEST(Artifact, Sha256FileAsSha256sumWritesIt) {
  const std::string hex(64, 'a');
  EXPECT_EQ(*parse_sha256_file(hex + "  meshhook-v1.tar.gz\n"), hex);
  EXPECT_EQ(*parse_sha256_file("  " + std::string(64, 'F') + "\n"), std::string(64, 'f'));
  EXPECT_FALSE(parse_sha256_file(""));
  EXPECT_FALSE(parse_sha256_file(std::string(63, 'a')));
  EXPECT_FALSE(parse_sha256_file(std::string(64, 'g')));
}

}  // namespace
}  // namespace md::deploy
