// Worker: the loop thread, accepting, pools of buffers/exchanges/upstream
// connections, adopting routing tables, stopping.
#include "proxy/worker.h"

#include <fcntl.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "core/guard.h"
#include "core/log.h"
#include "proxy/conn.h"

namespace md::proxy {

namespace {

constexpr int kMaxPooledPerTarget = 512;
constexpr size_t kMaxFreeBuffers = 1024;
constexpr size_t kMaxFreeExchanges = 4096;
constexpr int64_t kTickMs = 100;
constexpr int64_t kStopIdleLingerMs = 500;  // stopping: idle keep-alive connections get this long

constexpr int64_t kAcceptBackoffMs = 100;
constexpr int kMaxShedPerRound = 256;
constexpr int kEvictScan = 64;           // idle candidates looked at per eviction
constexpr int64_t kEmfileHeadroom = 16;  // descriptors a worker leaves free after EMFILE

bool out_of_descriptors(int e) { return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM; }

// A descriptor kept open for the moment the process has none left: closing
// it lets accept() take a pending connection so that it can be closed at
// once, instead of leaving it in the backlog where it wakes us forever (as
// nginx and HAProxy do).
int open_reserve() { return ::open("/dev/null", O_RDONLY | O_CLOEXEC); }

class Acceptor : public Handler {
 public:
  Acceptor(Worker* w, ListenSocket ls) : w_(w), ls_(ls), reserve_(open_reserve()) {}
  ~Acceptor() override {
    if (ls_.fd >= 0) ::close(ls_.fd);
    if (reserve_ >= 0) ::close(reserve_);
  }
  void close_socket() {
    if (ls_.fd >= 0) ::close(ls_.fd);
    ls_.fd = -1;
  }
  void on_io(uint32_t) override {
    if (paused_) return;
    while (ls_.fd >= 0) {
      sockaddr_storage peer{};
      socklen_t len = sizeof peer;
      int fd =
          ::accept4(ls_.fd, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EAGAIN) return;
        if (out_of_descriptors(errno)) {
          // The cap was set above what the process can hold: lower this
          // worker's share below the point of exhaustion and close idle
          // connections down to it, which leaves descriptors for the
          // control socket and health checks and room for the one waiting.
          if (lower_cap(errno)) continue;
          shed(errno);
          return;
        }
        w_->warn_throttled(std::string("accept failed: ") + std::strerror(errno),
                           ls_.state->address);
        return;
      }
      if (!admit()) {
        ::close(fd);
        continue;
      }
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      auto* c = new ClientConn(w_, fd, ls_, peer);
      if (!w_->loop().add(fd, c)) c->close();
    }
  }

 private:
  // Room for one more client connection on this listener: under the cap, or
  // an idle connection closed to make room.
  bool admit() {
    ListenerState& st = *ls_.state;
    if (ls_.open < std::min(st.max_per_worker, lowered_cap_)) return true;
    if (w_->evict_idle_client(&st)) return true;
    w_->warn_throttled("client connection limit reached and none idle: refusing new connections",
                       st.address);
    return false;
  }

  // After EMFILE: caps this worker's connections on the listener at what it
  // holds less kEmfileHeadroom, and closes idle ones down to that. True if
  // any was closed (a descriptor is free for the connection waiting).
  bool lower_cap(int err) {
    int64_t cap = std::max<int64_t>(1, ls_.open - kEmfileHeadroom);
    if (cap < lowered_cap_) {
      lowered_cap_ = cap;
      log::Logger("proxy").warn(std::string("accept: ") + std::strerror(err) +
                                    ": connection cap above what the open-file limit allows; "
                                    "lowered for this worker",
                                {{"listener", ls_.state->address},
                                 {"worker", std::to_string(w_->index())},
                                 {"max_connections", std::to_string(cap)}});
    }
    bool freed = false;
    while (ls_.open > lowered_cap_ - 1 && w_->evict_idle_client(ls_.state)) freed = true;
    return freed;
  }

