// ClientConn: one client connection's state machine. Reads and parses
// request heads in place, routes, forwards to an UpstreamConn, streams both
// bodies, tunnels upgrades, answers locally when it must.
//
// Edge-triggered I/O: `readable_`/`writable_` remember readiness; a read
// that returns less than asked clears readable (the socket is drained), so
// no read is tried that would only return EAGAIN.
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <utility>

#include "proxy/conn.h"
#include "proxy/local_responses.h"

namespace md::proxy {

using http::BodyKind;
using http::ChunkedScanner;

namespace {

constexpr int kDriveGuard = 512;

bool is_xf_header(std::string_view name, bool* is_xff) {
  if (name.size() < 15 || (name[0] | 0x20) != 'x') return false;
  if (http::iequals(name, "x-forwarded-for")) {
    *is_xff = true;
    return true;
  }
  return http::iequals(name, "x-forwarded-proto") || http::iequals(name, "x-forwarded-host");
}

}  // namespace
ClientConn::ClientConn(Worker* w, int fd, const ListenSocket& ls, const sockaddr_storage& peer)
    : w_(w), fd_(fd), ls_(&ls), state_(ls.tls ? State::kHandshake : State::kHead) {
  link.owner = this;
  held_link.owner = this;
  ip_[0] = 0;
  if (peer.ss_family == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&peer)->sin_addr, ip_, sizeof ip_);
  } else if (peer.ss_family == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&peer)->sin6_addr, ip_,
                sizeof ip_);
  }
  ip_len_ = static_cast<uint8_t>(std::strlen(ip_));
  if (ls.tls) ssl_ = tls_new(*ls.tls_ctx, fd);
  w_->clients.push_back(&link);
  w_->shared().client_connections.fetch_add(1, std::memory_order_relaxed);
  if (ls_->state) ls_->state->connections.fetch_add(1, std::memory_order_relaxed);
  ++ls_->open;
  // A new connection gets the header timeout for its first request.
  w_->t_header.arm(this, w_->loop().now_ms());
}

ClientConn::~ClientConn() {}

void ClientConn::on_io(uint32_t ev) {
  if (state_ == State::kClosed) return;
  if (ev & (EPOLLERR | EPOLLHUP)) {
    // Reset by the peer (or both directions shut): nothing more can be delivered.
    close();
    return;
  }
  // WHY the exchange: prefetched() already read what this edge announced
  // and set readable_ from the result.
  if ((ev & EPOLLIN) && !std::exchange(was_prefetched_, false)) readable_ = true;
  if (ev & EPOLLRDHUP) {
    readable_ = true;  // the read returns 0: end of stream
    rdhup_ = true;
  }
  if (ev & EPOLLOUT) writable_ = true;
  drive();
}

void ClientConn::drive() {
  for (int i = 0; i < kDriveGuard; ++i) {
    if (pend_ != kPendNone) return;  // a batched write is queued: write_done() resumes
    bool progress = false;
    switch (state_) {
      case State::kHandshake:
        progress = step_handshake();
        break;
      case State::kHead:
        progress = step_head();
        break;
      case State::kHeld:
        return;
      case State::kProxy:
        progress = step_proxy();
        break;
      case State::kLocal:
        progress = step_local();
        break;
      case State::kTunnel:
        progress = step_tunnel();
        break;
      case State::kLinger:
        progress = step_linger();
        break;
      case State::kClosed:
        return;
    }
    if (!progress) return;
  }
  // A very busy pair: let the other connections run, then continue.
  w_->loop().defer([this] { drive(); });
}

// ---------------------------------------------------------------- I/O

int ClientConn::prefetch_read(iovec* into) {
  if (state_ != State::kHead || ssl_ || ex_ || peer_eof_ || rdhup_ || pend_ != kPendNone ||
      in_.size() != 0 || w_->stopping)
    return -1;
  if (!in_.data) in_.data = w_->get_buffer();
  in_.start = in_.end = 0;
  scan_ = 0;
  *into = iovec{in_.data, w_->shared().buffer_size};
  return fd_;
}

void ClientConn::prefetched(int res) {
  // As read_some() would have left it; EOF and errors are left to the
  // plain read (which sees them again).
  was_prefetched_ = true;
  if (res > 0) {
    in_.end = static_cast<size_t>(res);
    readable_ = static_cast<size_t>(res) == w_->shared().buffer_size;
  } else {
    readable_ = res != -EAGAIN;
  }
}

