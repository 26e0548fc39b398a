#include "proxy/loop.h"

#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace md::proxy {

int64_t mono_ms() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

int64_t mono_us() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

Handler* TimeoutList::front() const {
  return head_.empty() ? nullptr : owner_of<Handler>(head_.next);
}

namespace {
// The eventfd that wakes the loop for posted tasks.
class WakeHandler : public Handler {
 public:
  explicit WakeHandler(int fd) : fd_(fd) {}
  void on_io(uint32_t) override {
    uint64_t v;
    while (::read(fd_, &v, sizeof v) > 0) {
    }
  }

 private:
  int fd_;
};
}  // namespace

Loop::~Loop() {
  for (Handler* h : graveyard_) delete h;
  if (epfd_ >= 0) ::close(epfd_);
  if (evfd_ >= 0) ::close(evfd_);
  delete wake_handler_;
}

Status Loop::init() {
  epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) return fail(Errc::kIo, std::string("epoll_create1: ") + std::strerror(errno));
  evfd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (evfd_ < 0) return fail(Errc::kIo, std::string("eventfd: ") + std::strerror(errno));
  wake_handler_ = new WakeHandler(evfd_);
  MD_TRY_STATUS(add(evfd_, wake_handler_, EPOLLIN | EPOLLET));
  now_ms_ = mono_ms();
  return ok();
}

Status Loop::add(int fd, Handler* h, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = h;
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0)
    return fail(Errc::kIo, std::string("epoll_ctl: ") + std::strerror(errno));
  return ok();
}

void Loop::del(int fd) {
  epoll_event ev{};
  ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, &ev);
}

int64_t Loop::refresh_now() { return now_ms_ = mono_ms(); }

void Loop::post(std::function<void()> fn) {
  {
    std::lock_guard lock(mu_);
    posted_.push_back(std::move(fn));
  }
  uint64_t one = 1;
  ssize_t n = ::write(evfd_, &one, sizeof one);
  (void)n;
}

void Loop::stop() {
  post([this] { stop_ = true; });
}

void Loop::at(int64_t at_ms, std::function<void()> fn) {
  timers_.push(Timer{at_ms, timer_seq_++, std::move(fn)});
}

void Loop::run_posted() {
  std::vector<std::function<void()>> tasks;
  {
    std::lock_guard lock(mu_);
    tasks.swap(posted_);
  }
  for (auto& t : tasks) t();
}

int Loop::next_timeout_ms() const {
  if (flush_left_ || !deferred_.empty()) return 0;
  int64_t next = INT64_MAX;
  for (const TimeoutList* l : lists_)
    if (Handler* h = l->front(); h && h->deadline_ms < next) next = h->deadline_ms;
  if (!timers_.empty() && timers_.top().at < next) next = timers_.top().at;
  if (next == INT64_MAX) return -1;
  int64_t d = next - now_ms_;
  if (d <= 0) return 0;
  return d > 60000 ? 60000 : static_cast<int>(d);
}

void Loop::expire() {
  for (TimeoutList* l : lists_) {
    while (Handler* h = l->front()) {
      if (h->deadline_ms > now_ms_) break;
      h->timer_link.unlink();
      h->on_timeout();
    }
  }
  while (!timers_.empty() && timers_.top().at <= now_ms_) {
    auto fn = std::move(const_cast<Timer&>(timers_.top()).fn);
    timers_.pop();
    fn();
  }
}

void Loop::run() {
  constexpr int kMaxEvents = 256;
  epoll_event events[kMaxEvents];
  while (!stop_) {
    int n = ::epoll_wait(epfd_, events, kMaxEvents, next_timeout_ms());
    refresh_now();
    if (n < 0 && errno != EINTR) break;
    if (n > 0 && prefetch_) prefetch_(events, n);
    for (int i = 0; i < n; ++i) {
      auto* h = static_cast<Handler*>(events[i].data.ptr);
      if (h == wake_handler_) {
        h->on_io(events[i].events);
        run_posted();
        continue;
      }
      h->on_io(events[i].events);
    }
    expire();
    // WHY a bound: a fast stream would otherwise keep flushing and starve
    // the other connections' events.
    constexpr int kFlushRounds = 8;
    flush_left_ = false;
    for (int round = 0; round < kFlushRounds; ++round) {
      while (!deferred_.empty()) {
        std::vector<std::function<void()>> d;
        d.swap(deferred_);
        for (auto& fn : d) fn();
      }
      flush_left_ = flush_ && flush_();
      if (!flush_left_ && deferred_.empty()) break;
    }
    for (Handler* h : graveyard_) delete h;
    graveyard_.clear();
  }
}

}  // namespace md::proxy
