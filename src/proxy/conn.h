// Client and upstream connections of the data path. Internal to src/proxy;
// every member runs on the owning worker's thread.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <memory>

#include "proxy/worker.h"

namespace md::proxy {

// writev that never raises SIGPIPE (the peer may have gone).
inline ssize_t send_iov(int fd, const iovec* iov, int cnt) {
  msghdr m{};
  m.msg_iov = const_cast<iovec*>(iov);
  m.msg_iovlen = static_cast<size_t>(cnt);
  return ::sendmsg(fd, &m, MSG_NOSIGNAL);
}

// Why an upstream exchange failed; decides retry and the status answered.
enum class UpFail {
  kConnect,         // connect refused/unreachable/failed: retried once elsewhere; 502
  kConnectTimeout,  // connect timed out: retried once elsewhere; 504
  kReset,     // closed or reset before any response byte: idempotent requests retried once; 502
  kTimeout,   // no response bytes within upstream_response: 504, not retried
  kProtocol,  // malformed or oversized response head: 502
  kBroken,    // failed after the response started: the client connection is cut
};

class UpstreamConn final : public Handler {
 public:
  // Starts a non-blocking connect to `t`. nullptr (errno set) if the socket
  // could not even be created or the connect failed at once.
  static UpstreamConn* connect(Worker* w, std::shared_ptr<TargetState> t);

  void on_io(uint32_t events) override;
  void on_timeout() override;
  // Batched reads: only a response awaited with an empty buffer.
  int prefetch_read(iovec* into) override;
  void prefetched(int res) override;

  void attach(ClientConn* c, bool reused);
  // Closes the socket and retires the object; its buffer is returned.
  void close();

  // Reads into `in` (taking a buffer if needed). > 0 bytes, 0 EOF, -1 EAGAIN, -2 error.
  ssize_t read_some();

  Worker* w;
  int fd = -1;
  std::shared_ptr<TargetState> target;
  ClientConn* owner = nullptr;
  bool connecting = true;
  bool readable = false;
  bool writable = false;
  bool eof = false;
  bool rdhup = false;   // the peer shut its side: read until 0 even after short reads
  bool failed = false;  // socket error reported by epoll
  bool dead = false;
  bool reused = false;
  bool was_prefetched = false;  // this event's input was read by prefetched()
  int err = 0;
  IoBuf in;
  size_t scan = 0;  // head search position within `in`
  Link pool_link;   // in target->pools[w].idle
  Link idle_link;   // in w->idle_ups
  uint32_t uses = 0;

  ~UpstreamConn() override;

 private:
  UpstreamConn(Worker* w, int fd, std::shared_ptr<TargetState> t);
  void finish_connect();
  void uncount();  // once: this connection no longer counts in target->connections
  bool counted_ = true;
};

class ClientConn final : public Handler {
 public:
  ClientConn(Worker* w, int fd, const ListenSocket& ls, const sockaddr_storage& peer);
  ~ClientConn() override;

  void on_io(uint32_t events) override;
  void on_timeout() override;
  // Batched reads: only the next request head of an idle plain connection.
  int prefetch_read(iovec* into) override;
  void prefetched(int res) override;
  // The upstream may read into its buffer now (nothing refers to it).
  bool upstream_read_ok() const;

  // Makes all the progress the sockets allow.
  void drive();
  // The upstream side failed (called by UpstreamConn or from drive()).
  void upstream_failed(UpFail why, int err);
  // The worker adopted a new routing table.
  void table_changed();
  // Closes the connection and everything attached, now.
  void close();
  // The worker is stopping: close now if idle.
  bool idle() const;
  // Ends a long-lived stream whose set was replaced (drain deadline).
  void drain_now();
  // A pause held this request longer than allowed.
  void held_expired();

  // Batched writes (Worker::flush_writes): the queued write was handed to
  // the kernel; then its result (bytes or -errno; `want` bytes were
  // offered), or: it was not sent after all.
  static constexpr uint8_t kToUpstream = 0, kToClient = 1;
  void write_submitted() { pend_ = kPendInFlight; }
  void write_done(uint8_t dir, int res, size_t want);
  void write_unsent();

  const ListenerState* listener() const { return ls_->state; }
  bool has_exchange() const { return ex_ != nullptr; }
  const Exchange* exchange() const { return ex_; }

  Link link;       // in w->clients
  Link held_link;  // in w->held
  int64_t held_since_ms = 0;

 private:
  enum class State { kHandshake, kHead, kHeld, kProxy, kLocal, kTunnel, kLinger, kClosed };

  bool step_handshake();
  bool step_head();
  bool step_proxy();
  bool step_local();
  bool step_tunnel();
  bool step_linger();

  // Request handling.
  void start_request(size_t head_len, bool resumed);
  bool route(const http::RequestHead& h);
  void build_forward_head(const http::RequestHead& h);
  void start_upstream();
  void queue_request();
  void queue_body_bytes();
  bool response_bytes();
  void finish_exchange();
  void retry_or_fail(UpFail why);
  void answer_busy();

  // Local answers.
  void local_error(int status, bool close);
  void local_raw(std::string_view bytes, bool close, std::shared_ptr<const RouteTable> keep);
  void count_local(int status);

  // I/O.
  // Queues `q` for the worker's batched send; false if writes are not batched.
  bool queue_write(int fd, OutQueue& q, uint8_t dir);
  void cancel_write();
  void after_client_write();
  ssize_t read_some();
  ssize_t write_out(OutQueue& q);
  void release_buffer_if_empty();
  void linger_close();

  Worker* w_;
  int fd_;
  const ListenSocket* ls_;
  ssl_st* ssl_ = nullptr;
  State state_;
  bool readable_ = false;
  bool writable_ = true;
  bool peer_eof_ = false;
  bool rdhup_ = false;  // peer shut its side: read until 0 even after short reads
  bool head_timer_ = false;
  char ip_[48];
  uint8_t ip_len_ = 0;
  IoBuf in_;
  size_t scan_ = 0;
  size_t queued_upto_ = 0;  // client buffer offset up to which request bytes are queued
  Exchange* ex_ = nullptr;
  UpstreamConn* up_ = nullptr;
  OutQueue local_out_;
  std::shared_ptr<const RouteTable> local_keep_;  // keeps a maintenance page alive
  bool local_close_ = false;
  bool tun_c2u_done_ = false;
  bool tun_u2c_done_ = false;
  bool ws_closing_ = false;  // drained WebSocket: close frames sent, input discarded
  uint32_t requests_ = 0;
  bool counted_held_ = false;
  static constexpr int kPendNone = -1, kPendInFlight = -2;
  int pend_ = kPendNone;            // a queued write's handle, or one of the above
  bool was_prefetched_ = false;     // this event's input was read by prefetched()
  bool drain_after_write_ = false;  // drain_now() came while a write was queued
};

}  // namespace md::proxy
