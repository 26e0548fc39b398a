// Each class of configuration error, with its exact file:line:col, dotted
// key, message and hint.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "config/config.h"
#include "config/test_util.h"

// WHY: the expected messages are long literals split across lines (adjacent
// literals concatenate on purpose), which this check takes for a lost comma.
// NOLINTBEGIN(bugprone-suspicious-missing-comma)
namespace md::config {
namespace {

using testing::load_errors;
using V = std::vector<std::string>;

// A valid skeleton; tests append or replace parts.
const char* kHead = R"(app: shop
defaults:
  services:
    web:
      command: node server.js
)";

TEST(Diagnostics, YamlSyntaxErrorHasItsPlace) {
  EXPECT_EQ(load_errors("app: shop\ndefaults:\n  services: [web\n"),
            V{"meshdeploy.yml:4:1: YAML syntax: end of sequence flow not found (check the "
              "indentation and "
              "quoting around this place)"});
}

TEST(Diagnostics, UnknownKeySuggestsTheClosestValidOne) {
  EXPECT_EQ(load_errors(std::string(kHead) + R"(      helth:
        path: /up
environments:
  production: {}
)"),
            V{"meshdeploy.yml:6:7: defaults.services.web.helth: unknown key 'helth' (did you mean "
              "'health'?)"});
}

TEST(Diagnostics, UnknownKeyFromKamalOrArgoGetsOurName) {
  EXPECT_EQ(
      load_errors(std::string(kHead) + R"(      healthcheck: {path: /up}
  strategy:
    kind: canary
    steps:
      - setWeight: 20
      - weight: 100
environments:
  production: {}
)"),
      (V{"meshdeploy.yml:6:7: defaults.services.web.healthcheck: unknown key 'healthcheck' (did "
         "you mean 'health'?)",
         "meshdeploy.yml:10:9: defaults.strategy.steps[0].weight: missing required key 'weight' "
         "(the percent of traffic for this step, 1 to 100)",
         "meshdeploy.yml:10:9: defaults.strategy.steps[0].setWeight: unknown key 'setWeight' (did "
         "you mean 'weight'?)"}));
}

TEST(Diagnostics, UnknownKeyWithNothingCloseListsTheValidOnes) {
  EXPECT_EQ(load_errors(std::string(kHead) + R"(  agent:
    flavour: x
environments:
  production: {}
)"),
            V{"meshdeploy.yml:7:5: defaults.agent.flavour: unknown key 'flavour' (valid keys here: "
              "root, socket)"});
}

TEST(Diagnostics, EnvironmentSettingAtTheTopLevelSaysWhereItBelongs) {
  EXPECT_EQ(
      load_errors(std::string(kHead) + R"(hooks:
  pre_deploy: ./x
environments:
  production: {}
)"),
      V{"meshdeploy.yml:6:1: hooks: unknown key 'hooks' ('hooks' is an environment setting: put "
        "it under defaults: (every environment) or environments.<name>: (one environment))"});
}

TEST(Diagnostics, TypeErrors) {
  EXPECT_EQ(
      load_errors(std::string(kHead) + R"(      count: two
      env: [A, B]
      health: /up
  secrets: DATABASE_URL
  migrations:
    backup: yes
environments:
  production: {}
)"),
      (V{"meshdeploy.yml:6:14: defaults.services.web.count: 'two' is not a whole number (use a "
         "whole number from 0 to 1000)",
         "meshdeploy.yml:7:12: defaults.services.web.env: expected a map of NAME: value, got a "
         "list",
         "meshdeploy.yml:8:15: defaults.services.web.health: expected a map of settings, got a "
         "scalar",
         "meshdeploy.yml:9:12: defaults.secrets: expected a list of strings, got a scalar (write a "
         "list: [DATABASE_URL])",
         "meshdeploy.yml:11:13: defaults.migrations.backup: 'yes' is not a boolean (write true "
         "(only true and false are booleans here))"}));
}

TEST(Diagnostics, OutOfRangeValues) {
  EXPECT_EQ(
      load_errors(std::string(kHead) + R"(      count: 5000
  keep_releases: 0
  strategy:
    analysis:
      max_error_ratio: 1.5
environments:
  production: {}
)"),
      (V{"meshdeploy.yml:6:14: defaults.services.web.count: '5000' is out of range (use a whole "
         "number from 0 to 1000)",
         "meshdeploy.yml:7:18: defaults.keep_releases: '0' is out of range (use a whole number "
         "from 1 to 1000)",
         "meshdeploy.yml:10:24: defaults.strategy.analysis.max_error_ratio: '1.5' is out of range "
         "(use a number from 0 to 1)"}));
}

TEST(Diagnostics, HostsPolicyIsChecked) {
  const V errs = load_errors(std::string(kHead) + R"(  strategy:
    hosts: {unreachable_after: 0s, batch: 2}
environments:
  production: {}
)");
  ASSERT_EQ(errs.size(), 2u);
  EXPECT_NE(errs[0].find("defaults.strategy.hosts.unreachable_after"), std::string::npos)
      << errs[0];
  EXPECT_NE(errs[1].find("defaults.strategy.hosts"), std::string::npos) << errs[1];
  EXPECT_NE(errs[1].find("batch"), std::string::npos) << errs[1];
}

TEST(Diagnostics, CanaryAnalysisKeysAreChecked) {
  EXPECT_EQ(
      load_errors(std::string(kHead) + R"(  strategy:
    analysis:
      max_error_ratio: 0.2
      max_median_ratio: 0.5
      consecutive_windows: 0
      significance: 0.9
      warmup: soon
environments:
  production: {}
)"),
      (V{"meshdeploy.yml:8:24: defaults.strategy.analysis.max_error_ratio: severe_error_ratio 0.1 "
         "is "
         "below max_error_ratio 0.2 (a 5xx ratio above severe_error_ratio breaches at once; set it "
         "at least max_error_ratio)",
         "meshdeploy.yml:9:25: defaults.strategy.analysis.max_median_ratio: must be 0 (off) or at "
         "least 1 (the canary's median / the live set's median above which it is slower, e.g. 1.5)",
         "meshdeploy.yml:10:28: defaults.strategy.analysis.consecutive_windows: '0' is out of "
         "range "
         "(use a whole number from 1 to 100)",
         "meshdeploy.yml:11:21: defaults.strategy.analysis.significance: '0.9' is out of range "
         "(use "
         "a number from 1e-09 to 0.5)",
         "meshdeploy.yml:12:15: defaults.strategy.analysis.warmup: 'soon' is not a duration: "
         "expected a number at 'soon' (write a number and a unit: 500ms, 30s, 5m, 1h, 1h30m)"}));
}

TEST(Diagnostics, BadEnumListsTheValidValues) {
  EXPECT_EQ(
      load_errors(std::string(kHead) + R"(  strategy:
    kind: bluegreen
environments:
  production: {}
)"),
      V{"meshdeploy.yml:7:11: defaults.strategy.kind: unknown value 'bluegreen' (did you mean "
        "'blue_green'? valid values: blue_green, canary)"});
}

TEST(Diagnostics, BadDurations) {
  EXPECT_EQ(
      load_errors(std::string(kHead) + R"(      stop_grace: 30
  rollback_window: 15 minutes
  hooks:
    timeout: 0
environments:
  production: {}
)"),
      (V{"meshdeploy.yml:6:19: defaults.services.web.stop_grace: '30' is not a duration: missing "
         "unit (ms, s, m, h or d) (write a number and a unit: 500ms, 30s, 5m, 1h, 1h30m)",
         "meshdeploy.yml:7:20: defaults.rollback_window: '15 minutes' is not a duration: missing "
         "unit (ms, s, m, h or d) (write a number and a unit: 500ms, 30s, 5m, 1h, 1h30m)",
         "meshdeploy.yml:9:14: defaults.hooks.timeout: '0' is out of range (use at least 1ms)"}));
}

TEST(Diagnostics, MissingRequiredKeys) {
  EXPECT_EQ(
      load_errors(R"(defaults:
  services:
    api:
      count: 2
environments:
  production: {}
)"),
      (V{"meshdeploy.yml:1:1: app: missing required key 'app' (the application's name, e.g. app: "
         "meshhook)",
         "meshdeploy.yml:3:5: defaults.services.api.kind: missing required key 'kind' for service "
         "'api' (add kind: web (takes HTTP traffic on $PORT) or kind: worker (takes none))",
         "meshdeploy.yml:3:5: defaults.services.api.command: missing required key 'command' for "
         "service 'api' (the shell command that starts one process, run in the release "
         "directory)"}));
  EXPECT_EQ(
      load_errors("app: shop\n"),
      V{"meshdeploy.yml:1:1: environments: missing required key 'environments' (define at least "
        "one, e.g. environments: {staging: {}, production: {}})"});
}

TEST(Diagnostics, CanaryStepRules) {
  EXPECT_EQ(
      load_errors(std::string(kHead) + R"(  strategy:
    kind: canary
environments:
  staging:
    strategy:
      steps: []
  production:
    strategy:
      steps:
        - weight: 20
        - weight: 10
        - weight: 50
)"),
      (V{"meshdeploy.yml:11:14: environments.staging.strategy.steps: a canary needs at least one "
         "step (e.g. steps: [{weight: 10, pause: 1m}, {weight: 100}])",
         "meshdeploy.yml:16:19: environments.production.strategy.steps[1].weight: canary weights "
         "must increase: 10 follows 20 (order the steps by weight)",
         "meshdeploy.yml:17:19: environments.production.strategy.steps[2].weight: the last canary "
         "step must send 100% of traffic, not 50% (add a final step: - weight: 100)"}));
}

// Regression (issue 10): steps beside blue_green were an error, so an
// environment could not default to blue-green and take `--strategy canary`
// with its own steps. They are allowed, and checked by the same rules.
TEST(Diagnostics, CanaryStepsBesideBlueGreenAreCheckedNotRefused) {
  EXPECT_EQ(
      load_errors(std::string(kHead) + R"(  strategy:
    kind: blue_green
    steps: [{weight: 20}, {weight: 100}]
    sticky_cookie: md_canary
environments:
  production: {}
  staging:
    strategy:
      steps: [{weight: 50}]
)"),
      V{"meshdeploy.yml:14:24: environments.staging.strategy.steps[0].weight: the last canary "
        "step must send 100% of traffic, not 50% (add a final step: - weight: 100)"});
}

TEST(Diagnostics, UndefinedVariableAtItsExactColumn) {
  EXPECT_EQ(
      load_errors(std::string(kHead) + R"(  env:
    API: https://${API_HOST}/v1 and ${ALSO_MISSING}
    QUOTED: "x ${QUOTED_MISSING}"
    BAD: ${1X} ${OPEN
environments:
  production: {}
)"),
      (V{"meshdeploy.yml:7:18: defaults.env.API: undefined environment variable 'API_HOST' "
         "(export it before running meshdeploy, give a default with ${API_HOST:-value}, or write "
         "$${API_HOST} to pass it to the process's shell unexpanded)",
         "meshdeploy.yml:7:37: defaults.env.API: undefined environment variable 'ALSO_MISSING' "
         "(export it before running meshdeploy, give a default with ${ALSO_MISSING:-value}, or "
         "write $${ALSO_MISSING} to pass it to the process's shell unexpanded)",
         "meshdeploy.yml:8:13: defaults.env.QUOTED: undefined environment variable "
         "'QUOTED_MISSING' (export it before running meshdeploy, give a default with "
         "${QUOTED_MISSING:-value}, or write $${QUOTED_MISSING} to pass it to the process's "
         "shell unexpanded)",
         "meshdeploy.yml:9:10: defaults.env.BAD: invalid variable reference '${1X}' (a name is "
         "letters, digits and '_', not starting with a digit; defaults are written "
         "${NAME:-value})",
         "meshdeploy.yml:9:16: defaults.env.BAD: unterminated '${' (close it with '}', or write "
         "'$${' for a literal '${')"}));
}

TEST(Diagnostics, InterpolationErrorIsNotReportedTwice) {
  // count: "" would also be "not a whole number"; only the cause is shown.
  EXPECT_EQ(load_errors(std::string(kHead) + R"(      count: ${WEB_COUNT}
environments:
  production: {}
)"),
            V{"meshdeploy.yml:6:14: defaults.services.web.count: undefined environment variable "
              "'WEB_COUNT' (export it before running meshdeploy, give a default with "
              "${WEB_COUNT:-value}, or write $${WEB_COUNT} to pass it to the process's shell "
              "unexpanded)"});
}

TEST(Diagnostics, UndefinedVariableWhoseNameContainsNAME) {
  // The hint names the variable; a name containing "NAME" once looped forever.
  EXPECT_EQ(load_errors(std::string(kHead) + R"(  env:
    A: ${NAME}
    B: ${HOSTNAMES}
environments:
  production: {}
)"),
            (V{"meshdeploy.yml:7:8: defaults.env.A: undefined environment variable 'NAME' "
               "(export it before running meshdeploy, give a default with ${NAME:-value}, or "
               "write $${NAME} to pass it to the process's shell unexpanded)",
               "meshdeploy.yml:8:8: defaults.env.B: undefined environment variable 'HOSTNAMES' "
               "(export it before running meshdeploy, give a default with ${HOSTNAMES:-value}, "
               "or write $${HOSTNAMES} to pass it to the process's shell unexpanded)"}));
}

TEST(Diagnostics, UndefinedReferences) {
  EXPECT_EQ(
      load_errors(std::string(kHead) + R"(  notifications:
    channels:
      ops:
        kind: slack
        url_secret: SLACK_URL
        events: [started, deployed]
        environments: [prod]
      mail:
        kind: email
        url_secret: X
environments:
  production: {}
)"),
      (V{"meshdeploy.yml:11:27: defaults.notifications.channels.ops.events[1]: unknown event "
         "'deployed' (valid events: started, succeeded, failed, rolled_back, canary_step, "
         "approval_needed)",
         "meshdeploy.yml:12:23: defaults.notifications.channels.ops.environments: channel 'ops' "
         "names environment 'prod', which is not defined (did you mean 'production'?)",
         "meshdeploy.yml:13:7: defaults.notifications.channels.mail.smtp_url: missing required "
         "key 'smtp_url' for email channel 'mail' (e.g. smtp://mail.example.com:587)",
         "meshdeploy.yml:13:7: defaults.notifications.channels.mail.from: missing required key "
         "'from' for email channel 'mail' (the sender address, e.g. deploys@example.com)",
         "meshdeploy.yml:13:7: defaults.notifications.channels.mail.to: missing required key "
         "'to' for email channel 'mail' (a list of recipients, e.g. [ops@example.com])",
         "meshdeploy.yml:15:21: defaults.notifications.channels.mail.url_secret: 'url_secret' "
         "applies to slack and webhook channels only, not email (remove it, or change kind)"}));
}

TEST(Diagnostics, BadNamesAndValues) {
  EXPECT_EQ(
      load_errors(R"(app: Shop App
defaults:
  services:
    Web_1:
      command: x
    web:
      command: y
      path_prefix: api
  secrets: [database-url]
  hosts:
    - address: ftp://x
  proxy:
    listen: localhost
environments:
  production: {}
)"),
      (V{"meshdeploy.yml:1:6: app: 'Shop App' is not a valid name (use lower-case letters, "
         "digits, '-' and '_', starting with a letter or digit (at most 63))",
         "meshdeploy.yml:4:5: defaults.services.Web_1: 'Web_1' is not a valid name (use "
         "lower-case letters, digits, '-' and '_', starting with a letter or digit (at most 63))",
         "meshdeploy.yml:8:20: defaults.services.web.path_prefix: 'api' is not a URL path (start "
         "it with '/', e.g. /healthz)",
         "meshdeploy.yml:9:13: defaults.secrets[0]: 'database-url' is not a valid secret name "
         "(secret names are letters, digits and '_', not starting with a digit (as `meshdeploy "
         "secrets list` shows them))",
         "meshdeploy.yml:11:16: defaults.hosts[0].address: 'ftp://x' is not a host address (use "
         "\"local\" or ssh://[user@]host[:port])",
         "meshdeploy.yml:13:13: defaults.proxy.listen: 'localhost' is not a valid listen address "
         "(write HOST:PORT, e.g. 127.0.0.1:8080 or [::]:443)"}));
}

TEST(Diagnostics, SshAddressesAndKeys) {
  EXPECT_EQ(
      load_errors(R"(app: shop
defaults:
  services: {web: {command: x}}
  ssh: {user: "-oX", port: 70000, connect_timeout: 0s}
  hosts:
    - address: ssh://web:99999
    - address: ssh://2001:db8::1
      host_key: "nokey"
    - address: ssh://web-3
      listen: nowhere
environments:
  production: {}
)"),
      (V{"meshdeploy.yml:4:15: defaults.ssh.user: '-oX' is not a user name (letters, digits, "
         "'.', '-', '_', not starting with '-')",
         "meshdeploy.yml:4:28: defaults.ssh.port: '70000' is out of range (use a whole number "
         "from 0 to 65535)",
         "meshdeploy.yml:4:52: defaults.ssh.connect_timeout: '0s' is out of range (use 1s to "
         "10m)",
         // WHY: the hosts whose address failed keep the default name.
         "meshdeploy.yml:6:5: defaults.hosts: two hosts are named 'local' (give each host a "
         "distinct name)",
         "meshdeploy.yml:6:16: defaults.hosts[0].address: 'ssh://web:99999' is not a host "
         "address: port 99999 is not in 1..65535 (use \"local\" or "
         "ssh://[user@]host[:port], IPv6 in brackets)",
         "meshdeploy.yml:7:16: defaults.hosts[1].address: 'ssh://2001:db8::1' is not a host "
         "address: an IPv6 address must be in brackets (use \"local\" or "
         "ssh://[user@]host[:port], IPv6 in brackets)",
         "meshdeploy.yml:8:17: defaults.hosts[1].host_key: 'nokey' is not a host key (the "
         "host's public key line, e.g. `ssh-ed25519 AAAAC3Nza...` (ssh-keyscan prints it))",
         "meshdeploy.yml:10:15: defaults.hosts[2].listen: 'nowhere' is not a valid listen "
         "address (write HOST:PORT, e.g. 127.0.0.1:8080 or [::]:443)"}));
}

TEST(Diagnostics, WebOnlyKeysOnAWorker) {
  EXPECT_EQ(
      load_errors(std::string(kHead) + R"(    jobs:
      kind: worker
      command: node jobs.js
      health: {path: /up}
      env: {PORT: "1"}
environments:
  production: {}
)"),
      V{"meshdeploy.yml:9:15: defaults.services.jobs.health: 'health' applies to web services "
        "only (remove it, or set kind: web)"});
}

TEST(Diagnostics, DuplicateKeys) {
  EXPECT_EQ(load_errors(std::string(kHead) + R"(      count: 1
      count: 2
environments:
  production: {}
)"),
            V{"meshdeploy.yml:7:7: defaults.services.web.count: duplicate key (first at line 6) "
              "(remove one of them)"});
}

// A problem in shared settings that only some environments hit says which.
TEST(Diagnostics, SharedProblemNamesTheEnvironmentsItAffects) {
  EXPECT_EQ(
      load_errors(R"(app: shop
defaults:
  services:
    api:
      command: x
environments:
  staging:
    services:
      api: {kind: web}
  production: {}
  development: {}
)"),
      V{"meshdeploy.yml:4:5: defaults.services.api.kind: missing required key 'kind' for service "
        "'api' (in environments production, development) (add kind: web (takes HTTP traffic on "
        "$PORT) or kind: worker (takes none))"});
}

TEST(Diagnostics, EveryProblemAtOnceInFileOrder) {
  auto errs = load_errors(R"(app: shop
defaults:
  services:
    web:
      comand: x
      count: -1
  strategy:
    kind: canry
  keep_releases: many
environments:
  production:
    proxy: {listen: "nope"}
)");
  ASSERT_EQ(errs.size(), 6u);
  EXPECT_EQ(errs[0].substr(0, 20), "meshdeploy.yml:4:5: ");  // missing command
  EXPECT_EQ(errs[1].substr(0, 20), "meshdeploy.yml:5:7: ");  // comand
  EXPECT_EQ(errs[2].substr(0, 21), "meshdeploy.yml:6:14: ");
  EXPECT_EQ(errs[3].substr(0, 21), "meshdeploy.yml:8:11: ");
  EXPECT_EQ(errs[4].substr(0, 21), "meshdeploy.yml:9:18: ");
  EXPECT_EQ(errs[5].substr(0, 22), "meshdeploy.yml:12:21: ");
}

TEST(Diagnostics, AliasBombIsRefusedNotExpanded) {
  std::string bomb = "app: shop\na: &a [x, x, x, x, x, x, x, x, x, x]\n";
  char prev = 'a';
  for (char c = 'b'; c <= 'j'; ++c, ++prev)
    bomb += std::string(1, c) + ": &" + c + " [*" + prev + ", *" + prev + ", *" + prev + ", *" +
            prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev +
            ", *" + prev + "]\n";
  auto errs = load_errors(bomb);
  ASSERT_FALSE(errs.empty());
  EXPECT_NE(errs[0].find("expands to more than 100000 nodes"), std::string::npos) << errs[0];
}

TEST(Diagnostics, NotAMapAndEmptyFile) {
  EXPECT_EQ(
      load_errors("- a\n- b\n"),
      V{"meshdeploy.yml:1:1: expected a map at the top of the file (start with app:, defaults: "
        "and environments: (see docs/configuration.md))"});
  EXPECT_EQ(
      load_errors(""),
      V{"meshdeploy.yml:1:1: the file is empty (start with app:, defaults: and environments: (see "
        "docs/configuration.md))"});
}

TEST(Diagnostics, MissingFile) {
  LoadResult r = load("/nonexistent/meshdeploy.yml");
  ASSERT_EQ(r.diagnostics.size(), 1u);
  EXPECT_EQ(
      r.diagnostics[0].format(),
      "/nonexistent/meshdeploy.yml: cannot read the file: open /nonexistent/meshdeploy.yml: No "
      "such file or directory (pass the right path with -c FILE)");
}

}  // namespace
}  // namespace md::config