bool ClientConn::upstream_read_ok() const {
  return state_ == State::kProxy && ex_ && ex_->client_out.empty() && !ex_->resp_done &&
         pend_ == kPendNone;
}

ssize_t ClientConn::read_some() {
  if (!in_.data) {
    in_.data = w_->get_buffer();
    in_.start = in_.end = 0;
  }
  size_t cap = w_->shared().buffer_size;
  if (in_.end == cap && in_.start > 0) {
    std::memmove(in_.data, in_.data + in_.start, in_.end - in_.start);
    if (ex_) {
      ex_->req_off -= in_.start;
      ex_->req_end = ex_->req_end >= in_.start ? ex_->req_end - in_.start : 0;
    }
    queued_upto_ = queued_upto_ >= in_.start ? queued_upto_ - in_.start : 0;
    in_.end -= in_.start;
    in_.start = 0;
  }
  size_t room = cap - in_.end;
  if (room == 0) return -1;
  ssize_t n;
  if (ssl_) {
    n = tls_read(ssl_, in_.data + in_.end, room);
    if (n == kTlsAgain) {
      readable_ = false;
      return -1;
    }
    if (n == kTlsError) return -2;
  } else {
    n = ::read(fd_, in_.data + in_.end, room);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) {
        readable_ = errno == EINTR;
        return -1;
      }
      return -2;
    }
    // A short read drained the socket: wait for the next edge (but a FIN
    // announced with the data has no edge of its own).
    if (static_cast<size_t>(n) < room && !rdhup_) readable_ = false;
  }
  if (n == 0) {
    peer_eof_ = true;
    readable_ = false;
    return 0;
  }
  in_.end += static_cast<size_t>(n);
  return n;
}

ssize_t ClientConn::write_out(OutQueue& q) {
  size_t total = 0;
  while (!q.empty() && writable_) {
    ssize_t n;
    if (ssl_) {
      const iovec& v = q.v[q.i];
      n = tls_write(ssl_, static_cast<const char*>(v.iov_base), v.iov_len);
      if (n == kTlsAgain) {
        writable_ = false;
        break;
      }
      if (n == kTlsError) return -2;
    } else {
      int cnt = static_cast<int>(q.v.size() - q.i);
      if (cnt > IOV_MAX) cnt = IOV_MAX;
      size_t want = q.bytes();
      n = send_iov(fd_, &q.v[q.i], cnt);
      if (n < 0) {
        if (errno == EAGAIN) {
          writable_ = false;
          break;
        }
        if (errno == EINTR) continue;
        return -2;
      }
      if (static_cast<size_t>(n) < want) writable_ = false;
    }
    q.consume(static_cast<size_t>(n));
    total += static_cast<size_t>(n);
  }
  if (!q.empty() && !writable_) w_->t_send.arm(this, w_->loop().now_ms());
  return static_cast<ssize_t>(total);
}

void ClientConn::release_buffer_if_empty() {
  if (in_.data && in_.start == in_.end) {
    w_->put_buffer(in_.data);
    in_.data = nullptr;
    in_.start = in_.end = 0;
    scan_ = 0;
  }
}

// ---------------------------------------------------------------- states

bool ClientConn::step_handshake() {
  ssize_t r = tls_handshake(ssl_);
  if (r == 1) {
    state_ = State::kHead;
    readable_ = true;  // TLS may already hold application data
    return true;
  }
  if (r == kTlsAgain) return false;
  close();
  return false;
}

bool ClientConn::step_head() {
  // RFC 9112 2.2: ignore empty lines before a request line.
  while (in_.size() > 0 && (in_.data[in_.start] == '\r' || in_.data[in_.start] == '\n')) {
    ++in_.start;
    scan_ = 0;
  }
  if (in_.size() > 0) {
    if (!head_timer_) {
      head_timer_ = true;
      w_->t_header.arm(this, w_->loop().now_ms());
    }
    size_t hl = http::find_head_end(in_.data + in_.start, in_.size(), &scan_);
    if (hl == http::kHeadBareLf) {
      scan_ = 0;
      local_error(400, true);  // at once: no CRLFCRLF will end this head
      return true;
    }
    if (hl) {
      scan_ = 0;
      head_timer_ = false;
      disarm(this);
      start_request(hl, false);
      return true;
    }
    if (in_.size() >= w_->shared().limits.max_head_bytes) {
      local_error(431, true);
      return true;
    }
  } else {
    release_buffer_if_empty();
  }
  if (peer_eof_) {
    close();
    return false;
  }
  if (!readable_) return false;
  ssize_t n = read_some();
  if (n == -2) {
    close();
    return false;
  }
  return n != -1 || readable_;
}

