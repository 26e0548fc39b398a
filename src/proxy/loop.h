// One epoll event loop per thread: edge-triggered fds registered once,
// timeout lists with O(1) re-arming, one-shot timers, and tasks posted from
// other threads. Internal to src/proxy.
//
// Concurrency: everything but post() and stop() runs on the loop's thread.
#pragma once

#include <sys/epoll.h>
#include <sys/uio.h>

#include <cstdint>
#include <functional>
#include <mutex>
#include <queue>
#include <vector>

#include "core/error.h"

namespace md::proxy {

// An intrusive doubly linked list node; unlinked when next == this. `owner`
// points at the object that contains it (set by that object).
struct Link {
  Link* prev = this;
  Link* next = this;
  void* owner = nullptr;
  bool linked() const { return next != this; }
  void unlink() {
    prev->next = next;
    next->prev = prev;
    prev = next = this;
  }
  // Inserts `n` before this node (this is the list head: appends at the tail).
  void push_back(Link* n) {
    n->prev = prev;
    n->next = this;
    prev->next = n;
    prev = n;
  }
  bool empty() const { return next == this; }
};

// The object that contains a Link.
template <class T>
T* owner_of(Link* l) {
  return static_cast<T*>(l->owner);
}

class Loop;

// Something with an fd in the loop, or a timer slot, or both.
class Handler {
 public:
  Handler() { timer_link.owner = this; }
  Handler(const Handler&) = delete;
  Handler& operator=(const Handler&) = delete;
  virtual ~Handler() { timer_link.unlink(); }
  // `events` are EPOLL* bits. Called on the loop thread.
  virtual void on_io(uint32_t events) = 0;
  // The timeout list this handler was in expired.
  virtual void on_timeout() {}
  // Batched reads (Loop::set_prefetch): if this handler would read its fd
  // now, it names the buffer (and returns the fd), else -1. prefetched()
  // gets the recv result before on_io() runs for the same event.
  virtual int prefetch_read(iovec* /*into*/) { return -1; }
  virtual void prefetched(int /*res*/) {}

  Link timer_link;          // in one TimeoutList at a time
  int64_t deadline_ms = 0;  // when the current timeout fires
};

// Handlers whose timeout is `duration` after they were (re)armed. Because the
// duration is the same for all, appending keeps the list sorted by deadline,
// so arming, re-arming and cancelling are O(1).
class TimeoutList {
 public:
  explicit TimeoutList(int64_t duration_ms = 0) : duration_ms_(duration_ms) {}
  void set_duration(int64_t ms) { duration_ms_ = ms; }
  int64_t duration() const { return duration_ms_; }
  // (Re)arms `h` to fire at now + duration; removes it from any other list.
  void arm(Handler* h, int64_t now_ms) {
    h->timer_link.unlink();
    h->deadline_ms = now_ms + duration_ms_;
    head_.push_back(&h->timer_link);
  }
  bool empty() const { return head_.empty(); }
  Handler* front() const;
  Link head_;

 private:
  int64_t duration_ms_;
};
inline void disarm(Handler* h) { h->timer_link.unlink(); }

class Loop {
 public:
  Loop() = default;
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  Status init();
  // Registers `fd` once, edge-triggered for input, output and peer shutdown.
  // The fd stays registered until del() (or until its file is closed in
  // every process: see del).
  Status add(int fd, Handler* h, uint32_t events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
  // Removes `fd` from the loop; call it before closing a handler's fd.
  // WHY not rely on close(): epoll tracks the open file, not the fd. While a
  // release process is being spawned (posix_spawn: the child holds a copy of
  // every fd until its exec closes them) the file outlives close(), and its
  // events would name a handler already deleted.
  void del(int fd);

  // Runs until stop(). Each iteration: wait, dispatch events, expire
  // timeouts, run posted tasks, run deferred work.
  void run();
  // Thread-safe.
  void stop();
  // Runs `fn` on the loop thread soon. Thread-safe.
  void post(std::function<void()> fn);
  // Runs `fn` after the current event batch (e.g. deleting a closed handler
  // that a later event of the batch may still name).
  void defer(std::function<void()> fn) { deferred_.push_back(std::move(fn)); }
  // Deletes `h` after the current event batch. The caller has closed its fd
  // and makes on_io ignore late events.
  void retire(Handler* h) { graveyard_.push_back(h); }
  // Runs `fn` at loop time `at_ms` (one-shot; rare events only).
  void at(int64_t at_ms, std::function<void()> fn);

  // Runs `fn` after each event batch (and its deferred work) until it
  // returns false (nothing left to flush), at most a few rounds per
  // iteration; while it has work left, the next wait does not block.
  void set_flush(std::function<bool()> fn) { flush_ = std::move(fn); }
  // Runs `fn` on each event batch before the handlers see it.
  void set_prefetch(std::function<void(epoll_event*, int)> fn) { prefetch_ = std::move(fn); }

  void add_list(TimeoutList* l) { lists_.push_back(l); }
  // Monotonic milliseconds, refreshed once per iteration.
  int64_t now_ms() const { return now_ms_; }
  int64_t refresh_now();

 private:
  void run_posted();
  void expire();
  int next_timeout_ms() const;

  int epfd_ = -1;
  int evfd_ = -1;
  bool stop_ = false;
  int64_t now_ms_ = 0;
  std::vector<TimeoutList*> lists_;
  std::vector<std::function<void()>> deferred_;
  std::vector<Handler*> graveyard_;
  std::function<bool()> flush_;
  std::function<void(epoll_event*, int)> prefetch_;
  bool flush_left_ = false;
  struct Timer {
    int64_t at;
    uint64_t seq;
    std::function<void()> fn;
    bool operator>(const Timer& o) const { return at != o.at ? at > o.at : seq > o.seq; }
  };
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers_;
  uint64_t timer_seq_ = 0;
  std::mutex mu_;  // guards posted_ and stop requests from other threads
  std::vector<std::function<void()>> posted_;
  Handler* wake_handler_ = nullptr;
};

// Monotonic clock in milliseconds / microseconds (vDSO, no syscall).
int64_t mono_ms();
int64_t mono_us();

}  // namespace md::proxy
