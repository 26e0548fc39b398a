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

#include "proxy/conn.h"
#include "proxy/local_responses.h"

namespace md::proxy {

using http::BodyKind;
using http::ChunkedScanner;

namespace {

constexpr int kDriveGuard = 512;

// writev that never raises SIGPIPE (the peer may have gone).
ssize_t send_iov(int fd, const iovec* iov, int cnt) {
  msghdr m{};
  m.msg_iov = const_cast<iovec*>(iov);
  m.msg_iovlen = static_cast<size_t>(cnt);
  return ::sendmsg(fd, &m, MSG_NOSIGNAL);
}

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
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&peer)->sin6_addr, ip_, sizeof ip_);
  }
  ip_len_ = static_cast<uint8_t>(std::strlen(ip_));
  if (ls.tls) ssl_ = tls_new(*ls.tls_ctx, fd);
  w_->clients.push_back(&link);
  w_->shared().client_connections.fetch_add(1, std::memory_order_relaxed);
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
  if (ev & EPOLLIN) readable_ = true;
  if (ev & EPOLLRDHUP) {
    readable_ = true;  // the read returns 0: end of stream
    rdhup_ = true;
  }
  if (ev & EPOLLOUT) writable_ = true;
  drive();
}

void ClientConn::drive() {
  for (int i = 0; i < kDriveGuard; ++i) {
    bool progress = false;
    switch (state_) {
      case State::kHandshake: progress = step_handshake(); break;
      case State::kHead: progress = step_head(); break;
      case State::kHeld: return;
      case State::kProxy: progress = step_proxy(); break;
      case State::kLocal: progress = step_local(); break;
      case State::kTunnel: progress = step_tunnel(); break;
      case State::kLinger: progress = step_linger(); break;
      case State::kClosed: return;
    }
    if (!progress) return;
  }
  // A very busy pair: let the other connections run, then continue.
  w_->loop().defer([this] { drive(); });
}