void ClientConn::start_request(size_t hl, bool resumed) {
  http::RequestHead& h = w_->req_scratch();
  http::HeadLimits lim{w_->shared().limits.max_head_bytes, w_->shared().limits.max_headers};
  http::HeadError e = http::parse_request_head(in_.data + in_.start, hl, lim, &h);
  if (e != http::HeadError::kNone) {
    local_error(http::head_error_status(e), true);
    return;
  }
  if (!resumed) {
    ex_ = w_->get_exchange();
    ex_->start_us = mono_us();
    ++requests_;
  }
  Exchange* x = ex_;
  x->req_off = in_.start;
  x->head_len = hl;
  size_t ml = h.method.size() < sizeof x->method ? h.method.size() : sizeof x->method - 1;
  std::memcpy(x->method, h.method.data(), ml);
  x->method[ml] = 0;
  x->method_len = static_cast<uint8_t>(ml);
  x->idempotent = http::is_idempotent(h.method);
  x->is_head = h.method == "HEAD";
  x->client_http10 = h.version_minor == 0;
  x->client_keep_alive = h.keep_alive();
  x->expect_continue = (h.flags & http::kExpectContinue) != 0;
  x->upgrade = (h.flags & http::kConnUpgrade) && (h.flags & http::kHasUpgrade);
  if (x->upgrade) {
    const http::HeaderField* up = h.find("upgrade");
    x->websocket = up && http::iequals(up->value, "websocket");
  }
  x->req_body = h.body;
  x->req_content_length = h.content_length;
  if (!route(h)) return;
  build_forward_head(h);
  start_upstream();
}

// Chooses the service, the set and the target; answers locally when it
// cannot. Returns false when it answered (or held the request).
bool ClientConn::route(const http::RequestHead& h) {
  Exchange* x = ex_;
  x->table = w_->table();
  const ServiceRoute* svc = x->table->match(h.authority, h.path);
  if (!svc) {
    local_error(404, x->req_body != BodyKind::kNone);
    return false;
  }
  x->svc = svc;
  bool health_path = !svc->spec.health.path.empty() && h.path == svc->spec.health.path;
  if (svc->maintenance && !health_path) {
    bool close = !x->client_keep_alive || x->req_body != BodyKind::kNone || w_->stopping;
    count_local(503);
    local_raw(close ? svc->maintenance_response_close : svc->maintenance_response, close, x->table);
    return false;
  }
  if (svc->paused && !health_path) {
    if (!counted_held_) {
      int64_t n = svc->shared->held.fetch_add(1, std::memory_order_relaxed) + 1;
      if (n > svc->pause.max_held) {
        svc->shared->held.fetch_sub(1, std::memory_order_relaxed);
        count_local(503);
        local_error(503, true);
        return false;
      }
      counted_held_ = true;
      held_since_ms = w_->loop().now_ms();
    }
    state_ = State::kHeld;
    w_->held.push_back(&held_link);
    w_->arm_tick();  // it expires after pause.max_wait
    disarm(this);
    return false;
  }
  // Live or canary.
  TargetSet* set = svc->live.get();
  TargetSet* other = svc->canary.get();
  if (svc->canary && svc->canary_weight > 0) {
    int bucket = -1;
    if (!svc->spec.sticky_header.empty())
      if (const auto* f = h.find(svc->spec.sticky_header); f && !f->value.empty())
        bucket = sticky_bucket(f->value);
    if (bucket < 0 && !svc->spec.sticky_cookie.empty()) {
      for (size_t i = 0; i < h.num_headers && bucket < 0; ++i) {
        if (!http::iequals(h.headers[i].name, "cookie")) continue;
        std::string_view v = find_cookie(h.headers[i].value, svc->spec.sticky_cookie);
        if (v.size() >= 1 && v.size() <= 2 && std::isdigit(static_cast<unsigned char>(v[0])) &&
            (v.size() == 1 || std::isdigit(static_cast<unsigned char>(v[1]))))
          bucket = std::atoi(std::string(v).c_str());
      }
      if (bucket < 0) {
        bucket = static_cast<int>(w_->random() % 100);
        x->cookie_value = std::to_string(bucket);
      }
    }
    if (bucket < 0) bucket = static_cast<int>(w_->random() % 100);
    if (bucket < svc->canary_weight) std::swap(set, other);
  }
  int64_t now = w_->loop().now_ms();
  auto pick = [&](TargetSet* s) -> TargetState* {
    if (!s || s->targets.empty()) return nullptr;
    StatsShard& sh = s->stats.shard(w_->index());
    size_t n = s->targets.size();
    for (size_t k = 0; k < n; ++k) {
      TargetState* t = s->targets[(sh.rr + k) % n].get();
      if (t->usable(now)) {
        sh.rr += k + 1;
        return t;
      }
    }
    return nullptr;
  };
  TargetState* t = pick(set);
  if (!t && other) {
    // The chosen set has no usable target: the other one serves.
    t = pick(other);
    if (t) set = other;
  }
  if (!t) {
    count_local(503);
    local_error(503, x->req_body != BodyKind::kNone || !x->client_keep_alive);
    return false;
  }
  x->set = set;
  x->shard = &set->stats.shard(w_->index());
  StatsShard::bump(x->shard->active, 1);
  x->target = t;
  return true;
}

