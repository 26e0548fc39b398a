// Loading, overlays and resolve(): what a valid file turns into.
#include "config/config.h"

#include <gtest/gtest.h>

#include "config/test_util.h"

namespace md::config {
namespace {

using namespace std::chrono_literals;
using testing::load_ok;

TEST(Load, MinimalFileGetsEveryDefault) {
  Config c = load_ok(R"(app: shop
defaults:
  services:
    web:
      command: node server.js
environments:
  production:
)");
  EXPECT_EQ(c.app, "shop");
  EXPECT_EQ(c.environments, std::vector<std::string>{"production"});
  auto env = resolve(c, "production");
  ASSERT_TRUE(env) << env.error().what();
  EXPECT_EQ(env->name, "production");
  EXPECT_EQ(env->app, "shop");
  ASSERT_EQ(env->services.size(), 1u);
  const Service& web = env->services[0];
  EXPECT_EQ(web.name, "web");
  EXPECT_EQ(web.kind, ServiceKind::kWeb);
  EXPECT_EQ(web.count, 1);
  EXPECT_EQ(web.health.path, "/healthz");
  EXPECT_EQ(web.stop_grace, 30s);
  ASSERT_EQ(env->hosts.size(), 1u);
  EXPECT_EQ(env->hosts[0].name, "local");
  EXPECT_EQ(env->hosts[0].address, "local");
  EXPECT_EQ(env->hosts[0].agent_root, ".meshdeploy/agent");
  EXPECT_EQ(env->strategy.kind, StrategyKind::kBlueGreen);
  // The canary default, for `deploy --strategy canary`.
  EXPECT_EQ(env->strategy.steps.size(), 4u);
  EXPECT_EQ(env->vault, ".meshdeploy/secrets/production.vault");
  EXPECT_EQ(env->state, ".meshdeploy/state.db");
  EXPECT_EQ(env->agent.socket, ".meshdeploy/agent/agent.sock");
  EXPECT_EQ(env->rollback_window, 15min);
  EXPECT_EQ(env->keep_releases, 5);
  EXPECT_TRUE(env->migrations.enabled);
  EXPECT_EQ(env->migrations.database_url_secret, "DATABASE_URL");
  EXPECT_TRUE(env->base_dir.is_absolute());
}

// `state:` on a host's agent: written, or the default once a host is ssh://
// (a throw-away controller keeps nothing); a path or URL is obeyed.
TEST(Load, StateOnTheHostsAgent) {
  const std::string base = R"(app: shop
defaults:
  services:
    web:
      command: node server.js
environments:
)";
  Config c = load_ok(base + R"(  local: {}
  ssh:
    hosts:
      - {name: web-1, address: "ssh://deploy@10.0.0.1"}
      - {name: web-2, address: "ssh://deploy@10.0.0.2"}
  named:
    hosts: [{name: a, address: local}, {name: b, address: local}]
    state: agent:b
  first:
    hosts: [{name: a, address: local}, {name: b, address: local}]
    state: agent
  pg:
    hosts: [{name: web-1, address: "ssh://deploy@10.0.0.1"}]
    state: postgres://md@db/md
)");
  auto local = resolve(c, "local");
  ASSERT_TRUE(local) << local.error().what();
  EXPECT_EQ(local->state, ".meshdeploy/state.db");
  EXPECT_TRUE(local->state_defaulted);
  auto ssh = resolve(c, "ssh");
  ASSERT_TRUE(ssh) << ssh.error().what();
  EXPECT_EQ(ssh->state, "agent:web-1");
  EXPECT_TRUE(ssh->state_defaulted);
  auto named = resolve(c, "named");
  ASSERT_TRUE(named);
  EXPECT_EQ(named->state, "agent:b");
  EXPECT_FALSE(named->state_defaulted);
  EXPECT_EQ(resolve(c, "first")->state, "agent:a");
  EXPECT_EQ(resolve(c, "pg")->state, "postgres://md@db/md");
  EXPECT_FALSE(resolve(c, "pg")->state_defaulted);
}

// Maps merge key by key, lists replace, null removes (docs/configuration.md).
TEST(Load, EnvironmentsOverlayDefaults) {
  Config c = load_ok(R"(app: shop
defaults:
  services:
    web:
      command: node server.js
      count: 2
      env: {A: "1", B: "2"}
    worker:
      command: node worker.js
  secrets: [DATABASE_URL, API_KEY]
  hosts:
    - address: ssh://deploy@a.internal
    - address: ssh://deploy@b.internal
  env: {NODE_ENV: production}
environments:
  staging:
    services:
      web:
        count: 3
        env: {B: "20", C: "3"}
      worker: ~
    secrets: [DATABASE_URL]
    hosts:
      - name: only
        address: local
  production: {}
)");
  auto staging = resolve(c, "staging");
  ASSERT_TRUE(staging);
  ASSERT_EQ(staging->services.size(), 1u);
  const Service& web = staging->services[0];
  EXPECT_EQ(web.command, "node server.js");  // inherited
  EXPECT_EQ(web.count, 3);                   // overridden
  EXPECT_EQ(web.env, (std::map<std::string, std::string>{{"A", "1"}, {"B", "20"}, {"C", "3"}}));
  EXPECT_EQ(staging->secrets, std::vector<std::string>{"DATABASE_URL"});  // list replaced
  ASSERT_EQ(staging->hosts.size(), 1u);
  EXPECT_EQ(staging->hosts[0].name, "only");
  EXPECT_EQ(staging->env.at("NODE_ENV"), "production");

  auto prod = resolve(c, "production");
  ASSERT_TRUE(prod);
  ASSERT_EQ(prod->services.size(), 2u);
  EXPECT_EQ(prod->services[1].kind, ServiceKind::kWorker);  // named worker
  ASSERT_EQ(prod->hosts.size(), 2u);
  EXPECT_EQ(prod->hosts[0].name, "a.internal");  // derived from the address
  EXPECT_EQ(prod->hosts[1].name, "b.internal");
}

TEST(Load, SshSectionAndPerHostKeys) {
  Config c = load_ok(R"(app: shop
defaults:
  services: {web: {command: x}}
  proxy: {listen: "127.0.0.1:8080"}
  migrations: {enabled: false}
  ssh: {known_hosts: ssh/known_hosts, user: deploy, port: 2222, key_secret: SSH_KEY,
        connect_timeout: 5s}
  secrets: [API_KEY]
environments:
  production:
    hosts:
      - address: ssh://[2001:db8::1]:22
        host_key: ssh-ed25519 AAAAC3Nza
        listen: "10.0.0.5:80"
      - address: ssh://web-2
  staging: {}
)");
  auto prod = resolve(c, "production");
  ASSERT_TRUE(prod) << prod.error().what();
  EXPECT_EQ(prod->ssh.known_hosts, "ssh/known_hosts");
  EXPECT_EQ(prod->ssh.user, "deploy");
  EXPECT_EQ(prod->ssh.port, 2222);
  EXPECT_EQ(prod->ssh.key_secret, "SSH_KEY");
  EXPECT_EQ(prod->ssh.connect_timeout, Millis(5000));
  ASSERT_EQ(prod->hosts.size(), 2u);
  EXPECT_EQ(prod->hosts[0].name, "2001:db8::1");
  EXPECT_EQ(prod->hosts[0].host_key, "ssh-ed25519 AAAAC3Nza");
  EXPECT_EQ(prod->hosts[0].listen, "10.0.0.5:80");
  EXPECT_EQ(prod->hosts[1].listen, "127.0.0.1:8080");  // proxy.listen
  std::vector<std::string> refs;
  for (const SecretRef& r : secret_references(*prod)) refs.push_back(r.name + "<-" + r.used_by);
  EXPECT_EQ(refs, (std::vector<std::string>{"API_KEY<-secrets", "SSH_KEY<-ssh.key_secret"}));
  // A local environment does not need the ssh key.
  auto staging = resolve(c, "staging");
  ASSERT_TRUE(staging);
  EXPECT_EQ(secret_references(*staging).size(), 1u);
}

TEST(Load, CanaryStepsExplicitAndDefault) {
  Config c = load_ok(R"(app: shop
defaults:
  services: {web: {command: x}}
  strategy: {kind: canary}
environments:
  staging: {}
  production:
    strategy:
      steps:
        - {weight: 10, pause: 90s}
        - {weight: 50, approval: true}
        - {weight: 100}
)");
  auto staging = resolve(c, "staging");
  ASSERT_TRUE(staging);
  ASSERT_EQ(staging->strategy.steps.size(), 4u);
  EXPECT_EQ(staging->strategy.steps[0].weight, 5);
  EXPECT_EQ(staging->strategy.steps[0].pause, 30s);
  EXPECT_EQ(staging->strategy.steps[3].weight, 100);
  auto prod = resolve(c, "production");
  ASSERT_TRUE(prod);
  ASSERT_EQ(prod->strategy.steps.size(), 3u);
  EXPECT_EQ(prod->strategy.steps[0].pause, 90s);
  EXPECT_TRUE(prod->strategy.steps[1].approval);
}

TEST(Load, HostsPolicyDefaultsAndOverlay) {
  Config c = load_ok(R"(app: shop
defaults:
  services: {web: {command: x}}
environments:
  staging: {}
  production:
    strategy:
      hosts: {unreachable_after: 3s, rollback_wait: 2m}
)");
  auto staging = resolve(c, "staging");
  ASSERT_TRUE(staging);
  EXPECT_EQ(staging->strategy.hosts.unreachable_after, 10s);
  EXPECT_EQ(staging->strategy.hosts.rollback_wait, 10min);
  auto prod = resolve(c, "production");
  ASSERT_TRUE(prod);
  EXPECT_EQ(prod->strategy.hosts.unreachable_after, 3s);
  EXPECT_EQ(prod->strategy.hosts.rollback_wait, 2min);
}

TEST(Load, OverlayMaySwitchAnInheritedCanaryToBlueGreen) {
  Config c = load_ok(R"(app: shop
defaults:
  services: {web: {command: x}}
  strategy:
    kind: canary
    steps: [{weight: 100}]
environments:
  development:
    strategy: {kind: blue_green}
)");
  auto dev = resolve(c, "development");
  ASSERT_TRUE(dev);
  EXPECT_EQ(dev->strategy.kind, StrategyKind::kBlueGreen);
  // Kept for `deploy --strategy canary` (issue 10).
  ASSERT_EQ(dev->strategy.steps.size(), 1u);
  EXPECT_EQ(dev->strategy.steps[0].weight, 100);
}

TEST(Load, StepsBesideBlueGreenServeCanaryDeploys) {
  Config c = load_ok(R"(app: shop
defaults:
  services: {web: {command: x}}
  strategy:
    kind: blue_green
    steps: [{weight: 10, pause: 1m}, {weight: 100}]
environments:
  production: {}
)");
  auto prod = resolve(c, "production");
  ASSERT_TRUE(prod);
  EXPECT_EQ(prod->strategy.kind, StrategyKind::kBlueGreen);
  ASSERT_EQ(prod->strategy.steps.size(), 2u);
  EXPECT_EQ(prod->strategy.steps[0].weight, 10);
  EXPECT_EQ(prod->strategy.steps[0].pause, 60s);
}

TEST(Load, InterpolatesFromTheEnvironmentWithEscapesAndDefaults) {
  Config c = load_ok(R"(app: shop
defaults:
  services:
    web:
      command: node server.js --port $PORT --name $${NAME}
      count: ${WEB_COUNT}
  env:
    REGION: ${REGION:-eu-west-1}
    TAG: "${TAG-none}"
    EMPTY_DEFAULTED: ${EMPTY:-fallback}
    EMPTY_KEPT: ${EMPTY-fallback}
environments:
  production: {}
)",
                     {{"WEB_COUNT", "3"}, {"EMPTY", ""}});
  auto env = resolve(c, "production");
  ASSERT_TRUE(env);
  EXPECT_EQ(env->services[0].command, "node server.js --port $PORT --name ${NAME}");
  EXPECT_EQ(env->services[0].count, 3);
  EXPECT_EQ(env->env.at("REGION"), "eu-west-1");
  EXPECT_EQ(env->env.at("TAG"), "none");
  EXPECT_EQ(env->env.at("EMPTY_DEFAULTED"), "fallback");
  EXPECT_EQ(env->env.at("EMPTY_KEPT"), "");
}