namespace md::config {
namespace {

using testing::load_errors;
using V = std::vector<std::string>;

const char* kSkeleton = R"(app: shop
defaults:
  services:
    web:
      command: node server.js
)";

// Regression: a second document after '---' was silently ignored.
TEST(Diagnostics, ASecondYamlDocumentIsRefusedWhereItStarts) {
  EXPECT_EQ(
      load_errors(std::string(kSkeleton) + "environments:\n  production: {}\n---\nenvironments:\n"
                                           "  staging: {}\n"),
      V{"meshdeploy.yml:8:1: a second YAML document starts here; meshdeploy.yml holds one "
        "document (remove the '---' line and what follows, or merge it into the first "
        "document)"});
  // A leading '---' starts the one document: fine.
  testing::load_ok("---\n" + std::string(kSkeleton) + "environments:\n  production: {}\n");
}

TEST(Diagnostics, AgentRootMustNotBeASystemDirectory) {
  EXPECT_EQ(
      load_errors(std::string(kSkeleton) + "  agent: {root: /}\nenvironments:\n  production: {}\n"),
      V{"meshdeploy.yml:6:17: defaults.agent.root: '/' is a system directory, not a directory "
        "of the agent's own (give a new or empty directory, e.g. /var/lib/meshdeploy)"});
  EXPECT_EQ(
      load_errors(std::string(kSkeleton) +
                  "  hosts: [{name: a, address: local, agent_root: /var/lib/}]\n"
                  "environments:\n  production: {}\n"),
      V{"meshdeploy.yml:6:49: defaults.hosts[0].agent_root: '/var/lib/' is a system directory, "
        "not a directory of the agent's own (give a new or empty directory, e.g. "
        "/var/lib/meshdeploy)"});
  testing::load_ok(std::string(kSkeleton) +
                   "  agent: {root: /var/lib/meshdeploy}\nenvironments:\n"
                   "  production: {}\n");
}

TEST(Diagnostics, HostSetupPathsMustBeAbsoluteAndTheUnitAName) {
  EXPECT_EQ(
      load_errors(std::string(kSkeleton) + "  hosts:\n    - {name: a, binary: bin/meshdeploy}\n"
                                           "    - {name: b, unit_dir: /}\n"
                                           "    - {name: c, unit: agent.service}\n"
                                           "environments:\n  production: {}\n"),
      (V{"meshdeploy.yml:7:25: defaults.hosts[0].binary: 'bin/meshdeploy' is not an absolute "
         "path (e.g. /usr/local/bin/meshdeploy, /etc/systemd/system)",
         "meshdeploy.yml:8:27: defaults.hosts[1].unit_dir: '/' is not an absolute path (e.g. "
         "/usr/local/bin/meshdeploy, /etc/systemd/system)",
         "meshdeploy.yml:9:23: defaults.hosts[2].unit: 'agent.service' is not a systemd unit "
         "name (letters, digits, '-', '_', '.', '@', without .service, e.g. "
         "meshdeploy-agent)"}));
  testing::load_ok(std::string(kSkeleton) +
                   "  hosts: [{name: a, binary: /opt/md/bin/meshdeploy, unit_dir: /run/units, "
                   "unit: md-a}]\nenvironments:\n  production: {}\n");
}

TEST(Diagnostics, StateMustNotBeUnderProc) {
  EXPECT_EQ(
      load_errors(std::string(kSkeleton) +
                  "environments:\n  production:\n    state: /proc/self/mem\n"),
      V{"meshdeploy.yml:8:12: environments.production.state: '/proc/self/mem' is under /proc, "
        "not a place for the state store (e.g. .meshdeploy/state.db, or a postgres:// URL)"});
  testing::load_ok(std::string(kSkeleton) +
                   "environments:\n  production:\n    state: /srv/proc/state.db\n");
}

TEST(Diagnostics, StateOnAnAgentMustNameAHostOfTheEnvironment) {
  EXPECT_EQ(load_errors(std::string(kSkeleton) +
                        "environments:\n  production:\n    hosts: [{name: web-1, address: "
                        "local}]\n    state: agent:web-9\n"),
            V{"meshdeploy.yml:9:12: environments.production.state: state: 'web-9' is not a host "
              "of environment 'production' (write agent (the first host) or agent:<one of "
              "hosts[].name>)"});
}

TEST(Diagnostics, NameTemplateMustNotClimbOutOfTheArtifactDir) {
  EXPECT_EQ(load_errors(std::string(kSkeleton) +
                        "  artifact: {name_template: \"../../etc/{app}-{version}.tar.gz\"}\n"
                        "environments:\n  production: {}\n"),
            V{"meshdeploy.yml:6:29: defaults.artifact.name_template: the artifact name "
              "'../../etc/{app}-{version}.tar.gz' contains '..' (it names a file in artifact.dir, "
              "e.g. {app}-{version}.tar.gz)"});
}

class KeyFile : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/md-keyfile-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::vector<std::string> errors_for(const std::filesystem::path& key) {
    return load_errors(std::string(kSkeleton) +
                       "environments:\n  production:\n    key_file: " + key.string() + "\n");
  }
  std::filesystem::path dir_;
};