void ClientConn::build_forward_head(const http::RequestHead& h) {
  Exchange* x = ex_;
  x->head_segs.clear();
  x->req_extra.clear();
  uint32_t seg_start = 0;
  bool xff_seen = false;
  std::string& extra = x->req_extra;
  extra += "X-Forwarded-For: ";
  for (size_t i = 0; i < h.num_headers; ++i) {
    const http::HeaderField& f = h.headers[i];
    bool is_xff = false;
    // RFC 9112 3.2.2: for an absolute-form target, the Host sent on is the
    // target's authority, never the client's Host (which could otherwise
    // choose the Host a host-restricted backend sees).
    bool drop = is_xf_header(f.name, &is_xff) || h.is_hop_by_hop(f.name) ||
                ((h.flags & http::kAbsoluteForm) && http::iequals(f.name, "host"));
    if (!drop) continue;
    if (is_xff) {
      // Append to the chain the client sent.
      if (!f.value.empty()) {
        extra.append(f.value);
        extra += ", ";
      }
      xff_seen = true;
    }
    if (f.line_begin > seg_start) x->head_segs.emplace_back(seg_start, f.line_begin - seg_start);
    seg_start = f.line_end;
  }
  (void)xff_seen;
  uint32_t end = static_cast<uint32_t>(x->head_len - 2);
  if (end > seg_start) x->head_segs.emplace_back(seg_start, end - seg_start);
  extra.append(ip_, ip_len_);
  extra += ls_->tls ? "\r\nX-Forwarded-Proto: https\r\n" : "\r\nX-Forwarded-Proto: http\r\n";
  if (h.flags & http::kAbsoluteForm) {
    extra += "Host: ";
    extra.append(h.authority);
    extra += "\r\n";
  }
  if (!h.authority.empty()) {
    extra += "X-Forwarded-Host: ";
    extra.append(h.authority);
    extra += "\r\n";
  }
  if (x->upgrade) {
    const http::HeaderField* up = h.find("upgrade");
    extra += "Connection: upgrade\r\nUpgrade: ";
    extra.append(up->value);
    extra += "\r\n";
  }
  extra += "\r\n";
}

// ---------------------------------------------------------------- local answers

void ClientConn::count_local(int status) {
  if (ex_ && ex_->svc)
    ex_->svc->shared->local.shard(w_->index()).finish(status, mono_us() - ex_->start_us);
}

void ClientConn::local_error(int status, bool close) {
  close = close || w_->stopping || (ex_ && !ex_->client_keep_alive);
  local_raw(local_response(status, close), close, nullptr);
}