  // Out of descriptors: close idle connections, accept-and-close what waits
  // (with the reserve descriptor), and stop accepting for a moment. Existing
  // connections keep working.
  void shed(int err) {
    w_->warn_throttled(std::string("accept: ") + std::strerror(err) +
                           "; no idle connection to close: shedding new connections",
                       ls_.state->address);
    for (int i = 0; i < kMaxShedPerRound && ls_.fd >= 0; ++i) {
      if (reserve_ >= 0) ::close(reserve_);
      int fd = ::accept4(ls_.fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) ::close(fd);
      reserve_ = open_reserve();
      if (fd < 0 && errno != EINTR && errno != ECONNABORTED) break;
    }
    paused_ = true;
    w_->loop().at(w_->loop().now_ms() + kAcceptBackoffMs, [this] {
      paused_ = false;
      on_io(EPOLLIN);
    });
  }

  Worker* w_;
  ListenSocket ls_;
  int reserve_ = -1;
  bool paused_ = false;
  int64_t lowered_cap_ = INT64_MAX;  // after EMFILE (lower_cap())
};

}  // namespace

void WsFrames::feed(const char* p, size_t n) {
  while (n > 0) {
    if (payload_left > 0) {
      uint64_t take = n < payload_left ? n : payload_left;
      payload_left -= take;
      p += take;
      n -= static_cast<size_t>(take);
      continue;
    }
    hdr[have++] = static_cast<uint8_t>(*p++);
    --n;
    if (have == 2) {
      uint8_t len7 = hdr[1] & 0x7f;
      need = static_cast<uint8_t>(2 +
                                  (len7 == 126   ? 2
                                   : len7 == 127 ? 8
                                                 : 0) +
                                  ((hdr[1] & 0x80) ? 4 : 0));
    }
    if (have >= 2 && have == need) {
      uint8_t len7 = hdr[1] & 0x7f;
      uint64_t len = len7;
      if (len7 == 126) len = (uint64_t{hdr[2]} << 8) | hdr[3];
      if (len7 == 127) {
        len = 0;
        for (int i = 2; i < 10; ++i) len = (len << 8) | hdr[i];
      }
      payload_left = len;
      have = 0;
      need = 2;
    }
  }
}

size_t OutQueue::bytes() const {
  size_t n = 0;
  for (size_t k = i; k < v.size(); ++k) n += v[k].iov_len;
  return n;
}

void OutQueue::consume(size_t n) {
  while (n > 0 && i < v.size()) {
    if (n >= v[i].iov_len) {
      n -= v[i].iov_len;
      ++i;
    } else {
      v[i].iov_base = static_cast<char*>(v[i].iov_base) + n;
      v[i].iov_len -= n;
      n = 0;
    }
  }
  while (i < v.size() && v[i].iov_len == 0) ++i;
}

void Exchange::reset() {
  // Keep the capacity of the containers; reset everything else.
  auto segs = std::move(head_segs);
  auto rx = std::move(req_extra);
  auto cv = std::move(cookie_value);
  auto uo = std::move(up_out.v);
  auto re = std::move(resp_extra);
  auto co = std::move(client_out.v);
  *this = Exchange();
  segs.clear();
  rx.clear();
  cv.clear();
  uo.clear();
  re.clear();
  co.clear();
  head_segs = std::move(segs);
  req_extra = std::move(rx);
  cookie_value = std::move(cv);
  up_out.v = std::move(uo);
  resp_extra = std::move(re);
  client_out.v = std::move(co);
}

Worker::Worker(int index, Shared* shared)
    : index_(index),
      shared_(shared),
      req_scratch_(std::make_unique<http::RequestHead>()),
      resp_scratch_(std::make_unique<http::ResponseHead>()),
      rng_(0x9E3779B97F4A7C15ull * static_cast<uint64_t>(index + 1) ^
           static_cast<uint64_t>(mono_us())) {
  const Timeouts& t = shared->timeouts;
  t_idle.set_duration(t.client_idle.count());
  t_header.set_duration(t.client_header.count());
  t_body.set_duration(t.client_body.count());
  t_send.set_duration(t.send.count());
  t_connect.set_duration(t.upstream_connect.count());
  t_response.set_duration(t.upstream_response.count());
  t_pool.set_duration(t.upstream_idle.count());
  t_tunnel.set_duration(t.tunnel_idle.count());
  t_linger.set_duration(5000);  // lingering close and WebSocket close handshakes
}

