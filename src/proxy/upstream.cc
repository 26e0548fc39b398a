// UpstreamConn: a connection to a target, busy with one exchange or idle in
// its worker's pool for that target.
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "proxy/conn.h"

namespace md::proxy {

UpstreamConn::UpstreamConn(Worker* w, int fd, std::shared_ptr<TargetState> t)
    : w(w), fd(fd), target(std::move(t)) {
  pool_link.owner = this;
  idle_link.owner = this;
  target->connections.fetch_add(1, std::memory_order_relaxed);
}

UpstreamConn::~UpstreamConn() { uncount(); }

void UpstreamConn::uncount() {
  if (std::exchange(counted_, false)) target->connections.fetch_sub(1, std::memory_order_relaxed);
}

UpstreamConn* UpstreamConn::connect(Worker* w, std::shared_ptr<TargetState> t) {
  if (!t) {
    errno = EINVAL;
    return nullptr;
  }
  int fd = ::socket(t->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return nullptr;
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&t->addr), t->addr_len);
  if (rc != 0 && errno != EINPROGRESS) {
    int e = errno;
    ::close(fd);
    errno = e;
    return nullptr;
  }
  auto* u = new UpstreamConn(w, fd, std::move(t));
  if (!w->loop().add(fd, u)) {
    int e = errno;
    ::close(fd);
    delete u;
    errno = e;
    return nullptr;
  }
  if (rc == 0) {
    u->connecting = false;
    u->writable = true;
  } else {
    w->t_connect.arm(u, w->loop().now_ms());
  }
  return u;
}

void UpstreamConn::attach(ClientConn* c, bool was_pooled) {
  owner = c;
  reused = was_pooled;
  ++uses;
}

void UpstreamConn::on_io(uint32_t ev) {
  if (dead) return;
  if (ev & EPOLLERR) {
    failed = true;
    socklen_t len = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  }
  if (ev & (EPOLLRDHUP | EPOLLHUP)) readable = true;
  if ((ev & EPOLLIN) && !std::exchange(was_prefetched, false)) readable = true;
  if (ev & (EPOLLRDHUP | EPOLLHUP)) rdhup = true;
  if (ev & EPOLLOUT) writable = true;
  if (connecting) {
    if (failed || (ev & EPOLLHUP)) {
      if (ClientConn* c = owner) {
        c->upstream_failed(UpFail::kConnect, err ? err : ECONNREFUSED);
        c->drive();  // a retry may be ready to go (deletion is deferred: c is valid)
      } else {
        close();
      }
      return;
    }
    if (!writable) return;
    finish_connect();
    return;
  }
  if (owner) {
    owner->drive();
    return;
  }
  // Idle in the pool: input means the target closed it (or misbehaves).
  if (readable || failed) close();
}

void UpstreamConn::finish_connect() {
  int e = 0;
  socklen_t len = sizeof e;
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len);
  if (e != 0) {
    if (ClientConn* c = owner) {
      c->upstream_failed(UpFail::kConnect, e);
      c->drive();
    } else {
      close();
    }
    return;
  }
  connecting = false;
  writable = true;
  w->t_response.arm(this, w->loop().now_ms());
  if (owner) owner->drive();
}

void UpstreamConn::on_timeout() {
  if (dead) return;
  if (!owner) {
    close();  // idle too long in the pool (or an orphaned connect)
    return;
  }
  ClientConn* c = owner;
  c->upstream_failed(connecting ? UpFail::kConnectTimeout : UpFail::kTimeout, ETIMEDOUT);
  c->drive();
}

int UpstreamConn::prefetch_read(iovec* into) {
  if (dead || connecting || rdhup || eof || failed || !owner || (in.data && in.size() != 0) ||
      !owner->upstream_read_ok())
    return -1;
  if (!in.data) in.data = w->get_buffer();
  in.start = in.end = 0;
  scan = 0;
  *into = iovec{in.data, w->shared().buffer_size};
  return fd;
}

void UpstreamConn::prefetched(int res) {
  // As read_some() and step_proxy() would have left it; EOF and errors are
  // left to the plain read (which sees them again).
  was_prefetched = true;
  if (res > 0) {
    in.end = static_cast<size_t>(res);
    readable = static_cast<size_t>(res) == w->shared().buffer_size;
    w->t_response.arm(this, w->loop().now_ms());
  } else {
    readable = res != -EAGAIN;
  }
}

ssize_t UpstreamConn::read_some() {
  if (!in.data) {
    in.data = w->get_buffer();
    in.start = in.end = 0;
  }
  size_t cap = w->shared().buffer_size;
  if (in.end == cap) {
    if (in.start == 0) return -1;
    std::memmove(in.data, in.data + in.start, in.end - in.start);
    in.end -= in.start;
    in.start = 0;
  }
  size_t room = cap - in.end;
  ssize_t n = ::read(fd, in.data + in.end, room);
  if (n < 0) {
    if (errno == EAGAIN) {
      readable = false;
      return -1;
    }
    if (errno == EINTR) return -1;
    err = errno;
    return -2;
  }
  if (n == 0) {
    eof = true;
    readable = false;
    return 0;
  }
  // A short read drained the socket, unless the peer's FIN is still to be read
  // (its edge came with the data: no new edge will announce it).
  if (static_cast<size_t>(n) < room && !rdhup) readable = false;
  in.end += static_cast<size_t>(n);
  return n;
}

void UpstreamConn::close() {
  if (dead) return;
  dead = true;
  disarm(this);
  if (pool_link.linked()) {
    pool_link.unlink();
    target->pools[w->index()].count--;
  }
  idle_link.unlink();
  w->loop().del(fd);
  ::close(fd);
  fd = -1;
  uncount();
  if (in.data) {
    w->put_buffer(in.data);
    in.data = nullptr;
  }
  owner = nullptr;
  w->loop().retire(this);
}

}  // namespace md::proxy