TEST(Load, YamlMergeKeysAndAnchors) {
  Config c = load_ok(R"(app: shop
x-common: &common
  command: node app.js
  stop_grace: 10s
defaults:
  services:
    web:
      <<: *common
      count: 2
    jobs:
      <<: *common
      kind: worker
      stop_grace: 1m
environments:
  production: {}
)");
  auto env = resolve(c, "production");
  ASSERT_TRUE(env);
  ASSERT_EQ(env->services.size(), 2u);
  EXPECT_EQ(env->services[0].command, "node app.js");
  EXPECT_EQ(env->services[0].stop_grace, 10s);
  EXPECT_EQ(env->services[0].count, 2);
  EXPECT_EQ(env->services[1].kind, ServiceKind::kWorker);
  EXPECT_EQ(env->services[1].stop_grace, 1min);  // the map's own key wins over the merged one
}

TEST(Resolve, UnknownEnvironmentListsTheKnownOnes) {
  Config c = load_ok(R"(app: shop
defaults: {services: {web: {command: x}}}
environments: {staging: {}, production: {}}
)");
  auto r = resolve(c, "prodution");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kNotFound);
  EXPECT_EQ(r.error().message(),
            "no environment 'prodution' in meshdeploy.yml (defined: staging, production); did you "
            "mean 'production'?");
}

