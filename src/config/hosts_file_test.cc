// `hosts import`'s pure parts: reading terraform output, the difference with
// the file, and rewriting one environment's hosts: list in place.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "config/config.h"
#include "config/inventory.h"
#include "config/test_util.h"

namespace md::config {
namespace {

const std::string kOutput = R"({
  "meshdeploy_hosts": {"sensitive": false, "type": ["tuple", []], "value": [
    {"name": "web-1", "address": "ssh://deploy@203.0.113.10:22", "host_key": "ssh-ed25519 AAAA1"},
    {"name": "web-2", "address": "ssh://deploy@203.0.113.11:22", "host_key": null}
  ]},
  "other": {"sensitive": true, "type": "string", "value": "x"}
})";

std::string parse_error(const std::string& json) {
  auto r = parse_terraform_hosts(json, "tf.json");
  EXPECT_FALSE(r.has_value());
  if (r) return "";
  EXPECT_EQ(r.error().code(), Errc::kInvalidArgument);
  return r.error().what();
}

TEST(TerraformHosts, ReadsTheModulesOutput) {
  auto r = parse_terraform_hosts(kOutput, "tf.json");
  ASSERT_TRUE(r) << r.error().what();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0], (InventoryHost{"web-1", "ssh://deploy@203.0.113.10:22", "ssh-ed25519 AAAA1"}));
  EXPECT_EQ((*r)[1], (InventoryHost{"web-2", "ssh://deploy@203.0.113.11:22", ""}));
}

TEST(TerraformHosts, ReadsTheRecordedExampleOutput) {
  std::ifstream in(std::string(MD_SOURCE_DIR) + "/examples/meshhook/terraform/output.example.json");
  ASSERT_TRUE(in);
  std::stringstream text;
  text << in.rdbuf();
  auto r = parse_terraform_hosts(text.str(), "output.example.json");
  ASSERT_TRUE(r) << r.error().what();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[1].name, "meshhook-production-2");
  EXPECT_EQ((*r)[1].address.rfind("ssh://deploy@", 0), 0u);
  EXPECT_EQ((*r)[1].host_key.rfind("ssh-ed25519 ", 0), 0u);
}

TEST(TerraformHosts, BadInputSaysWhere) {
  EXPECT_EQ(parse_error("{not json"),
            "tf.json: not JSON (expected the output of `terraform output -json`)");
  EXPECT_EQ(parse_error("[]"), "tf.json: expected a JSON object of outputs, got a list");
  EXPECT_EQ(parse_error(R"({"a": {"value": 1}})"),
            "tf.json: no output 'meshdeploy_hosts' (outputs: a); does the configuration use "
            "examples/meshhook/terraform?");
  EXPECT_EQ(parse_error(R"({"meshdeploy_hosts": [1]})"),
            "tf.json: meshdeploy_hosts: expected {\"sensitive\", \"type\", \"value\"} as "
            "`terraform output -json` writes it, got a list");
  EXPECT_EQ(parse_error(R"({"meshdeploy_hosts": {"value": {}}})"),
            "tf.json: meshdeploy_hosts.value: expected a list of hosts, got an object");
  EXPECT_EQ(parse_error(R"({"meshdeploy_hosts": {"value": []}})"),
            "tf.json: meshdeploy_hosts.value: the list is empty: an environment needs at least "
            "one host");
  EXPECT_EQ(parse_error(R"({"meshdeploy_hosts": {"value": [{"name": "a", "address": 7}]}})"),
            "tf.json: meshdeploy_hosts.value[0].address: expected a string, got a number");
  EXPECT_EQ(parse_error(R"({"meshdeploy_hosts": {"value": [{"address": "ssh://a"}]}})"),
            "tf.json: meshdeploy_hosts.value[0]: missing 'name'");
  EXPECT_EQ(
      parse_error(R"({"meshdeploy_hosts": {"value": [{"name": "a b", "address": "ssh://a"}]}})"),
      "tf.json: meshdeploy_hosts.value[0].name: 'a b' is not a host name (letters, digits, "
      "'.', '_', '-')");
  EXPECT_EQ(
      parse_error(R"({"meshdeploy_hosts": {"value": [{"name": "a", "address": "10.0.0.1"}]}})"),
      "tf.json: meshdeploy_hosts.value[0].address: expected ssh://user@host[:port], got "
      "'10.0.0.1'");
  EXPECT_EQ(parse_error(R"({"meshdeploy_hosts": {"value": [{"name": "a", "address": "ssh://a",
            "port": "22"}]}})"),
            "tf.json: meshdeploy_hosts.value[0]: unknown key 'port' (expected name, address, "
            "host_key)");
  EXPECT_EQ(parse_error(R"({"meshdeploy_hosts": {"value": [{"name": "a", "address": "ssh://a"},
            {"name": "a", "address": "ssh://b"}]}})"),
            "tf.json: meshdeploy_hosts.value[1].name: two hosts are named 'a'");
  EXPECT_EQ(
      parse_error(R"({"meshdeploy_hosts": {"value": [{"name": "a", "address": "ssh://a\nb"}]}})"),
      "tf.json: meshdeploy_hosts.value[0].address: contains a control character");
}

