// ClientConn, long-lived streams: upgraded connections (WebSocket) as byte
// tunnels, and what happens to streams when the routing table changes —
// released from a pause, or ended at the drain deadline of a replaced set.
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "proxy/conn.h"

namespace md::proxy {

using http::BodyKind;

// ---------------------------------------------------------------- tunnel

bool ClientConn::step_tunnel() {
  Exchange* x = ex_;
  UpstreamConn* u = up_;
  bool progress = false;
  // client -> upstream
  if (!tun_c2u_done_) {
    if (!x->up_out.empty() && u->writable) {
      ssize_t n =
          send_iov(u->fd, &x->up_out.v[x->up_out.i],
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

void ClientConn::table_changed() {
  if (state_ == State::kHeld) {
    // Re-route: resumed, still paused, or moved elsewhere.
    held_link.unlink();
    const RouteTable* t = w_->table().get();
    const ServiceRoute* old = ex_->svc;
    (void)t;
    http::RequestHead& h = w_->req_scratch();
    http::HeadLimits lim{w_->shared().limits.max_head_bytes, w_->shared().limits.max_headers};
    if (http::parse_request_head(in_.data + in_.start, ex_->head_len, lim, &h) !=
        http::HeadError::kNone) {
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
  if (ex_ && ex_->set && ex_->set->retired.load(std::memory_order_relaxed) &&
      ex_->drain_at_ms == 0) {
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
  if (pend_ == kPendInFlight || pend_ >= 0) {
    // A batched write is queued: drain once it is done, as if it had been
    // written before the deadline (write_done() calls back).
    drain_after_write_ = true;
    return;
  }
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
