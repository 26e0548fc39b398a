// A Host that rides out agent restarts: retryable errors are retried.
#include <fmt/format.h>

#include "deploy/adapters.h"

namespace md::deploy {
namespace {

class RetryingHost : public Host {
 public:
  RetryingHost(std::unique_ptr<Host> inner, Clock& clock, Millis patience,
               std::function<void(const std::string&)> on_retry)
      : inner_(std::move(inner)),
        clock_(clock),
        patience_(patience),
        on_retry_(std::move(on_retry)) {}

  std::string name() const override { return inner_->name(); }
  Result<HostView> view() override {
    return again("status", [&] { return inner_->view(); });
  }
  Status ship(const std::string& v, const std::filesystem::path& a, const std::string& s) override {
    return again("ship", [&] { return inner_->ship(v, a, s); });
  }
  Status start(const std::string& v, Role r, const LaunchSpec& spec) override {
    return again("start", [&] { return inner_->start(v, r, spec); });
  }
  Result<Millis> route(const std::map<std::string, int>& w) override {
    return again("route", [&] { return inner_->route(w); });
  }
  Result<std::map<std::string, SetMetrics>> metrics() override {
    return again("metrics", [&] { return inner_->metrics(); });
  }
  Status drain(const std::string& v, Millis t) override {
    return again("drain", [&] { return inner_->drain(v, t); });
  }
  Status stop(const std::string& v, Role r) override {
    return again("stop", [&] { return inner_->stop(v, r); });
  }
  Result<SysTime> keep_warm(const std::string& v, Millis window) override {
    return again("keep-warm", [&] { return inner_->keep_warm(v, window); });
  }
  Result<std::vector<std::string>> prune(int keep, const std::vector<std::string>& p) override {
    return again("prune", [&] { return inner_->prune(keep, p); });
  }

 private:
  template <class F>
  auto again(const char* what, F f) -> decltype(f()) {
    const MonoTime end = clock_.mono() + patience_;
    Millis delay{100};
    bool told = false;
    for (;;) {
      auto r = f();
      if (r) reached_ = true;
      // WHY only once reached: an agent that was never up is a setup
      // problem to report at once, not a restart to wait out.
      if (r || !reached_ || !r.error().retryable() || clock_.mono() + delay >= end) return r;
      if (!told && on_retry_) {
        on_retry_(fmt::format("agent call {} failed ({}); retrying for up to {}s", what,
                              r.error().what(), patience_.count() / 1000));
        told = true;
      }
      clock_.sleep_for(delay);
      delay = std::min(delay * 2, Millis(1000));
    }
  }

  std::unique_ptr<Host> inner_;
  Clock& clock_;
  Millis patience_;
  std::function<void(const std::string&)> on_retry_;
  bool reached_ = false;  // some call succeeded
};

}  // namespace

std::unique_ptr<Host> with_retries(std::unique_ptr<Host> inner, Clock& clock, Millis patience,
                                   std::function<void(const std::string&)> on_retry) {
  return std::make_unique<RetryingHost>(std::move(inner), clock, patience, std::move(on_retry));
}

}  // namespace md::deploy
