// ClientConn, forwarding: the upstream side of an exchange — connect or
// take a pooled connection, send the head and the body, parse and relay the
// response, finish, retry or fail.
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <utility>

#include "proxy/conn.h"

namespace md::proxy {

using http::BodyKind;
using http::ChunkedScanner;

void ClientConn::start_upstream() {
  Exchange* x = ex_;
  TargetState* t = x->target;
  state_ = State::kProxy;
  UpstreamConn* u = w_->take_pooled(t);
  bool reused = u != nullptr;
  if (!u && t->connections.load(std::memory_order_relaxed) >=
                static_cast<int64_t>(w_->shared().limits.max_upstream_connections)) {
    // At its connection cap: another target of the set, else 503 (the target
    // is busy, not failing: no passive ejection).
    TargetState* other = nullptr;
    int64_t now = w_->loop().now_ms();
    for (const auto& s : x->set->targets)
      if (s.get() != t && s->usable(now) &&
          s->connections.load(std::memory_order_relaxed) <
              static_cast<int64_t>(w_->shared().limits.max_upstream_connections))
        other = s.get();
    if (!other) {
      w_->warn_throttled("upstream connection limit reached: answering 503", t->endpoint.str());
      answer_busy();
      return;
    }
    x->target = t = other;
    u = w_->take_pooled(t);
    reused = u != nullptr;
  }
  if (!u) {
    std::shared_ptr<TargetState> sp;
    for (const auto& s : x->set->targets)
      if (s.get() == t) sp = s;
    u = UpstreamConn::connect(w_, std::move(sp));
    if (!u && (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)) {
      // Our shortage, not the target's failure: no ejection, no retry.
      w_->warn_throttled(
          std::string("upstream connect: ") + std::strerror(errno) + ": answering 503",
          t->endpoint.str());
      answer_busy();
      return;
    }
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

// 503 for a request the proxy cannot forward for lack of connections.
void ClientConn::answer_busy() {
  Exchange* x = ex_;
  x->status = 503;
  if (x->shard) {
    x->shard->finish(503, mono_us() - x->start_us);
    StatsShard::bump(x->shard->active, -1);
    x->shard = nullptr;
  }
  local_error(503, x->req_body != BodyKind::kNone);
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
      if (queue_write(u->fd, x->up_out, kToUpstream)) return progress;  // resumed by write_done()
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
    if (!ssl_ && writable_ && queue_write(fd_, x->client_out, kToClient)) return progress;
    ssize_t n = write_out(x->client_out);
    if (n == -2) {
      close();
      return false;
    }
    if (n > 0) {
      progress = true;
      x->resp_sent = true;
    }
  }
  // Everything queued for the client was written (here or in a batch).
  if (!x->client_out.v.empty() && x->client_out.empty()) {
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
    if (hl == http::kHeadBareLf) {
      upstream_failed(UpFail::kProtocol, 0);
      return true;
    }
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
    http::HeadError e =
        http::parse_response_head(base, hl, std::string_view(x->method, x->method_len), lim, &h);
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
          if (!x->resp_sent) {
            // Nothing reached the client yet: drop the queued head and say
            // 502, rather than a connection closed with no answer.
            x->client_out.clear();
            x->resp_head_done = false;
            upstream_failed(UpFail::kProtocol, 0);
          } else {
            upstream_failed(UpFail::kBroken, 0);
          }
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

// ---------------------------------------------------------------- batched writes

bool ClientConn::queue_write(int fd, OutQueue& q, uint8_t dir) {
  if (!w_->batching()) return false;
  pend_ = w_->queue_write(this, fd, &q, dir);
  return true;
}

void ClientConn::cancel_write() {
  // A write in flight cannot be taken back; write_done() then finds the new state.
  if (pend_ >= 0) w_->cancel_write(pend_);
  if (pend_ != kPendInFlight) pend_ = kPendNone;
}

// Applies a batched write's result as step_proxy() applies sendmsg's, then
// continues.
void ClientConn::write_done(uint8_t dir, int res, size_t want) {
  pend_ = kPendNone;
  if (state_ == State::kClosed) return;
  Exchange* x = ex_;
  if (state_ != State::kProxy || !x) {
    drive();
    return;
  }
  if (dir == kToUpstream) {
    if (!up_) {
      drive();
      return;
    }
    if (res >= 0) {
      if (static_cast<size_t>(res) < want) up_->writable = false;
      x->up_out.consume(static_cast<size_t>(res));
      x->req_head_sent = true;
    } else if (res == -EAGAIN) {
      up_->writable = false;
    } else if (res != -EINTR) {
      upstream_failed(x->resp_started ? UpFail::kBroken : UpFail::kReset, -res);
    }
  } else {
    if (res >= 0) {
      if (static_cast<size_t>(res) < want) writable_ = false;
      x->client_out.consume(static_cast<size_t>(res));
      if (res > 0) x->resp_sent = true;
    } else if (res == -EAGAIN) {
      writable_ = false;
    } else if (res != -EINTR) {
      close();
      return;
    }
    if (!x->client_out.empty() && !writable_) w_->t_send.arm(this, w_->loop().now_ms());
  }
  if (std::exchange(drain_after_write_, false) && state_ != State::kClosed) {
    drain_now();
    return;
  }
  drive();
}

void ClientConn::write_unsent() {
  pend_ = kPendNone;
  if (state_ != State::kClosed) drive();
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
    bool pool = x->upstream_reusable && x->resp_done && x->req_done && !u->eof &&
                u->in.size() == 0 && !u->failed &&
                x->target->in_use.load(std::memory_order_relaxed) && !w_->stopping;
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
  cancel_write();
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
  bool can_retry =
      x->attempts < 2 && x->req_replayable && x->client_out.empty() && !x->resp_head_done;
  if (why == UpFail::kReset) can_retry = can_retry && x->idempotent && !x->resp_started;
  if (why == UpFail::kTimeout || why == UpFail::kProtocol || why == UpFail::kBroken)
    can_retry = false;
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

}  // namespace md::proxy
