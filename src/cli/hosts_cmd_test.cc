// `meshdeploy hosts import` as a user meets it: a real meshdeploy.yml and a
// terraform output file in a temp dir, driven through md::cli::run.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "cli/cli.h"
#include "cli/test_util.h"
#include "core/fs.h"

namespace md::cli {
namespace {

namespace sfs = std::filesystem;
using testing::Ran;
using testing::run_cli;

const char* kConfig = R"(# MeshHook
app: meshhook
defaults:
  services:
    web: {command: node build/index.js}   # the web app
environments:
  staging:
    proxy:
      listen: 0.0.0.0:80
  production:
    hosts:
      - name: old
        address: ssh://deploy@198.51.100.1
    # after the hosts
    proxy:
      listen: 0.0.0.0:80
)";

const char* kOutput = R"({"meshdeploy_hosts": {"sensitive": false, "type": "list", "value": [
  {"name": "web-1", "address": "ssh://deploy@203.0.113.10:22"},
  {"name": "web-2", "address": "ssh://deploy@203.0.113.11:22"}]}})";

class HostsImportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::make_temp_dir("hosts-cli");
    config_ = (dir_ / "meshdeploy.yml").string();
    tf_ = (dir_ / "tf.json").string();
    ASSERT_TRUE(fs::atomic_write(config_, kConfig, 0640));
    ASSERT_TRUE(fs::atomic_write(tf_, kOutput));
  }
  void TearDown() override { sfs::remove_all(dir_); }

  Ran import(std::vector<std::string> extra) {
    std::vector<std::string> args = {"hosts", "import", "-c", config_, "--terraform-output", tf_};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_cli(args);
  }
  std::string config_text() { return *fs::read_file(config_); }

  sfs::path dir_;
  std::string config_, tf_;
};

TEST_F(HostsImportTest, CheckPrintsTheDifferenceAndChangesNothing) {
  Ran r = import({"--env", "production"});
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_EQ(r.out, config_ + " environments.production.hosts differs from " + tf_ +
                       ":\n"
                       "  - old ssh://deploy@198.51.100.1\n"
                       "  + web-1 ssh://deploy@203.0.113.10:22\n"
                       "  + web-2 ssh://deploy@203.0.113.11:22\n"
                       "run `meshdeploy hosts import --write` to update it\n");
  EXPECT_EQ(config_text(), kConfig);
}

TEST_F(HostsImportTest, WriteReplacesOnlyTheListThenReportsUnchanged) {
  Ran r = import({"--env", "production", "--write"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::string want = kConfig;
  want.replace(want.find("      - name: old"),
               std::string("      - name: old\n        address: "
                           "ssh://deploy@198.51.100.1\n")
                   .size(),
               "      - name: web-1\n        address: ssh://deploy@203.0.113.10:22\n"
               "      - name: web-2\n        address: ssh://deploy@203.0.113.11:22\n");
  EXPECT_EQ(config_text(), want);
  struct stat st {};
  ASSERT_EQ(::stat(config_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);  // the file keeps its mode

  Ran again = import({"--env", "production", "--write"});
  EXPECT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(again.out,
            config_ + " environments.production.hosts: matches " + tf_ + " (2 hosts); unchanged\n");
  EXPECT_EQ(config_text(), want);
  EXPECT_EQ(import({"--env", "production"}).code, 0);  // --check now passes
}

// WHY: the check once compared the file's hosts without their host_key, so
// an output with keys differed from the file forever and --write rewrote it.
TEST_F(HostsImportTest, HostKeysWrittenThenCheckPasses) {
  const std::string key =
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBy0ExPW3fzMOFy1OQ3SCVeYPPhHNFVRVwMg3Bv0ISJ8";
  ASSERT_TRUE(
      fs::atomic_write(tf_, R"({"meshdeploy_hosts": {"sensitive": false, "type": "list", "value": [
  {"name": "web-1", "address": "ssh://deploy@203.0.113.10:22", "host_key": ")" +
                                key + R"("}]}})"));
  Ran w = import({"--env", "production", "--write"});
  ASSERT_EQ(w.code, 0) << w.err;
  EXPECT_NE(config_text().find(key), std::string::npos) << config_text();
  const std::string written = config_text();
  Ran check = import({"--env", "production"});
  EXPECT_EQ(check.code, 0) << check.out << check.err;
  EXPECT_EQ(check.out, config_ + " environments.production.hosts: matches " + tf_ + " (1 host)\n");
  Ran again = import({"--env", "production", "--write"});
  EXPECT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.out.find("unchanged"), std::string::npos) << again.out;
  EXPECT_EQ(config_text(), written);
}

TEST_F(HostsImportTest, WriteAddsAListToAnEnvironmentWithoutOne) {
  Ran r = import({"--env", "staging", "--write"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::string want = kConfig;
  want.replace(want.find("  staging:\n") + 11, 0,
               "    hosts:\n      - name: web-1\n        address: ssh://deploy@203.0.113.10:22\n"
               "      - name: web-2\n        address: ssh://deploy@203.0.113.11:22\n");
  EXPECT_EQ(config_text(), want);
}

TEST_F(HostsImportTest, BadInputExits2AndLeavesTheFileAlone) {
  ASSERT_TRUE(fs::atomic_write(tf_, R"({"meshdeploy_hosts": {"value": [{"name": "x"}]}})"));
  Ran r = import({"--env", "production", "--write"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "meshdeploy: hosts import: " + tf_ +
                       ": meshdeploy_hosts.value[0]: missing 'address'\n");
  ASSERT_TRUE(fs::atomic_write(tf_, "not json"));
  r = import({"--env", "production", "--write"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find(": not JSON"), std::string::npos) << r.err;
  // An address the schema refuses (a port out of range) is caught before writing.
  ASSERT_TRUE(fs::atomic_write(
      tf_, R"({"meshdeploy_hosts": {"value": [{"name": "x", "address": "ssh://d@h:99999"}]}})"));
  r = import({"--env", "production", "--write"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("it was not changed"), std::string::npos) << r.err;
  EXPECT_EQ(config_text(), kConfig);
  // Two environments: --env is needed.
  r = import({});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--env is required"), std::string::npos) << r.err;
  EXPECT_EQ(config_text(), kConfig);
}

// `hosts setup` and `hosts check` on the same files (the ssh side: the
// e2e scenario tests/e2e/hosts_setup.sh).
class HostsSetupTest : public HostsImportTest {};

// `hosts setup` installs over ssh only: a local host is skipped, and said so.
TEST_F(HostsSetupTest, SetupSkipsALocalHost) {
  Ran r = run_cli({"hosts", "setup", "-c", config_, "--env", "staging"});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_EQ(r.out.rfind("local: skipped: address local", 0), 0u) << r.out;
}

// `hosts check` on a local host whose agent does not run: a problem, exit 1
// naming the host; --json says the same.
TEST_F(HostsSetupTest, CheckReportsALocalHostWithoutAgent) {
  Ran r = run_cli({"hosts", "check", "-c", config_, "--env", "staging"});
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("local: problem: no agent answers"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("hosts check: problems on local"), std::string::npos) << r.err;
  Ran j = run_cli({"hosts", "check", "-c", config_, "--env", "staging", "--json"});
  EXPECT_EQ(j.code, 1);
  EXPECT_NE(j.out.find("\"ok\": false"), std::string::npos) << j.out;
  EXPECT_NE(j.out.find("\"name\": \"local\""), std::string::npos) << j.out;
}

}  // namespace
}  // namespace md::cli