TEST(Locate, ExplicitMissingFileIsNotFound) {
  auto r = locate("/nonexistent/meshdeploy.yml");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kNotFound);
}

TEST(Values, DurationsParseAndFormat) {
  EXPECT_EQ(*parse_duration("30s"), 30s);
  EXPECT_EQ(*parse_duration("500ms"), 500ms);
  EXPECT_EQ(*parse_duration("5m"), 5min);
  EXPECT_EQ(*parse_duration("1h"), 1h);
  EXPECT_EQ(*parse_duration("1h30m"), 90min);
  EXPECT_EQ(*parse_duration("1.5s"), 1500ms);
  EXPECT_EQ(*parse_duration("1.1s"), 1100ms);
  EXPECT_EQ(*parse_duration("2d"), 48h);
  EXPECT_EQ(*parse_duration("0"), 0ms);
  EXPECT_EQ(parse_duration("30").error().message(),
            "'30' is not a duration: missing unit (ms, s, m, h or d)");
  EXPECT_EQ(parse_duration("5 s").error().message(),
            "'5 s' is not a duration: missing unit (ms, s, m, h or d)");
  EXPECT_EQ(parse_duration("3w").error().message(),
            "'3w' is not a duration: unknown unit 'w' (use ms, s, m, h or d)");
  EXPECT_EQ(parse_duration("-1s").error().message(), "'-1s' is not a duration: it is negative");
  EXPECT_FALSE(parse_duration(""));
  EXPECT_FALSE(parse_duration("0.1ms"));
  EXPECT_FALSE(parse_duration("999999999999h"));
  EXPECT_EQ(format_duration(0ms), "0");
  EXPECT_EQ(format_duration(1500ms), "1500ms");
  EXPECT_EQ(format_duration(90s), "90s");
  EXPECT_EQ(format_duration(15min), "15m");
  EXPECT_EQ(format_duration(72h), "72h");
}