// ---------------------------------------------------------------- I/O

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
  if (w_->stopping && in_.size() == 0) {
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
    bool drop = is_xf_header(f.name, &is_xff) || h.is_hop_by_hop(f.name);
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

void ClientConn::start_upstream() {
  Exchange* x = ex_;
  TargetState* t = x->target;
  state_ = State::kProxy;
  UpstreamConn* u = w_->take_pooled(t);
  bool reused = u != nullptr;
  if (!u) {
    std::shared_ptr<TargetState> sp;
    for (const auto& s : x->set->targets)
      if (s.get() == t) sp = s;
    u = UpstreamConn::connect(w_, std::move(sp));
    if (!u) {
      x->attempts++;
      upstream_failed(UpFail::kConnect, errno);
      return;
    }
  }
  x->attempts++;
  up_ = u;
  u->attach(this, reused);
  state_ = State::kProxy;
  queue_request();
  // The response timeout runs from the moment the request is on its way.
  if (!u->connecting) w_->t_response.arm(u, w_->loop().now_ms());
}

// Queues the request head and whatever body bytes are buffered.
void ClientConn::queue_request() {
  Exchange* x = ex_;
  x->up_out.clear();
  x->req_done = false;
  x->req_left = x->req_body == BodyKind::kLength ? x->req_content_length : 0;
  x->req_chunks.reset();
  const char* base = in_.data + x->req_off;
  for (auto [off, len] : x->head_segs) x->up_out.add(base + off, len);
  x->up_out.add(x->req_extra.data(), x->req_extra.size());
  queued_upto_ = x->req_off + x->head_len;
  if (x->req_body == BodyKind::kNone) {
    x->req_done = true;
    x->req_end = queued_upto_;
    return;
  }
  queue_body_bytes();
}

// Queues buffered body bytes after queued_upto_ (within this request).
void ClientConn::queue_body_bytes() {
  Exchange* x = ex_;
  size_t avail = in_.end - queued_upto_;
  if (avail == 0 || x->req_done) return;
  const char* p = in_.data + queued_upto_;
  size_t take = 0;
  if (x->req_body == BodyKind::kLength) {
    take = avail < x->req_left ? avail : static_cast<size_t>(x->req_left);
    x->req_left -= take;
    if (x->req_left == 0) x->req_done = true;
  } else {
    auto st = x->req_chunks.feed(p, avail, &take);
    if (st == ChunkedScanner::Status::kError) {
      // Malformed chunked body: nothing sensible can follow.
      x->upstream_reusable = false;
      x->close_client = true;
      if (!x->resp_started) {
        local_error(400, true);
      } else {
        close();
      }
      return;
    }
    if (st == ChunkedScanner::Status::kDone) x->req_done = true;
  }
  x->up_out.add(p, take);
  queued_upto_ += take;
  if (x->req_done) x->req_end = queued_upto_;
  if (!x->req_done) w_->t_body.arm(this, w_->loop().now_ms());
}

bool ClientConn::step_proxy() {
  Exchange* x = ex_;
  UpstreamConn* u = up_;
  bool progress = false;

  // ---- client -> upstream
  if (u && !u->connecting) {
    if (!x->up_out.empty() && u->writable) {
      size_t want = x->up_out.bytes();
      int cnt = static_cast<int>(x->up_out.v.size() - x->up_out.i);
      if (cnt > IOV_MAX) cnt = IOV_MAX;
      ssize_t n = send_iov(u->fd, &x->up_out.v[x->up_out.i], cnt);
      if (n < 0) {
        if (errno == EAGAIN) {
          u->writable = false;
        } else if (errno != EINTR) {
          upstream_failed(x->resp_started ? UpFail::kBroken : UpFail::kReset, errno);
          return true;
        }
      } else {
        if (static_cast<size_t>(n) < want) u->writable = false;
        x->up_out.consume(static_cast<size_t>(n));
        x->req_head_sent = true;
        progress = true;
      }
    }
    if (x->up_out.empty() && !x->req_done) {
      if (queued_upto_ < in_.end) {
        queue_body_bytes();
        if (state_ != State::kProxy) return true;
        progress = true;
      } else if (readable_) {
        // Everything buffered was sent: reuse the buffer from its start.
        if (queued_upto_ == in_.end && in_.end == w_->shared().buffer_size) {
          x->req_replayable = false;
          in_.start = in_.end = queued_upto_ = 0;
          x->req_off = 0;
          x->req_end = 0;
        }
        ssize_t n = read_some();
        if (n > 0) {
          progress = true;
        } else if (n == 0) {
          // The client ended the stream in the middle of its request body.
          close();
          return false;
        } else if (n == -2) {
          close();
          return false;
        }
      } else if (peer_eof_) {
        close();
        return false;
      }
    }
  }

  // ---- upstream -> client
  if (!x->client_out.empty()) {
    ssize_t n = write_out(x->client_out);
    if (n == -2) {
      close();
      return false;
    }
    if (n > 0) progress = true;
    if (x->client_out.empty()) {
      x->client_out.clear();
      if (u && u->in.data) {
        u->in.start += x->client_pending_consume;
        if (u->in.start == u->in.end) u->in.start = u->in.end = u->scan = 0;
      }
      x->client_pending_consume = 0;
      if (writable_) disarm(this);
      if (x->tunnel) {
        state_ = State::kTunnel;
        if (u) disarm(u);  // the tunnel's own idle timer governs from now on
        w_->t_tunnel.arm(this, w_->loop().now_ms());
        return true;
      }
    }
  }
  if (x->client_out.empty() && !x->resp_done && u && !u->connecting) {
    if (u->in.size() > 0 && !(x->resp_head_done && x->resp_body == BodyKind::kNone)) {
      if (response_bytes()) progress = true;
      if (state_ != State::kProxy) return true;
    }
    if (x->client_out.empty() && !x->resp_done && u->readable) {
      ssize_t n = u->read_some();
      if (n > 0) {
        x->resp_started = true;
        w_->t_response.arm(u, w_->loop().now_ms());
        progress = true;
      } else if (n == 0 || n == -2) {
        if (x->resp_head_done && x->resp_body == BodyKind::kClose) {
          x->resp_done = true;
          x->upstream_reusable = false;
          progress = true;
        } else {
          upstream_failed(x->resp_started ? UpFail::kBroken : UpFail::kReset, n == 0 ? 0 : errno);
          return true;
        }
      }
    }
  }

  // ---- done?
  if (x->resp_done && x->client_out.empty()) {
    if (!x->req_done) {
      // The upstream answered before the request body ended (e.g. 413):
      // neither connection can be reused.
      x->upstream_reusable = false;
      x->close_client = true;
    }
    finish_exchange();
    return true;
  }
  return progress;
}

// Parses/forwards bytes in the upstream buffer. Queues into client_out.
bool ClientConn::response_bytes() {
  Exchange* x = ex_;
  UpstreamConn* u = up_;
  const char* base = u->in.data + u->in.start;
  size_t avail = u->in.size();
  size_t used = 0;
  x->resp_started = true;
  if (!x->resp_head_done) {
    size_t hl = http::find_head_end(base, avail, &u->scan);
    if (!hl) {
      if (u->in.end == w_->shared().buffer_size) {
        if (u->in.start > 0) {
          std::memmove(u->in.data, base, avail);
          u->in.start = 0;
          u->in.end = avail;
          return true;
        }
        upstream_failed(UpFail::kProtocol, 0);
        return true;
      }
      return false;
    }
    u->scan = 0;
    http::ResponseHead& h = w_->resp_scratch();
    http::HeadLimits lim{w_->shared().buffer_size, 128};
    http::HeadError e = http::parse_response_head(base, hl, std::string_view(x->method, x->method_len),
                                                  lim, &h);
    if (e != http::HeadError::kNone) {
      upstream_failed(UpFail::kProtocol, 0);
      return true;
    }
    if (h.status < 200 && h.status != 101) {
      // Interim response (100 Continue, 103 Early Hints): forward as is.
      x->client_out.add(base, hl);
      x->client_pending_consume = hl;
      return true;
    }
    if (h.status == 101) {
      if (!x->upgrade) {
        upstream_failed(UpFail::kProtocol, 0);
        return true;
      }
      x->status = 101;
      x->resp_head_done = true;
      x->tunnel = true;
      x->client_out.add(base, hl);
      x->client_pending_consume = hl;
      x->target->record_success();
      return true;
    }
    x->status = h.status;
    if (h.status == 502 || h.status == 503 || h.status == 504) {
      x->target->record_failure(x->svc->spec.ejection, w_->loop().now_ms(),
                                "answered " + std::to_string(h.status));
    } else {
      x->target->record_success();
    }
    x->resp_head_done = true;
    x->resp_body = h.body;
    x->resp_left = h.content_length;
    x->resp_chunks.reset();
    x->upstream_reusable = h.keep_alive() && h.body != BodyKind::kClose;
    bool close = !x->client_keep_alive || h.body == BodyKind::kClose || w_->stopping ||
                 !x->req_done || x->upgrade;
    x->close_client = x->close_client || close;
    // Head: original bytes minus hop-by-hop lines, plus our fields.
    uint32_t seg_start = 0;
    for (size_t i = 0; i < h.num_headers; ++i) {
      const http::HeaderField& f = h.headers[i];
      if (!h.is_hop_by_hop(f.name)) continue;
      if (f.line_begin > seg_start) x->client_out.add(base + seg_start, f.line_begin - seg_start);
      seg_start = f.line_end;
    }
    uint32_t end = static_cast<uint32_t>(hl - 2);
    if (end > seg_start) x->client_out.add(base + seg_start, end - seg_start);
    std::string& extra = x->resp_extra;
    extra.clear();
    if (x->close_client) {
      extra += "Connection: close\r\n";
    } else if (x->client_http10) {
      extra += "Connection: keep-alive\r\n";
    }
    if (!x->cookie_value.empty()) {
      extra += "Set-Cookie: ";
      extra += x->svc->spec.sticky_cookie;
      extra += '=';
      extra += x->cookie_value;
      extra += "; Path=/; Max-Age=86400; HttpOnly; SameSite=Lax\r\n";
    }
    extra += "\r\n";
    x->client_out.add(extra.data(), extra.size());
    used = hl;
    if (x->resp_body == BodyKind::kNone) x->resp_done = true;
  }
  // Body bytes.
  if (!x->resp_done && used < avail) {
    const char* p = base + used;
    size_t n = avail - used;
    size_t take = 0;
    switch (x->resp_body) {
      case BodyKind::kLength:
        take = n < x->resp_left ? n : static_cast<size_t>(x->resp_left);
        x->resp_left -= take;
        if (x->resp_left == 0) x->resp_done = true;
        break;
      case BodyKind::kChunked: {
        auto st = x->resp_chunks.feed(p, n, &take);
        if (st == ChunkedScanner::Status::kError) {
          upstream_failed(UpFail::kBroken, 0);
          return true;
        }
        if (st == ChunkedScanner::Status::kDone) x->resp_done = true;
        break;
      }
      case BodyKind::kClose:
        take = n;
        break;
      case BodyKind::kNone:
        break;
    }
    x->client_out.add(p, take);
    used += take;
  }
  if (x->resp_done && used < avail) {
    // Bytes after the end of the response: the upstream is not speaking HTTP
    // correctly; do not reuse it.
    x->upstream_reusable = false;
    used = avail;
  }
  x->client_pending_consume = used;
  if (x->client_out.empty()) {
    // Nothing to write (e.g. an empty chunk piece): consume now.
    u->in.start += used;
    if (u->in.start == u->in.end) u->in.start = u->in.end = 0;
    x->client_pending_consume = 0;
  }
  return true;
}

void ClientConn::finish_exchange() {
  Exchange* x = ex_;
  UpstreamConn* u = up_;
  if (x->shard) {
    x->shard->finish(x->status, mono_us() - x->start_us);
    StatsShard::bump(x->shard->active, -1);
  }
  if (u) {
    disarm(u);
    bool pool = x->upstream_reusable && x->resp_done && x->req_done && !u->eof && u->in.size() == 0 &&
                !u->failed && x->target->in_use.load(std::memory_order_relaxed) && !w_->stopping;
    up_ = nullptr;
    u->owner = nullptr;
    if (pool) {
      w_->put_pooled(u);
    } else {
      u->close();
    }
  }
  bool close_after = x->close_client;
  // Drop this request's bytes; keep what follows (a pipelined request).
  size_t end = x->req_end > in_.start ? x->req_end : in_.start;
  in_.start = end <= in_.end ? end : in_.end;
  queued_upto_ = in_.start;
  if (in_.start == in_.end) in_.start = in_.end = 0;
  w_->put_exchange(x);
  ex_ = nullptr;
  if (close_after) {
    linger_close();
    return;
  }
  state_ = State::kHead;
  scan_ = 0;
  release_buffer_if_empty();
  w_->t_idle.arm(this, w_->loop().now_ms());
}

void ClientConn::upstream_failed(UpFail why, int err) {
  Exchange* x = ex_;
  if (!x || state_ != State::kProxy) return;
  const char* what = why == UpFail::kConnect          ? "connect failed"
                     : why == UpFail::kConnectTimeout ? "connect timed out"
                     : why == UpFail::kReset          ? "connection closed before a response"
                     : why == UpFail::kTimeout        ? "response timed out"
                     : why == UpFail::kProtocol       ? "malformed response"
                                                      : "connection broke during the response";
  std::string msg = std::string(what) + (err ? std::string(": ") + std::strerror(err) : "");
  if (x->shard) StatsShard::bump(x->shard->upstream_errors);
  if (x->target) x->target->record_failure(x->svc->spec.ejection, w_->loop().now_ms(), msg);
  if (up_) {
    up_->owner = nullptr;
    up_->close();
    up_ = nullptr;
  }
  retry_or_fail(why);
}

void ClientConn::retry_or_fail(UpFail why) {
  Exchange* x = ex_;
  bool can_retry = x->attempts < 2 && x->req_replayable && x->client_out.empty() && !x->resp_head_done;
  if (why == UpFail::kReset) can_retry = can_retry && x->idempotent && !x->resp_started;
  if (why == UpFail::kTimeout || why == UpFail::kProtocol || why == UpFail::kBroken) can_retry = false;
  if (can_retry) {
    // Another usable target of the same set, else the same one.
    TargetState* next = nullptr;
    int64_t now = w_->loop().now_ms();
    size_t n = x->set->targets.size();
    StatsShard& sh = *x->shard;
    for (size_t k = 0; k < n && !next; ++k) {
      TargetState* t = x->set->targets[(sh.rr + k) % n].get();
      if (t != x->target && t->usable(now)) next = t;
    }
    if (!next && x->target->usable(now)) next = x->target;
    if (next) {
      StatsShard::bump(sh.retries);
      x->failed_target = x->target;
      x->target = next;
      x->resp_started = false;
      x->resp_head_done = false;
      x->req_head_sent = false;
      start_upstream();
      return;
    }
  }
  if (why == UpFail::kBroken || x->resp_head_done || !x->client_out.empty()) {
    // Part of the response reached the client: the only honest signal left
    // is cutting the connection.
    if (x->shard) {
      x->shard->finish(0, -1);
      StatsShard::bump(x->shard->active, -1);
      x->shard = nullptr;
    }
    close();
    return;
  }
  int status = (why == UpFail::kTimeout || why == UpFail::kConnectTimeout) ? 504 : 502;
  x->status = status;
  if (x->shard) {
    x->shard->finish(status, mono_us() - x->start_us);
    StatsShard::bump(x->shard->active, -1);
    x->shard = nullptr;
  }
  local_error(status, !x->req_done || !x->client_keep_alive);
}

// ---------------------------------------------------------------- local answers

void ClientConn::count_local(int status) {
  if (ex_ && ex_->svc) ex_->svc->shared->local.shard(w_->index()).finish(status, mono_us() - ex_->start_us);
}

void ClientConn::local_error(int status, bool close) {
  close = close || w_->stopping || (ex_ && !ex_->client_keep_alive);
  local_raw(local_response(status, close), close, nullptr);
}

void ClientConn::local_raw(std::string_view bytes, bool close, std::shared_ptr<const RouteTable> keep) {
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

// ---------------------------------------------------------------- tunnel

bool ClientConn::step_tunnel() {
  Exchange* x = ex_;
  UpstreamConn* u = up_;
  bool progress = false;
  // client -> upstream
  if (!tun_c2u_done_) {
    if (!x->up_out.empty() && u->writable) {
      ssize_t n = send_iov(u->fd, &x->up_out.v[x->up_out.i],
                           static_cast<int>(std::min<size_t>(x->up_out.v.size() - x->up_out.i, IOV_MAX)));
      if (n < 0 && errno != EAGAIN && errno != EINTR) {
        close();
        return false;
      }
      if (n < 0) {
        u->writable = false;
      } else {
        x->up_out.consume(static_cast<size_t>(n));
        progress = true;
      }
    }
    if (x->up_out.empty()) {
      x->up_out.clear();
      if (queued_upto_ > in_.start) {
        in_.start = queued_upto_;
        if (in_.start == in_.end) in_.start = in_.end = queued_upto_ = 0;
      }
      if (in_.size() > 0) {
        if (ws_closing_) {
          in_.start = in_.end = queued_upto_ = 0;  // after our close frame: discard
        } else {
          x->up_out.add(in_.data + in_.start, in_.size());
          if (x->websocket) x->ws_c2u.feed(in_.data + in_.start, in_.size());
          queued_upto_ = in_.end;
        }
        progress = true;
      } else if (readable_) {
        ssize_t n = read_some();
        if (n > 0) progress = true;
        if (n == -2) {
          close();
          return false;
        }
      }
      if (x->up_out.empty() && in_.size() == 0 && (peer_eof_ || ws_closing_)) {
        ::shutdown(u->fd, SHUT_WR);
        tun_c2u_done_ = true;
        progress = true;
      }
    }
  } else if (ws_closing_ && readable_) {
    // Drain what the client still sends until its FIN.
    ssize_t n = read_some();
    in_.start = in_.end = queued_upto_ = 0;
    if (n > 0 || n == 0) progress = true;
    if (n == -2) {
      close();
      return false;
    }
  }
  // upstream -> client
  if (!tun_u2c_done_) {
    if (!x->client_out.empty()) {
      ssize_t n = write_out(x->client_out);
      if (n == -2) {
        close();
        return false;
      }
      if (n > 0) progress = true;
    }
    if (x->client_out.empty()) {
      x->client_out.clear();
      if (x->client_pending_consume > 0) {
        u->in.start += x->client_pending_consume;
        x->client_pending_consume = 0;
        if (u->in.start == u->in.end) u->in.start = u->in.end = 0;
        progress = true;
      }
      if (u->in.size() > 0) {
        if (ws_closing_) {
          u->in.start = u->in.end = 0;
        } else {
          x->client_out.add(u->in.data + u->in.start, u->in.size());
          if (x->websocket) x->ws_u2c.feed(u->in.data + u->in.start, u->in.size());
          x->client_pending_consume = u->in.size();
        }
        progress = true;
      } else if (u->readable) {
        ssize_t n = u->read_some();
        if (n > 0) progress = true;
        if (n == -2) {
          close();
          return false;
        }
      }
      if (x->client_out.empty() && u->in.size() == 0 && (u->eof || ws_closing_)) {
        if (ssl_) {
          tls_close(ssl_);
          ssl_ = nullptr;
        }
        ::shutdown(fd_, SHUT_WR);
        tun_u2c_done_ = true;
        progress = true;
      }
    }
  } else if (ws_closing_ && u->readable) {
    ssize_t n = u->read_some();
    u->in.start = u->in.end = 0;
    if (n >= 0) progress = true;
  }
  if (progress && !ws_closing_) w_->t_tunnel.arm(this, w_->loop().now_ms());
  bool client_gone = tun_c2u_done_ && (peer_eof_ || !ws_closing_);
  bool upstream_gone = tun_u2c_done_ && (u->eof || !ws_closing_);
  if (client_gone && upstream_gone) {
    close();
    return false;
  }
  return progress;
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
  state_ = State::kClosed;
  disarm(this);
  link.unlink();
  if (held_link.linked()) held_link.unlink();
  if (counted_held_ && ex_ && ex_->svc) ex_->svc->shared->held.fetch_sub(1, std::memory_order_relaxed);
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
  ::close(fd_);
  fd_ = -1;
  local_keep_.reset();
  w_->shared().client_connections.fetch_sub(1, std::memory_order_relaxed);
  w_->loop().retire(this);
}

bool ClientConn::idle() const {
  return state_ == State::kHead && in_.size() == 0 && ex_ == nullptr;
}

void ClientConn::on_timeout() {
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

void ClientConn::table_changed() {
  if (state_ == State::kHeld) {
    // Re-route: resumed, still paused, or moved elsewhere.
    held_link.unlink();
    const RouteTable* t = w_->table().get();
    const ServiceRoute* old = ex_->svc;
    (void)t;
    http::RequestHead& h = w_->req_scratch();
    http::HeadLimits lim{w_->shared().limits.max_head_bytes, w_->shared().limits.max_headers};
    if (http::parse_request_head(in_.data + in_.start, ex_->head_len, lim, &h) != http::HeadError::kNone) {
      close();
      return;
    }
    const ServiceRoute* now = w_->table()->match(h.authority, h.path);
    if (!now || !now->paused) {
      if (counted_held_) old->shared->held.fetch_sub(1, std::memory_order_relaxed);
      counted_held_ = false;
      state_ = State::kHead;
      start_request(ex_->head_len, true);
      drive();
    } else {
      w_->held.push_back(&held_link);
    }
    return;
  }
  if (ex_ && ex_->set && ex_->set->retired.load(std::memory_order_relaxed) && ex_->drain_at_ms == 0) {
    ex_->drain_at_ms = w_->loop().now_ms() + ex_->svc->spec.drain_deadline.count();
    w_->loop().at(ex_->drain_at_ms, [w = w_] {
      for (Link* l = w->clients.next; l != &w->clients;) {
        auto* c = owner_of<ClientConn>(l);
        l = l->next;
        const Exchange* e = c->exchange();
        if (e && e->drain_at_ms && e->drain_at_ms <= w->loop().now_ms()) c->drain_now();
      }
    });
  }
}

void ClientConn::drain_now() {
  Exchange* x = ex_;
  if (!x) return;
  if (x->set) x->set->drain_closed.fetch_add(1, std::memory_order_relaxed);
  if (state_ == State::kTunnel && x->websocket && !ws_closing_) {
    // RFC 6455 7.4.1 status 1001 "going away", to each side that is between
    // frames; then both write sides are shut and input is discarded until
    // the peers close (bounded by t_linger).
    static const char kToClient[] = {'\x88', '\x02', '\x03', '\xE9'};
    ws_closing_ = true;
    if (x->client_out.empty() && x->ws_u2c.at_boundary()) x->client_out.add(kToClient, 4);
    if (x->up_out.empty() && x->ws_c2u.at_boundary()) {
      uint64_t r = w_->random();
      char* f = x->ws_close_to_upstream;
      f[0] = '\x88';
      f[1] = '\x82';  // masked, 2 bytes of payload
      std::memcpy(f + 2, &r, 4);
      f[6] = static_cast<char>(0x03 ^ f[2]);
      f[7] = static_cast<char>(0xE9 ^ f[3]);
      x->up_out.add(f, 8);
    }
    w_->t_linger.arm(this, w_->loop().now_ms());
    drive();
    return;
  }
  if (state_ == State::kProxy && x->resp_head_done && x->resp_body == BodyKind::kChunked &&
      x->client_out.empty() && !x->resp_done && x->resp_chunks.at_boundary()) {
    // A chunked stream (SSE) between chunks: end it properly so the client
    // sees a complete response and may reconnect at once.
    static const char kLast[] = "0\r\n\r\n";
    x->client_out.add(kLast, 5);
    x->resp_done = true;
    x->upstream_reusable = false;
    x->close_client = true;
    drive();
    return;
  }
  close();
}

void ClientConn::held_expired() {
  if (state_ != State::kHeld) return;
  held_link.unlink();
  if (counted_held_ && ex_->svc) ex_->svc->shared->held.fetch_sub(1, std::memory_order_relaxed);
  counted_held_ = false;
  count_local(503);
  local_error(503, true);
  drive();
}

}  // namespace md::proxy
