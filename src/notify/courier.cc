// The hand-off of an environment's outbox to the agent: its JSON form, and
// the Courier that runs one Dispatcher per environment until the agent stops.
#include "notify/courier.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "core/json.h"
#include "core/log.h"

namespace md::notify {
namespace {

using json = nlohmann::json;
const log::Logger kLog("notify");

json channel_json(const config::Channel& c) {
  return json{{"name", c.name},
              {"kind", std::string(config::channel_kind_name(c.kind))},
              {"events", c.events},
              {"environments", c.environments},
              {"url_secret", c.url_secret},
              {"signing_secrets", c.signing_secrets},
              {"smtp_url", c.smtp_url},
              {"smtp_user", c.smtp_user},
              {"smtp_password_secret", c.smtp_password_secret},
              {"starttls", c.starttls},
              {"from", c.from},
              {"to", c.to},
              {"timeout_ms", c.timeout.count()},
              {"retry_horizon_ms", c.retry_horizon.count()}};
}

Result<config::Channel> parse_channel(const json& j) {
  config::Channel c;
  try {
    c.name = j.at("name").get<std::string>();
    std::string kind = j.at("kind").get<std::string>();
    bool known = false;
    for (auto k :
         {config::ChannelKind::kSlack, config::ChannelKind::kWebhook, config::ChannelKind::kEmail})
      if (config::channel_kind_name(k) == kind) c.kind = k, known = true;
    if (!known) return fail(Errc::kInvalidArgument, "hand-off: channel kind '" + kind + "'");
    c.events = j.at("events").get<std::vector<std::string>>();
    c.environments = j.at("environments").get<std::vector<std::string>>();
    c.url_secret = j.at("url_secret").get<std::string>();
    c.signing_secrets = j.at("signing_secrets").get<std::vector<std::string>>();
    c.smtp_url = j.at("smtp_url").get<std::string>();
    c.smtp_user = j.at("smtp_user").get<std::string>();
    c.smtp_password_secret = j.at("smtp_password_secret").get<std::string>();
    c.starttls = j.at("starttls").get<bool>();
    c.from = j.at("from").get<std::string>();
    c.to = j.at("to").get<std::vector<std::string>>();
    c.timeout = Millis(j.at("timeout_ms").get<int64_t>());
    c.retry_horizon = Millis(j.at("retry_horizon_ms").get<int64_t>());
  } catch (const json::exception& e) {
    return fail(Errc::kInvalidArgument, std::string("hand-off: channel: ") + e.what());
  }
  return c;
}

// An environment name is a file name here: the config's rule, checked again.
bool safe_name(const std::string& s) {
  return !s.empty() && s.size() <= 64 && s[0] != '.' && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

}  // namespace

secrets::SecretMap channel_secrets(const config::Notifications& n, const secrets::SecretMap& all) {
  secrets::SecretMap out;
  auto take = [&](const std::string& name) {
    if (name.empty()) return;
    if (auto it = all.find(name); it != all.end()) out.emplace(name, it->second);
  };
  for (const config::Channel& c : n.channels) {
    take(c.url_secret);
    take(c.smtp_password_secret);
    for (const std::string& s : c.signing_secrets) take(s);
  }
  return out;
}

std::string handoff_json(const Handoff& h) {
  json channels = json::array();
  for (const config::Channel& c : h.target.notifications.channels)
    channels.push_back(channel_json(c));
  json values = json::object();
  // WHY reveal: this text goes to the agent's private socket and its 0600
  // file only (see the hand-off section of notify.h).
  for (const auto& [name, value] : h.target.secrets) values[name] = value.reveal();
  json j = {{"format", 1},
            {"store", h.store_url},
            {"environment", h.target.environment},
            {"dashboard_url", h.target.notifications.dashboard_url},
            {"channels", std::move(channels)},
            {"secrets", std::move(values)}};
  return to_json_text(j);
}

Result<Handoff> parse_handoff(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return fail(Errc::kInvalidArgument, "hand-off: not a JSON object");
  Handoff h;
  try {
    if (j.at("format").get<int>() != 1)
      return fail(Errc::kInvalidArgument, "hand-off: unknown format");
    h.store_url = j.at("store").get<std::string>();
    h.target.environment = j.at("environment").get<std::string>();
    h.target.notifications.dashboard_url = j.at("dashboard_url").get<std::string>();
    for (const json& c : j.at("channels"))
      h.target.notifications.channels.push_back(MD_TRY(parse_channel(c)));
    for (const auto& [name, value] : j.at("secrets").items())
      h.target.secrets.emplace(name, secrets::Secret(value.get<std::string>()));
  } catch (const json::exception& e) {
    // WHY not e.what() alone: it never holds a value, only a field or type.
    return fail(Errc::kInvalidArgument, std::string("hand-off: ") + e.what());
  }
  if (!safe_name(h.target.environment))
    return fail(Errc::kInvalidArgument, "hand-off: bad environment name");
  if (h.store_url.empty()) return fail(Errc::kInvalidArgument, "hand-off: field 'store' is empty");
  return h;
}

struct Courier::Impl {
  struct Running {
    std::string text;  // the hand-off it runs, to skip identical ones
    std::unique_ptr<state::Store> store;
    std::unique_ptr<Dispatcher> dispatcher;
  };
  Impl(std::filesystem::path d, Transport& t, DispatcherOptions o, Clock& c)
      : dir(std::move(d)), transport(t), options(std::move(o)), clock(c) {
    // WHY the lease TTL: rows of a command that died before its finishing
    // hand-off wait for its lease to lapse anyway; live commands wake us.
    if (options.idle_interval <= Millis(0)) options.idle_interval = options.lease_ttl;
  }