TEST(Values, ChannelWantsFiltersByEventAndEnvironment) {
  Channel all;
  EXPECT_TRUE(all.wants("started", "production"));
  Channel some;
  some.events = {"failed", "rolled_back"};
  some.environments = {"production"};
  EXPECT_TRUE(some.wants("failed", "production"));
  EXPECT_FALSE(some.wants("started", "production"));
  EXPECT_FALSE(some.wants("failed", "staging"));
  EXPECT_EQ(event_names().size(), 6u);
}

TEST(Values, SecretReferencesNameEveryUse) {
  Config c = load_ok(R"(app: shop
defaults:
  services: {web: {command: x}}
  secrets: [API_KEY, DATABASE_URL]
  notifications:
    channels:
      hook: {kind: webhook, url_secret: HOOK_URL, signing_secrets: [HOOK_KEY]}
      mail: {kind: email, smtp_url: "smtp://m:25", smtp_user: u, smtp_password_secret: SMTP_PW,
             from: a@b.c, to: [c@d.e]}
environments: {production: {}}
)");
  auto env = resolve(c, "production");
  ASSERT_TRUE(env);
  std::vector<std::string> got;
  for (const SecretRef& r : secret_references(*env)) got.push_back(r.name + "<-" + r.used_by);
  EXPECT_EQ(got,
            (std::vector<std::string>{
                "API_KEY<-secrets", "DATABASE_URL<-migrations.database_url_secret",
                "DATABASE_URL<-secrets", "HOOK_KEY<-notifications.channels.hook.signing_secrets",
                "HOOK_URL<-notifications.channels.hook.url_secret",
                "SMTP_PW<-notifications.channels.mail.smtp_password_secret"}));
}

