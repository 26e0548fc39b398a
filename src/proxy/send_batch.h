// SendBatch: many sendmsg (or recv) calls on different sockets in one system
// call, through io_uring (liburing, Debian's liburing-dev). Internal to
// src/proxy.
//
// WHY: on this VM class every system call costs a world switch; a worker
// serving 64 connections makes two sendmsg calls per request. Collecting
// them over one epoll batch and submitting them together cuts those to one
// io_uring_enter per batch, and the upstream on the same core is woken once
// per batch instead of once per request.
//
// Every send is non-blocking (MSG_DONTWAIT): it completes inside the
// io_uring_enter that submits it, with the byte count or -errno (-EAGAIN
// when the socket buffer is full), exactly as sendmsg would return.
//
// Concurrency: one SendBatch per worker, used on that worker's thread only.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstdint>
#include <vector>

struct io_uring;  // liburing's ring: only send_batch.cc includes liburing.h

namespace md::proxy {

class SendBatch {
 public:
  SendBatch() = default;
  ~SendBatch();
  SendBatch(const SendBatch&) = delete;
  SendBatch& operator=(const SendBatch&) = delete;

  // Sets up the ring. False when the kernel refuses io_uring (disabled by
  // sysctl, seccomp, too old, no descriptor left): the caller then sends one
  // by one.
  bool init(unsigned entries = 256);
  bool ready() const { return ring_ != nullptr; }

  // Sends every message (msgs[i] on fds[i]) and stores what each sendmsg
  // returned (bytes, or -errno) in results[i]. The messages' buffers must
  // stay valid until it returns; it returns when every send has completed.
  // False if io_uring_enter itself failed: the ring is closed (ready() is
  // false from then on) and each send whose outcome is unknown reports -EIO,
  // so none is ever sent twice.
  bool send_all(const int* fds, msghdr* msgs, int n, int* results);
  // The same for non-blocking recv into bufs[i] (results: bytes, 0 at EOF,
  // or -errno). For sockets epoll reported readable: none waits.
  bool recv_all(const int* fds, const iovec* bufs, int n, int* results);

 private:
  enum class Op { kSendmsg, kRecv };
  bool run(Op op, const int* fds, const void* const* addrs, const uint32_t* lens, int n,
           int* results);
  void close_ring();
  std::vector<const void*> addrs_;
  std::vector<uint32_t> lens_;
  io_uring* ring_ = nullptr;  // owned; nullptr = not usable
  unsigned entries_ = 0;      // submission queue size
};

}  // namespace md::proxy