  std::filesystem::path dir;
  Transport& transport;
  DispatcherOptions options;
  Clock& clock;
  mutable std::mutex mu;  // guards running
  std::map<std::string, Running> running;

  Status run(const Handoff& h, std::string text) {
    std::lock_guard lock(mu);
    auto it = running.find(h.target.environment);
    if (it != running.end() && it->second.text == text) {
      // The command that hands it over again has written rows: look now.
      it->second.dispatcher->wake();
      return ok();
    }
    Running r;
    r.text = std::move(text);
    r.store = MD_TRY_CTX(state::open_store(h.store_url, clock), "state store");
    if (it != running.end()) running.erase(it);  // stops the old Dispatcher first
    r.dispatcher = std::make_unique<Dispatcher>(*r.store, transport, std::vector<Target>{h.target},
                                                options, clock);
    r.dispatcher->start();
    kLog.info("sending the notifications of environment {} (store {})", h.target.environment,
              r.store->describe());
    running[h.target.environment] = std::move(r);
    return ok();
  }
};

Courier::Courier(std::filesystem::path dir, Transport& transport, DispatcherOptions options,
                 Clock& clock)
    : impl_(std::make_unique<Impl>(std::move(dir), transport, std::move(options), clock)) {}

Courier::~Courier() { stop(); }

void Courier::load() {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(impl_->dir, ec)) {
    if (e.path().extension() != ".json") continue;
    auto text = fs::read_file(e.path());
    if (!text) {
      kLog.warn("notification hand-off {}: {}", e.path().string(), text.error().what());
      continue;
    }
    auto h = parse_handoff(*text);
    if (!h) {
      kLog.warn("notification hand-off {}: {}", e.path().string(), h.error().what());
      continue;
    }
    if (auto st = impl_->run(*h, *text); !st)
      kLog.warn("notification hand-off {}: {}", e.path().string(), st.error().what());
  }
}

Status Courier::accept(const Handoff& h) {
  std::string text = handoff_json(h);
  MD_TRY_STATUS(fs::ensure_dir(impl_->dir, 0700));
  MD_TRY_STATUS(fs::atomic_write(impl_->dir / (h.target.environment + ".json"), text, 0600));
  return impl_->run(h, std::move(text));
}

std::vector<std::string> Courier::environments() const {
  std::lock_guard lock(impl_->mu);
  std::vector<std::string> out;
  for (const auto& [name, r] : impl_->running) out.push_back(name);
  return out;
}

void Courier::stop() {
  std::map<std::string, Impl::Running> gone;
  {
    std::lock_guard lock(impl_->mu);
    gone.swap(impl_->running);
  }
  for (auto& [name, r] : gone) r.dispatcher->stop();
}

}  // namespace md::notify