TEST_F(KeyFile, MustBeARegularFileOwnedByTheUser) {
  const std::filesystem::path fifo = dir_ / "fifo.key";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_EQ(errors_for(fifo),
            V{"meshdeploy.yml:8:15: environments.production.key_file: '" + fifo.string() +
              "' is not a regular file (point key_file at the key written by `meshdeploy secrets "
              "init`)"});
  const std::filesystem::path theirs = dir_ / "theirs.key";
  std::ofstream(theirs) << "key";
  if (::geteuid() == 0) {
    ASSERT_EQ(::chown(theirs.c_str(), 65534, 65534), 0);
  }
  const std::filesystem::path other =
      ::geteuid() == 0 ? theirs : std::filesystem::path("/etc/passwd");
  const auto errs = errors_for(other);
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_NE(
      errs[0].find("environments.production.key_file: '" + other.string() + "' is owned by uid "),
      std::string::npos)
      << errs[0];
  const std::filesystem::path mine = dir_ / "mine.key";
  std::ofstream(mine) << "key";
  testing::load_ok(std::string(kSkeleton) +
                   "environments:\n  production:\n    key_file: " + mine.string() + "\n");
  // Missing: not a validation error (the secrets commands say what to do).
  testing::load_ok(std::string(kSkeleton) + "environments:\n  production:\n    key_file: " +
                   (dir_ / "none.key").string() + "\n");
}

}  // namespace
}  // namespace md::config
// NOLINTEND(bugprone-suspicious-missing-comma)