Worker::~Worker() {
  // The loop has ended: close what is left.
  while (!clients.empty()) owner_of<ClientConn>(clients.next)->close();
  while (!idle_ups.empty()) owner_of<UpstreamConn>(idle_ups.next)->close();
  acceptors_.clear();
  for (char* b : free_buffers_) delete[] b;
  for (Exchange* e : free_exchanges_) delete e;
}

Status Worker::init(const std::vector<ListenSocket>& listeners) {
  MD_TRY_STATUS(loop_.init());
  for (TimeoutList* l : {&t_idle, &t_header, &t_body, &t_send, &t_connect, &t_response, &t_pool,
                         &t_tunnel, &t_linger})
    loop_.add_list(l);
  for (const ListenSocket& ls : listeners) {
    auto a = std::make_unique<Acceptor>(this, ls);
    MD_TRY_STATUS(loop_.add(ls.fd, a.get(), EPOLLIN | EPOLLET));
    acceptors_.push_back(std::move(a));
  }
  {
    std::lock_guard lock(shared_->table_mu);
    table_ = shared_->table;
    generation_ = table_ ? table_->generation : 0;
  }
  return ok();
}

void Worker::start() {
  thread_ = std::thread([this] {
    // WHY on the worker thread: the ring accepts submissions from the thread
    // that set it up only (IORING_SETUP_SINGLE_ISSUER).
    if (shared_->batch_writes && batch_.init()) {
      loop_.set_flush([this] { return flush_writes(); });
      loop_.set_prefetch([this](epoll_event* ev, int n) { prefetch_reads(ev, n); });
    }
    // The data path does not throw; should anything (bad_alloc) escape, the
    // worker logs it and goes on serving: an exception must never end the
    // process.
    const std::string what = "proxy worker " + std::to_string(index_);
    while (!guarded(log::Logger("proxy"), what, [&] { loop_.run(); })) {
    }
  });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

const std::shared_ptr<const RouteTable>& Worker::table() {
  uint64_t g = shared_->generation.load(std::memory_order_acquire);
  if (g != generation_) {
    std::lock_guard lock(shared_->table_mu);
    table_ = shared_->table;
    generation_ = table_->generation;
  }
  return table_;
}

void Worker::notify_table(std::function<void()> done) {
  loop_.post([this, done = std::move(done)] {
    adopt_table();
    if (done) done();
  });
}

void Worker::adopt_table() {
  table();
  close_unused_pools();
  for (Link* l = clients.next; l != &clients;) {
    auto* c = owner_of<ClientConn>(l);
    l = l->next;
    c->table_changed();
  }
}

void Worker::close_unused_pools() {
  for (Link* l = idle_ups.next; l != &idle_ups;) {
    auto* u = owner_of<UpstreamConn>(l);
    l = l->next;
    if (!u->target->in_use.load(std::memory_order_relaxed)) u->close();
  }
}

bool Worker::evict_idle_client(const ListenerState* listener) {
  // Keep-alive connections between requests first (they were served), then
  // connections that never sent a byte; oldest first in both lists.
  for (TimeoutList* list : {&t_idle, &t_header}) {
    int looked = 0;
    for (Link* l = list->head_.next; l != &list->head_ && looked < kEvictScan;
         l = l->next, ++looked) {
      auto* c = static_cast<ClientConn*>(owner_of<Handler>(l));
      if (c->listener() == listener && c->idle()) {
        c->close();
        return true;
      }
    }
  }
  return false;
}

void Worker::warn_throttled(std::string_view msg, std::string_view listener) {
  int64_t now = loop_.now_ms();
  if (now - last_warn_ms_ < 10000) {
    ++warn_suppressed_;
    return;
  }
  log::Logger("proxy").warn(msg, {{"listener", std::string(listener)},
                                  {"worker", std::to_string(index_)},
                                  {"suppressed_since_last", std::to_string(warn_suppressed_)}});
  last_warn_ms_ = now;
  warn_suppressed_ = 0;
}

UpstreamConn* Worker::take_pooled(TargetState* t) {
  PoolSlot& slot = t->pools[index_];
  while (!slot.idle.empty()) {
    auto* u = owner_of<UpstreamConn>(slot.idle.next);
    u->pool_link.unlink();
    u->idle_link.unlink();
    slot.count--;
    disarm(u);
    if (u->readable || u->failed || u->eof) {
      u->close();
      continue;
    }
    return u;
  }
  return nullptr;
}

void Worker::put_pooled(UpstreamConn* u) {
  PoolSlot& slot = u->target->pools[index_];
  if (slot.count >= kMaxPooledPerTarget) {
    u->close();
    return;
  }
  if (u->in.data) {
    put_buffer(u->in.data);
    u->in.data = nullptr;
    u->in.start = u->in.end = 0;
  }
  u->scan = 0;
  slot.idle.push_back(&u->pool_link);
  slot.count++;
  idle_ups.push_back(&u->idle_link);
  t_pool.arm(u, loop_.now_ms());
}

int Worker::queue_write(ClientConn* c, int fd, OutQueue* q, uint8_t dir) {
  pending_.push_back(PendingWrite{c, fd, q, dir});
  return static_cast<int>(pending_.size() - 1);
}

void Worker::cancel_write(int handle) {
  if (handle >= 0 && static_cast<size_t>(handle) < pending_.size())
    pending_[static_cast<size_t>(handle)].c = nullptr;
}

bool Worker::flush_writes() {
  if (pending_.empty()) return false;
  inflight_.clear();
  inflight_.swap(pending_);
  batch_fds_.clear();
  batch_msgs_.clear();
  batch_want_.clear();
  size_t live = 0;
  for (PendingWrite& p : inflight_) {
    if (!p.c) continue;
    p.c->write_submitted();
    OutQueue& q = *p.q;
    size_t cnt = q.v.size() - q.i;
    if (cnt > IOV_MAX) cnt = IOV_MAX;
    msghdr m{};
    m.msg_iov = &q.v[q.i];
    m.msg_iovlen = cnt;
    size_t want = 0;
    for (size_t k = 0; k < cnt; ++k) want += q.v[q.i + k].iov_len;
    batch_fds_.push_back(p.fd);
    batch_msgs_.push_back(m);
    batch_want_.push_back(want);
    inflight_[live++] = p;
  }
  inflight_.resize(live);
  batch_results_.assign(live, 0);
  if (live > 0)
    batch_.send_all(batch_fds_.data(), batch_msgs_.data(), static_cast<int>(live),
                    batch_results_.data());
  // Every send has completed: resume the connections (which may queue more).
  for (size_t k = 0; k < live; ++k)
    inflight_[k].c->write_done(inflight_[k].dir, batch_results_[k], batch_want_[k]);
  inflight_.clear();
  if (!batch_.ready()) {
    // The ring failed: writes queued by the resumed connections go out one
    // by one (batching() is false from now on, so drive() writes itself).
    std::vector<PendingWrite> left;
    left.swap(pending_);
    for (PendingWrite& p : left) {
      if (!p.c) continue;
      p.c->write_submitted();
      p.c->write_unsent();
    }
  }
  return !pending_.empty();
}

void Worker::prefetch_reads(epoll_event* events, int n) {
  if (!batch_.ready()) return;
  rd_handlers_.clear();
  rd_bufs_.clear();
  batch_fds_.clear();
  for (int i = 0; i < n; ++i) {
    uint32_t e = events[i].events;
    // Errors and shutdowns keep the plain path (their reads are rare).
    if (!(e & EPOLLIN) || (e & (EPOLLERR | EPOLLHUP | EPOLLRDHUP))) continue;
    auto* h = static_cast<Handler*>(events[i].data.ptr);
    iovec v{};
    int fd = h->prefetch_read(&v);
    if (fd < 0) continue;
    rd_handlers_.push_back(h);
    rd_bufs_.push_back(v);
    batch_fds_.push_back(fd);
  }
  // WHY at least two: one recv through the ring costs what one read costs.
  if (rd_handlers_.size() < 2) return;
  batch_results_.assign(rd_handlers_.size(), 0);
  batch_.recv_all(batch_fds_.data(), rd_bufs_.data(), static_cast<int>(rd_handlers_.size()),
                  batch_results_.data());
  for (size_t k = 0; k < rd_handlers_.size(); ++k) rd_handlers_[k]->prefetched(batch_results_[k]);
}

char* Worker::get_buffer() {
  if (free_buffers_.empty()) return new char[shared_->buffer_size];
  char* b = free_buffers_.back();
  free_buffers_.pop_back();
  return b;
}

void Worker::put_buffer(char* b) {
  if (free_buffers_.size() < kMaxFreeBuffers) {
    free_buffers_.push_back(b);
  } else {
    delete[] b;
  }
}

Exchange* Worker::get_exchange() {
  if (free_exchanges_.empty()) return new Exchange();
  Exchange* e = free_exchanges_.back();
  free_exchanges_.pop_back();
  return e;
}

void Worker::put_exchange(Exchange* e) {
  e->reset();
  if (free_exchanges_.size() < kMaxFreeExchanges) {
    free_exchanges_.push_back(e);
  } else {
    delete e;
  }
}

uint64_t Worker::random() {
  // xorshift64*
  rng_ ^= rng_ >> 12;
  rng_ ^= rng_ << 25;
  rng_ ^= rng_ >> 27;
  return rng_ * 2685821657736338717ull;
}

void Worker::begin_stop(int64_t grace_ms) {
  loop_.post([this, grace_ms] {
    stopping = true;
    stop_deadline_ms_ = loop_.now_ms() + grace_ms;
    // WHY not close idle keep-alive connections at once: a client (wrk, a
    // pooling HTTP client) may be sending its next request right now; closing
    // under it fails that request. One still idle after the linger is closed;
    // a request that arrives meanwhile is answered with `Connection: close`.
    idle_close_at_ms_ = loop_.now_ms() + std::min<int64_t>(grace_ms, kStopIdleLingerMs);
    for (auto& a : acceptors_) static_cast<Acceptor*>(a.get())->close_socket();
    while (!idle_ups.empty()) owner_of<UpstreamConn>(idle_ups.next)->close();
    check_stop();
  });
}

void Worker::arm_tick() {
  if (tick_armed_) return;
  tick_armed_ = true;
  loop_.at(loop_.now_ms() + kTickMs, [this] { check_stop(); });
}

// Runs on ticks while requests are held or the worker stops: expires held
// requests; ends the loop when stopping is done. WHY not always: an idle
// worker ticking 10 times a second kept the agent from ever sleeping.
void Worker::check_stop() {
  tick_armed_ = false;
  int64_t now = loop_.now_ms();
  for (Link* l = held.next; l != &held;) {
    auto* c = owner_of<ClientConn>(l);
    l = l->next;
    const Exchange* e = c->exchange();
    if (e && e->svc && now - c->held_since_ms >= e->svc->pause.max_wait.count()) c->held_expired();
  }
  if (stopping) {
    if (now >= idle_close_at_ms_)
      for (Link* l = clients.next; l != &clients;) {
        auto* c = owner_of<ClientConn>(l);
        l = l->next;
        if (c->idle()) c->close();
      }
    if (clients.empty() || now >= stop_deadline_ms_) {
      while (!clients.empty()) owner_of<ClientConn>(clients.next)->close();
      while (!idle_ups.empty()) owner_of<UpstreamConn>(idle_ups.next)->close();
      loop_.stop();
      return;
    }
    tick_armed_ = true;
    loop_.at(now + 20, [this] { check_stop(); });
    return;
  }
  if (!held.empty()) arm_tick();
}

}  // namespace md::proxy