void ClientConn::local_raw(std::string_view bytes, bool close,
                           std::shared_ptr<const RouteTable> keep) {
  cancel_write();
  if (up_) {
    up_->owner = nullptr;
    up_->close();
    up_ = nullptr;
  }
  if (ex_) {
    if (ex_->shard) {
      StatsShard::bump(ex_->shard->active, -1);
      ex_->shard = nullptr;
    }
    if (!close) {
      // The request had no body: drop its head.
      in_.start = ex_->req_off + ex_->head_len;
      if (in_.start > in_.end) in_.start = in_.end;
    }
    w_->put_exchange(ex_);
    ex_ = nullptr;
  }
  disarm(this);
  head_timer_ = false;
  local_keep_ = std::move(keep);
  local_out_.clear();
  local_out_.add(bytes.data(), bytes.size());
  local_close_ = close;
  state_ = State::kLocal;
}

bool ClientConn::step_local() {
  ssize_t n = write_out(local_out_);
  if (n == -2) {
    close();
    return false;
  }
  if (!local_out_.empty()) return n > 0;
  local_out_.clear();
  local_keep_.reset();
  if (local_close_) {
    linger_close();
    return false;
  }
  state_ = State::kHead;
  scan_ = 0;
  w_->t_idle.arm(this, w_->loop().now_ms());
  return true;
}

// ---------------------------------------------------------------- closing

void ClientConn::linger_close() {
  // WHY lingering: closing a socket with unread input sends RST, which can
  // destroy the response still in flight. Shut our side, drain theirs.
  if (ssl_) {
    tls_close(ssl_);
    ssl_ = nullptr;
  }
  ::shutdown(fd_, SHUT_WR);
  state_ = State::kLinger;
  w_->t_linger.arm(this, w_->loop().now_ms());
  if (in_.data) {
    in_.start = in_.end = 0;
  }
  readable_ = true;
  step_linger();
}

bool ClientConn::step_linger() {
  char buf[4096];
  while (readable_) {
    ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
      close();
      return false;
    }
    if (n < 0) readable_ = false;
  }
  return false;
}

void ClientConn::close() {
  if (state_ == State::kClosed) return;
  cancel_write();
  state_ = State::kClosed;
  disarm(this);
  link.unlink();
  if (held_link.linked()) held_link.unlink();
  if (counted_held_ && ex_ && ex_->svc)
    ex_->svc->shared->held.fetch_sub(1, std::memory_order_relaxed);
  counted_held_ = false;
  if (up_) {
    up_->owner = nullptr;
    up_->close();
    up_ = nullptr;
  }
  if (ex_) {
    if (ex_->shard) {
      ex_->shard->finish(0, -1);
      StatsShard::bump(ex_->shard->active, -1);
    }
    w_->put_exchange(ex_);
    ex_ = nullptr;
  }
  if (in_.data) {
    w_->put_buffer(in_.data);
    in_.data = nullptr;
  }
  if (ssl_) {
    tls_close(ssl_);
    ssl_ = nullptr;
  }
  w_->loop().del(fd_);
  ::close(fd_);
  fd_ = -1;
  local_keep_.reset();
  w_->shared().client_connections.fetch_sub(1, std::memory_order_relaxed);
  if (ls_->state) ls_->state->connections.fetch_sub(1, std::memory_order_relaxed);
  --ls_->open;
  w_->loop().retire(this);
}

bool ClientConn::idle() const {
  return state_ == State::kHead && in_.size() == 0 && ex_ == nullptr;
}

void ClientConn::on_timeout() {
  cancel_write();
  switch (state_) {
    case State::kHead:
      if (in_.size() > 0 || (requests_ == 0 && head_timer_)) {
        local_error(408, true);
        drive();
      } else {
        close();
      }
      return;
    case State::kProxy:
      if (ex_ && !ex_->resp_head_done && ex_->client_out.empty() && writable_) {
        // The client stopped sending its body.
        if (ex_->shard) {
          ex_->shard->finish(408, mono_us() - ex_->start_us);
          StatsShard::bump(ex_->shard->active, -1);
          ex_->shard = nullptr;
        }
        local_error(408, true);
        drive();
        return;
      }
      close();
      return;
    default:
      close();
      return;
  }
}

}  // namespace md::proxy