TEST(DiffHosts, NamesEveryDifference) {
  std::vector<InventoryHost> file = {{"a", "ssh://x@1", ""}, {"b", "ssh://x@2", "k1"}};
  EXPECT_TRUE(diff_hosts(file, file).empty());
  std::vector<InventoryHost> inv = {{"b", "ssh://x@3", "k2"}, {"c", "ssh://x@4", ""}};
  EXPECT_EQ(diff_hosts(file, inv), (std::vector<std::string>{
                                       "- a ssh://x@1",
                                       "~ b: address ssh://x@2 -> ssh://x@3",
                                       "~ b: host_key k1 -> k2",
                                       "+ c ssh://x@4",
                                   }));
  std::vector<InventoryHost> swapped = {file[1], file[0]};
  EXPECT_EQ(diff_hosts(file, swapped), std::vector<std::string>{"~ order: a, b -> b, a"});
}

const std::string kFile = R"(# top comment
app: shop
defaults:
  services:
    web:
      command: node server.js   # keep me
environments:
  staging:
    # staging's hosts, by hand
    hosts:
      - name: old-1
        address: ssh://deploy@198.51.100.1   # inline

      # a comment inside the list
      - { name: old-2, address: "ssh://deploy@198.51.100.2" }
    # comment after the list
    proxy:
      listen: 0.0.0.0:80
  production:
    # first key's comment
    proxy:
      listen: 0.0.0.0:80
)";

const std::vector<InventoryHost> kNew = {
    {"web-1", "ssh://deploy@203.0.113.10:22", "ssh-ed25519 AAAA1"},
    {"web-2", "ssh://deploy@[2001:db8::2]:22", ""},
};

TEST(ReplaceHosts, RewritesOnlyTheList) {
  auto r = replace_hosts(kFile, "meshdeploy.yml", "staging", kNew);
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(*r, R"(# top comment
app: shop
defaults:
  services:
    web:
      command: node server.js   # keep me
environments:
  staging:
    # staging's hosts, by hand
    hosts:
      - name: web-1
        address: ssh://deploy@203.0.113.10:22
        host_key: "ssh-ed25519 AAAA1"
      - name: web-2
        address: "ssh://deploy@[2001:db8::2]:22"
    # comment after the list
    proxy:
      listen: 0.0.0.0:80
  production:
    # first key's comment
    proxy:
      listen: 0.0.0.0:80
)");
  // The result loads, and says what was asked.
  auto keyless = replace_hosts(kFile, "meshdeploy.yml", "staging", {kNew.data() + 1, 1});
  ASSERT_TRUE(keyless) << keyless.error().what();
  Config c = testing::load_ok(*keyless);
  auto env = resolve(c, "staging");
  ASSERT_TRUE(env);
  ASSERT_EQ(env->hosts.size(), 1u);
  EXPECT_EQ(env->hosts[0].name, "web-2");
  EXPECT_EQ(env->hosts[0].address, "ssh://deploy@[2001:db8::2]:22");
  // Writing the same list again changes nothing.
  auto again = replace_hosts(*r, "meshdeploy.yml", "staging", kNew);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, *r);
}