TEST(Values, CheckSecretNamesPointsAtEachReference) {
  Config c = load_ok(R"(app: shop
defaults:
  services: {web: {command: x}}
  secrets: [API_KEY, "*"]
  notifications:
    channels:
      hook: {kind: webhook, url_secret: HOOK_URL, signing_secrets: [HOOK_KEY]}
environments: {production: {}}
)");
  std::vector<std::string> known = {"API_KEY", "HOOK_KEYS"};
  std::vector<std::string> got;
  for (const Diagnostic& d : check_secret_names(c, "production", known)) got.push_back(d.format());
  EXPECT_EQ(
      got,
      (std::vector<std::string>{
          "meshdeploy.yml:7:41: defaults.notifications.channels.hook.url_secret: secret "
          "'HOOK_URL' is not in the production vault (store it with: meshdeploy secrets set "
          "HOOK_URL --env production)",
          "meshdeploy.yml:7:69: defaults.notifications.channels.hook.signing_secrets[0]: secret "
          "'HOOK_KEY' is not in the production vault (did you mean 'HOOK_KEYS'? store it "
          "with: meshdeploy secrets set HOOK_KEY --env production)",
          "meshdeploy.yml: environments.production.migrations.database_url_secret: secret "
          "'DATABASE_URL' is not in the production vault (store it with: meshdeploy secrets "
          "set DATABASE_URL --env production)"}));
  EXPECT_TRUE(check_secret_names(c, "nope", known).empty());
}

TEST(Render, ShowsSecretsByNameOnlyAndRoundTrips) {
  Config c = load_ok(R"(app: shop
defaults:
  services: {web: {command: node s.js}, worker: {command: node w.js}}
  secrets: [API_KEY]
  strategy: {kind: canary, steps: [{weight: 50, pause: 1m}, {weight: 100}]}
environments: {production: {}}
)");
  auto env = resolve(c, "production");
  ASSERT_TRUE(env);
  std::vector<std::string> vault_names = {"EXTRA"};
  std::string yaml = render_yaml(*env, vault_names);
  EXPECT_NE(yaml.find("API_KEY: \"[REDACTED]\""), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("DATABASE_URL: \"[REDACTED]\""), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("EXTRA: \"[REDACTED]\""), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("pause: 1m"), std::string::npos) << yaml;
  std::string json = render_json(*env);
  EXPECT_NE(json.find("\"API_KEY\": \"[REDACTED]\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"kind\": \"canary\""), std::string::npos) << json;
}

// Found by config_yaml_fuzzer: render_json threw on a value that is not UTF-8.
TEST(Render, JsonOfInvalidUtf8DoesNotThrow) {
  Config c = load_ok(
      "app: shop\ndefaults: {services: {web: {command: \"a\xff\x9b\"}}}\nenvironments: {p: {}}\n");
  auto env = resolve(c, "p");
  ASSERT_TRUE(env);
  std::string json = render_json(*env);
  EXPECT_NE(json.find("\"command\": \"a\xef\xbf\xbd\xef\xbf\xbd\""), std::string::npos) << json;
}

}  // namespace
}  // namespace md::config
