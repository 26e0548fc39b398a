#include "deploy/host_setup.h"

#include <gtest/gtest.h>

namespace md::deploy {
namespace {

using A = SetupAction;
using Plan = std::vector<SetupAction>;

SetupTarget target() {
  SetupTarget t;
  t.host = "web-1";
  t.binary = "/usr/local/bin/meshdeploy";
  t.unit_dir = "/etc/systemd/system";
  t.unit = "meshdeploy-agent";
  t.root = "/var/lib/meshdeploy";
  t.listen = "0.0.0.0:8080";
  t.user = "deploy";
  t.binary_sha256 = "abcdef0123456789abcdef";
  t.version = "1.2.3";
  return t;
}

// What a host that setup already did looks like.
SetupObserved done_host(const SetupTarget& t, bool systemd) {
  SetupObserved o;
  o.user = t.user;
  o.home = "/home/deploy";
  o.binary_sha256 = t.binary_sha256;
  o.unit_sha256 = "unit-sha";
  o.root_exists = true;
  o.root_owner = t.user;
  o.root_mode = 0700;
  o.systemd = systemd;
  o.unit_enabled = systemd;
  o.agent_version = t.version;
  return o;
}

TEST(HostSetupUnit, RunsTheAgentWithTheHostsRootAndListener) {
  EXPECT_EQ(agent_unit_text(target()),
            "# Written by `meshdeploy hosts setup` (host web-1); the next setup rewrites it.\n"
            "# Docs: docs/hosts.md, docs/installation.md.\n"
            "[Unit]\n"
            "Description=meshdeploy host agent (/var/lib/meshdeploy)\n"
            "After=network-online.target\n"
            "Wants=network-online.target\n"
            "\n"
            "[Service]\n"
            "Type=notify\n"
            "NotifyAccess=main\n"
            "User=deploy\n"
            "ExecStart=/usr/local/bin/meshdeploy agent run --root /var/lib/meshdeploy --listen "
            "0.0.0.0:8080\n"
            "ExecReload=/usr/local/bin/meshdeploy agent restart --root /var/lib/meshdeploy\n"
            "Restart=on-failure\n"
            "RestartSec=1s\n"
            "WatchdogSec=30s\n"
            "TimeoutStopSec=90s\n"
            "# Release processes outlive the agent (a restarted agent re-adopts them).\n"
            "KillMode=process\n"
            "Delegate=yes\n"
            "LimitNOFILE=65536\n"
            "\n"
            "[Install]\n"
            "WantedBy=multi-user.target\n");
}

TEST(HostSetupUnit, QuotesBlanksAndEscapesSpecifiers) {
  SetupTarget t = target();
  t.root = "/srv/my apps/50%";
  t.binary = "/opt/$md/meshdeploy";
  const std::string text = agent_unit_text(t);
  EXPECT_NE(text.find("ExecStart=/opt/$$md/meshdeploy agent run --root \"/srv/my apps/50%%\" "
                      "--listen 0.0.0.0:8080\n"),
            std::string::npos)
      << text;
}

TEST(HostSetupUnit, APrivilegedPortGetsTheBindCapabilityUnlessRoot) {
  SetupTarget t = target();
  t.listen = "0.0.0.0:80";
  EXPECT_NE(agent_unit_text(t).find("AmbientCapabilities=CAP_NET_BIND_SERVICE\n"),
            std::string::npos);
  t.user = "root";
  EXPECT_EQ(agent_unit_text(t).find("AmbientCapabilities"), std::string::npos);
}

TEST(HostSetupProbe, ReadsEveryKey) {
  auto o = parse_probe(
      "user=deploy\nhome=/home/deploy\nbinary=aa11\nunit=bb22\nroot=deploy 750\nsystemd=1\n"
      "enabled=enabled\n");
  ASSERT_TRUE(o) << o.error().what();
  EXPECT_EQ(o->user, "deploy");
  EXPECT_EQ(o->home, "/home/deploy");
  EXPECT_EQ(o->binary_sha256, "aa11");
  EXPECT_EQ(o->unit_sha256, "bb22");
  EXPECT_TRUE(o->root_exists);
  EXPECT_EQ(o->root_owner, "deploy");
  EXPECT_EQ(o->root_mode, 0750u);
  EXPECT_TRUE(o->systemd);
  EXPECT_TRUE(o->unit_enabled);
}

TEST(HostSetupProbe, AFreshHostHasNothing) {
  auto o = parse_probe("user=root\nhome=/root\n");
  ASSERT_TRUE(o);
  EXPECT_EQ(o->binary_sha256, "");
  EXPECT_FALSE(o->root_exists);
  EXPECT_FALSE(o->systemd);
  EXPECT_FALSE(o->unit_enabled);
  EXPECT_FALSE(parse_probe("user=root\nhome=/root\nsystemd=1\nenabled=disabled\n")->unit_enabled);
}

TEST(HostSetupProbe, RefusesWhatItDoesNotKnow) {
  EXPECT_FALSE(parse_probe("home=/root\n"));  // no user
  EXPECT_FALSE(parse_probe("user=a\nhome=/\nnoise\n"));
  EXPECT_FALSE(parse_probe("user=a\nhome=/\nroot=a 9z\n"));
  EXPECT_FALSE(parse_probe("user=a\nhome=/\nwhat=1\n"));
}

TEST(HostSetupProbe, ScriptQuotesTheHostsPaths) {
  config::Host h;
  h.binary = "/opt/it's/meshdeploy";
  const std::string s = probe_script(h);
  EXPECT_NE(s.find("b='/opt/it'\\''s/meshdeploy';"), std::string::npos) << s;
  EXPECT_NE(s.find("u='/etc/systemd/system/meshdeploy-agent.service';"), std::string::npos) << s;
}

TEST(HostSetupPlan, ADoneHostIsUnchanged) {
  const SetupTarget t = target();
  EXPECT_EQ(plan_setup(t, done_host(t, false), "unit-sha"), Plan{});
  EXPECT_EQ(plan_setup(t, done_host(t, true), "unit-sha"), Plan{});
}

TEST(HostSetupPlan, AFreshHostWithoutSystemdGetsADetachedAgent) {
  const SetupTarget t = target();
  SetupObserved o;
  o.user = "deploy";
  EXPECT_EQ(plan_setup(t, o, "unit-sha"),
            (Plan{A::kInstallBinary, A::kWriteUnit, A::kCreateRoot, A::kStartDetached}));
}

TEST(HostSetupPlan, AFreshHostWithSystemdEnablesTheUnit) {
  const SetupTarget t = target();
  SetupObserved o;
  o.user = "deploy";
  o.systemd = true;
  EXPECT_EQ(plan_setup(t, o, "unit-sha"), (Plan{A::kInstallBinary, A::kWriteUnit, A::kCreateRoot,
                                                A::kDaemonReload, A::kEnableStart}));
}

TEST(HostSetupPlan, ANewBinaryRestartsTheAgent) {
  const SetupTarget t = target();
  SetupObserved o = done_host(t, true);
  o.binary_sha256 = "old";
  o.agent_version = "1.2.2";
  EXPECT_EQ(plan_setup(t, o, "unit-sha"), (Plan{A::kInstallBinary, A::kRestartUnit}));
  o.systemd = false;
  EXPECT_EQ(plan_setup(t, o, "unit-sha"), (Plan{A::kInstallBinary, A::kRestartDetached}));
}

TEST(HostSetupPlan, ANewUnitReloadsAndRestartsUnderSystemdOnly) {
  const SetupTarget t = target();
  EXPECT_EQ(plan_setup(t, done_host(t, true), "new-unit-sha"),
            (Plan{A::kWriteUnit, A::kDaemonReload, A::kRestartUnit}));
  EXPECT_EQ(plan_setup(t, done_host(t, false), "new-unit-sha"), (Plan{A::kWriteUnit}));
}

TEST(HostSetupPlan, ADeadAgentIsStartedAgain) {
  const SetupTarget t = target();
  SetupObserved o = done_host(t, true);
  o.agent_version = "";
  EXPECT_EQ(plan_setup(t, o, "unit-sha"), (Plan{A::kRestartUnit}));
  o.systemd = false;
  o.unit_enabled = false;
  EXPECT_EQ(plan_setup(t, o, "unit-sha"), (Plan{A::kStartDetached}));
}

TEST(HostSetupPlan, AWrongRootModeOrOwnerIsFixed) {
  const SetupTarget t = target();
  SetupObserved o = done_host(t, false);
  o.root_mode = 0755;
  EXPECT_EQ(plan_setup(t, o, "unit-sha"), (Plan{A::kFixRoot}));
  o.root_mode = 0700;
  o.root_owner = "root";
  EXPECT_EQ(plan_setup(t, o, "unit-sha"), (Plan{A::kFixRoot}));
}

TEST(HostSetupFormat, UnchangedSaysWhatItChecked) {
  SetupReport r;
  r.host = "h1";
  r.binary_sha256 = "ab12cd34ef56ab12cd34";
  r.agent_version = "1.2.3";
  EXPECT_EQ(format_setup(r, target()),
            (std::vector<std::string>{"h1: unchanged (binary 1.2.3 sha256 ab12cd34ef56…, unit, "
                                      "root, agent answering 1.2.3)"}));
}

TEST(HostSetupFormat, ChangedListsEachChangeAndSaysWhenThereIsNoSystemd) {
  SetupReport r;
  r.host = "h1";
  r.done = {A::kInstallBinary, A::kCreateRoot, A::kStartDetached};
  r.systemd = false;
  r.agent_version = "1.2.3";
  EXPECT_EQ(format_setup(r, target()),
            (std::vector<std::string>{
                "h1: changed: installed binary /usr/local/bin/meshdeploy (sha256 abcdef012345…), "
                "created root /var/lib/meshdeploy (0700, deploy), started the agent (detached); "
                "agent answering 1.2.3",
                "h1: note: systemd is not running there (no /run/systemd/system): the agent runs "
                "detached and is not restarted if it fails"}));
}

TEST(HostSetupFormat, AFailureNamesTheStepAndWhatWasDone) {
  SetupReport r;
  r.host = "h2";
  r.done = {A::kInstallBinary};
  r.step = "write unit";
  r.error = "exit 1: mkdir: cannot create directory";
  EXPECT_EQ(format_setup(r, target()),
            (std::vector<std::string>{
                "h2: failed at step 'write unit': exit 1: mkdir: cannot create directory",
                "h2: done before the failure: installed binary /usr/local/bin/meshdeploy (sha256 "
                "abcdef012345…)"}));
  SetupReport local;
  local.host = "local";
  local.skipped = true;
  EXPECT_EQ(format_setup(local, target()).size(), 1u);
  EXPECT_EQ(format_setup(local, target())[0].rfind("local: skipped: address local", 0), 0u);
}

TEST(HostCheckSkew, IsTheRemoteClockMinusTheMidpoint) {
  EXPECT_DOUBLE_EQ(clock_skew(100.0, 100.5, 101.0), 0.0);
  EXPECT_DOUBLE_EQ(clock_skew(100.0, 102.0, 101.0), 1.5);
  EXPECT_NEAR(clock_skew(100.0, 99.0, 100.2), -1.1, 1e-9);
}

TEST(HostCheckDf, ReadsTotalAndFree) {
  auto r = parse_df(
      "Filesystem     1024-blocks     Used Available Capacity Mounted on\n"
      "/dev/sda1         1000000   600000    400000      60% /\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->first, 1000000ull * 1024);
  EXPECT_EQ(r->second, 400000ull * 1024);
  EXPECT_FALSE(parse_df("df: /nope: No such file or directory\n"));
  EXPECT_FALSE(parse_df(""));
}

HostHealth fine_host() {
  HostHealth h;
  h.host = "h1";
  h.address = "ssh://deploy@10.0.0.1";
  h.reachable = true;
  h.host_key_verified = true;
  h.rtt_ms = 3;
  h.skew_s = 0.002;
  h.skew_error_s = 0.0015;
  h.agent_version = "1.2.3";
  h.binary = "/usr/local/bin/meshdeploy";
  h.binary_sha256 = "sha";
  h.disk_total_bytes = 100ull << 30;
  h.disk_free_bytes = 40ull << 30;
  return h;
}

std::vector<std::string> problems(HostHealth h) {
  judge_health(h, "1.2.3", "sha", CheckLimits{});
  return h.problems;
}
std::vector<std::string> warnings(HostHealth h) {
  judge_health(h, "1.2.3", "sha", CheckLimits{});
  return h.warnings;
}

TEST(HostCheckJudge, AFineHostHasNoProblem) {
  EXPECT_EQ(problems(fine_host()), std::vector<std::string>{});
  EXPECT_EQ(warnings(fine_host()), std::vector<std::string>{});
}

TEST(HostCheckJudge, ASkewSurelyAboveOneSecondIsAProblem) {
  HostHealth h = fine_host();
  h.skew_s = -1.2;
  h.skew_error_s = 0.1;
  EXPECT_EQ(problems(h), (std::vector<std::string>{
                             "clock off by -1.200 s (more than 1 s: leases and deploy times "
                             "compare clocks; sync it with NTP)"}));
  h.skew_error_s = 0.3;  // maybe only 0.9 s: a warning
  EXPECT_EQ(problems(h), std::vector<std::string>{});
  EXPECT_EQ(warnings(h), (std::vector<std::string>{"clock off by -1.200 s ± 0.300 s: maybe more "
                                                   "than 1 s (a slow round trip blurs it)"}));
  h.skew_s.reset();
  EXPECT_EQ(problems(h), std::vector<std::string>{"the host's clock could not be read"});
}

TEST(HostCheckJudge, AnotherVersionOrBinaryIsAProblem) {
  HostHealth h = fine_host();
  h.agent_version = "1.2.2";
  h.binary_sha256 = "other-sha256-value";
  EXPECT_EQ(problems(h),
            (std::vector<std::string>{
                "the agent runs meshdeploy 1.2.2, the controller 1.2.3 (meshdeploy hosts setup "
                "installs it)",
                "/usr/local/bin/meshdeploy differs from the controller's binary (sha256 "
                "other-sha256…, want sha; meshdeploy hosts setup installs it)"}));
  h = fine_host();
  h.agent_version = "";
  h.agent_error = "connect: refused";
  h.binary_sha256 = "";
  EXPECT_EQ(problems(h), (std::vector<std::string>{
                             "no agent answers: connect: refused (meshdeploy hosts setup starts "
                             "it)",
                             "/usr/local/bin/meshdeploy is missing (meshdeploy hosts setup "
                             "installs it)"}));
  h.binary_sha256.reset();  // not checked (a local host)
  EXPECT_EQ(problems(h).size(), 1u);
}

TEST(HostCheckJudge, UnreachableIsTheOnlyProblemThen) {
  HostHealth h;
  h.host = "h3";
  h.connect_error = "ssh to h3: connection refused";
  EXPECT_EQ(problems(h), std::vector<std::string>{"unreachable: ssh to h3: connection refused"});
}

TEST(HostCheckJudge, LowDiskIsAWarning) {
  HostHealth h = fine_host();
  h.disk_free_bytes = 5ull << 30;  // 5%
  EXPECT_EQ(problems(h), std::vector<std::string>{});
  EXPECT_EQ(warnings(h),
            std::vector<std::string>{"low disk under the agent root: 5.0 GiB free (5%)"});
  h.disk_total_bytes = 2ull << 30;
  h.disk_free_bytes = 512ull << 20;  // 25%, but under 1 GiB
  EXPECT_EQ(warnings(h),
            std::vector<std::string>{"low disk under the agent root: 512.0 MiB free (25%)"});
}

TEST(HostCheckFormat, ATableThenEachProblem) {
  HostHealth a = fine_host();
  HostHealth b = fine_host();
  b.host = "h2";
  b.agent_version = "";
  b.agent_error = "refused";
  HostHealth c;
  c.host = "h3";
  c.address = "ssh://10.0.0.3";
  c.connect_error = "timed out";
  std::vector<HostHealth> all{a, b, c};
  for (HostHealth& h : all) judge_health(h, "1.2.3", "sha", CheckLimits{});
  EXPECT_EQ(format_check_table(all, "1.2.3"),
            "HOST  REACHABLE       HOST KEY  AGENT  CLOCK SKEW       DISK FREE       STATUS\n"
            "h1    yes (rtt 3 ms)  verified  1.2.3  +0.002 s ±0.002  40.0 GiB (40%)  ok\n"
            "h2    yes (rtt 3 ms)  verified  -      +0.002 s ±0.002  40.0 GiB (40%)  PROBLEM\n"
            "h3    no              -         -      -                -               PROBLEM\n"
            "h2: problem: no agent answers: refused (meshdeploy hosts setup starts it)\n"
            "h3: problem: unreachable: timed out\n"
            "2 of 3 host(s) have problems (controller 1.2.3)\n");
  std::vector<HostHealth> fine{all[0]};
  EXPECT_EQ(
      format_check_table(fine, "1.2.3").substr(format_check_table(fine, "1.2.3").rfind("all")),
      "all 1 host(s) fine (controller 1.2.3)\n");
}

TEST(HostCheckFormat, JsonHasBytesPercentAndTheVerdict) {
  HostHealth a = fine_host();
  judge_health(a, "1.2.3", "sha", CheckLimits{});
  nlohmann::json j = check_json({a}, "1.2.3");
  EXPECT_EQ(j["ok"], true);
  EXPECT_EQ(j["version"], "1.2.3");
  EXPECT_EQ(j["hosts"][0]["name"], "h1");
  EXPECT_EQ(j["hosts"][0]["disk_free_bytes"], 40ull << 30);
  EXPECT_EQ(j["hosts"][0]["disk_free_percent"], 40.0);
  EXPECT_EQ(j["hosts"][0]["skew_s"], 0.002);
  EXPECT_EQ(j["hosts"][0]["problems"], nlohmann::json::array());
  HostHealth b;
  b.host = "h2";
  judge_health(b, "1.2.3", "sha", CheckLimits{});
  j = check_json({a, b}, "1.2.3");
  EXPECT_EQ(j["ok"], false);
  EXPECT_TRUE(j["hosts"][1]["skew_s"].is_null());
  EXPECT_EQ(j["hosts"][1]["ok"], false);
}

// target(), logged in as root (sudo false) or as the deploy user with sudo.
SetupTarget script_target(bool sudo) {
  SetupTarget t = target();
  t.user = sudo ? "deploy" : "root";
  t.home = sudo ? "/home/deploy" : "/home/admin";
  t.sudo = sudo;
  return t;
}

TEST(HostSetupScript, AsRootEachActionRunsAsItIs) {
  const SetupTarget t = script_target(false);
  EXPECT_EQ(setup_script(SetupAction::kDaemonReload, t), "systemctl daemon-reload");
  EXPECT_EQ(setup_script(SetupAction::kCreateRoot, t),
            "mkdir -p '/var/lib/meshdeploy' && chmod 700 '/var/lib/meshdeploy'");
  EXPECT_EQ(upload_path(t), "/home/admin/.meshdeploy-upload-web-1");
  EXPECT_EQ(
      setup_script(SetupAction::kInstallBinary, t),
      "set -e; mkdir -p \"$(dirname '/usr/local/bin/meshdeploy')\"; cp "
      "'/home/admin/.meshdeploy-upload-web-1' '/usr/local/bin/meshdeploy'.meshdeploy-tmp; chmod "
      "0755 '/usr/local/bin/meshdeploy'.meshdeploy-tmp; mv -f "
      "'/usr/local/bin/meshdeploy'.meshdeploy-tmp '/usr/local/bin/meshdeploy'; rm -f "
      "'/home/admin/.meshdeploy-upload-web-1'");
}

// The Terraform example's deploy user: not root, passwordless sudo.
TEST(HostSetupScript, AnotherUserGoesThroughSudoForWhatNeedsRootOnly) {
  const SetupTarget t = script_target(true);
  EXPECT_EQ(setup_script(SetupAction::kDaemonReload, t), "sudo -n sh -c 'systemctl daemon-reload'");
  EXPECT_EQ(setup_script(SetupAction::kEnableStart, t),
            "sudo -n sh -c 'systemctl enable --now '\\''meshdeploy-agent.service'\\'''");
  // The root is made by root and handed to the user who runs the agent.
  EXPECT_NE(setup_script(SetupAction::kCreateRoot, t).find("chown '\\''deploy'\\''"),
            std::string::npos)
      << setup_script(SetupAction::kCreateRoot, t);
  EXPECT_EQ(setup_script(SetupAction::kInstallBinary, t).rfind("sudo -n sh -c ", 0), 0u);
  EXPECT_EQ(upload_path(t), "/home/deploy/.meshdeploy-upload-web-1");
  EXPECT_EQ(setup_script(SetupAction::kWriteUnit, t).rfind("sudo -n sh -c ", 0), 0u);
  // The agent itself runs as the login user, never through sudo.
  EXPECT_EQ(setup_script(SetupAction::kStartDetached, t).find("sudo"), std::string::npos);
  EXPECT_EQ(setup_script(SetupAction::kRestartDetached, t).find("sudo"), std::string::npos);
}

}  // namespace
}  // namespace md::deploy