TEST(ReplaceHosts, AddsTheListAboveTheFirstKeysComments) {
  auto r = replace_hosts(kFile, "meshdeploy.yml", "production", {kNew.data(), 1});
  ASSERT_TRUE(r) << r.error().what();
  std::string want = kFile;
  want.replace(want.find("    # first key's comment"), 0,
               "    hosts:\n      - name: web-1\n        address: ssh://deploy@203.0.113.10:22\n"
               "        host_key: \"ssh-ed25519 AAAA1\"\n");
  EXPECT_EQ(*r, want);
}

TEST(ReplaceHosts, QuotesWhatYamlWouldReadOtherwise) {
  std::vector<InventoryHost> odd = {{"true", "ssh://d@h:22/${X}#a", ""}};
  auto r = replace_hosts(kFile, "meshdeploy.yml", "production", odd);
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_NE(r->find("- name: \"true\"\n"), std::string::npos);
  EXPECT_NE(r->find("address: \"ssh://d@h:22/$${X}#a\"\n"), std::string::npos);
  // Interpolation gives the value back.
  LoadResult loaded = load_text(*r, "m.yml", testing::fixed_env({}));
  ASSERT_FALSE(loaded.diagnostics.empty());  // not a valid address, but read as written:
  EXPECT_NE(loaded.diagnostics[0].message.find("'ssh://d@h:22/${X}#a'"), std::string::npos)
      << loaded.diagnostics[0].format();
}

TEST(ReplaceHosts, KeepsCrlfAndAMissingFinalLineEnd) {
  std::string crlf =
      "app: a\r\nenvironments:\r\n  prod:\r\n    hosts:\r\n      - name: x\r\n"
      "        address: ssh://d@x";
  auto r = replace_hosts(crlf, "m.yml", "prod", {kNew.data(), 1});
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(*r,
            "app: a\r\nenvironments:\r\n  prod:\r\n    hosts:\r\n      - name: web-1\r\n"
            "        address: ssh://deploy@203.0.113.10:22\r\n"
            "        host_key: \"ssh-ed25519 AAAA1\"");
}

TEST(ReplaceHosts, RefusesWhatItCannotEditSafely) {
  auto refused = [](const std::string& text, const std::string& env = "prod") {
    auto r = replace_hosts(text, "m.yml", env, {kNew.data(), 1});
    EXPECT_FALSE(r.has_value()) << *r;
    return r ? Errc::kInternal : r.error().code();
  };
  // Flow-style environment.
  EXPECT_EQ(refused("environments:\n  prod: {proxy: {listen: 0.0.0.0:80}}\n"),
            Errc::kFailedPrecondition);
  // The list is an anchor another environment uses: the edit would change it.
  EXPECT_EQ(refused("environments:\n  prod:\n    hosts: &h\n      - name: a\n"
                    "        address: ssh://d@a\n  staging:\n    hosts: *h\n"),
            Errc::kFailedPrecondition);
  // A quoted key.
  EXPECT_EQ(refused("environments:\n  prod:\n    \"hosts\":\n      - name: a\n"
                    "        address: ssh://d@a\n"),
            Errc::kFailedPrecondition);
  EXPECT_EQ(refused("environments:\n  prod:\n    proxy: {}\n", "nope"), Errc::kNotFound);
  EXPECT_EQ(refused("environments: [\n"), Errc::kInvalidArgument);
}

}  // namespace
}  // namespace md::config
