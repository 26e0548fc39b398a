// SendBatch: batched sendmsg and recv through liburing (see send_batch.h).
#include "proxy/send_batch.h"

#include <liburing.h>

#include <cerrno>

namespace md::proxy {

SendBatch::~SendBatch() { close_ring(); }

void SendBatch::close_ring() {
  if (!ring_) return;
  io_uring_queue_exit(ring_);
  delete ring_;
  ring_ = nullptr;
}

bool SendBatch::init(unsigned entries) {
  auto* ring = new io_uring{};
  io_uring_params p{};
  // WHY these flags: completions are posted inline during submission (no
  // task-work interrupts), and only this thread ever submits. Older kernels
  // refuse unknown flags with EINVAL: then plain.
  p.flags = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_SUBMIT_ALL;
  int rc = io_uring_queue_init_params(entries, ring, &p);
  if (rc == -EINVAL) {
    p = io_uring_params{};
    rc = io_uring_queue_init_params(entries, ring, &p);
  }
  if (rc < 0) {
    delete ring;
    return false;
  }
  ring_ = ring;
  entries_ = p.sq_entries;
  return true;
}

bool SendBatch::send_all(const int* fds, msghdr* msgs, int n, int* results) {
  addrs_.resize(static_cast<size_t>(n));
  lens_.assign(static_cast<size_t>(n), 1);
  for (int i = 0; i < n; ++i) addrs_[static_cast<size_t>(i)] = &msgs[i];
  return run(Op::kSendmsg, fds, addrs_.data(), lens_.data(), n, results);
}

bool SendBatch::recv_all(const int* fds, const iovec* bufs, int n, int* results) {
  addrs_.resize(static_cast<size_t>(n));
  lens_.resize(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    addrs_[static_cast<size_t>(i)] = bufs[i].iov_base;
    lens_[static_cast<size_t>(i)] = static_cast<uint32_t>(bufs[i].iov_len);
  }
  return run(Op::kRecv, fds, addrs_.data(), lens_.data(), n, results);
}

bool SendBatch::run(Op op, const int* fds, const void* const* addrs, const uint32_t* lens, int n,
                    int* results) {
  int done = 0;
  while (done < n) {
    // One chunk of at most the ring's size; each completes inside the enter
    // (MSG_DONTWAIT: EAGAIN is a result, never a wait).
    unsigned chunk =
        static_cast<unsigned>(n - done) < entries_ ? static_cast<unsigned>(n - done) : entries_;
    for (unsigned k = 0; k < chunk; ++k) {
      int j = done + static_cast<int>(k);
      io_uring_sqe* s = io_uring_get_sqe(ring_);  // never null: the ring holds `entries_`
      if (op == Op::kSendmsg) {
        io_uring_prep_sendmsg(s, fds[j], static_cast<const msghdr*>(addrs[j]),
                              MSG_NOSIGNAL | MSG_DONTWAIT);
      } else {
        io_uring_prep_recv(s, fds[j], const_cast<void*>(addrs[j]), lens[j], MSG_DONTWAIT);
      }
      io_uring_sqe_set_data64(s, static_cast<uint64_t>(j));
      results[j] = -EIO;
    }
    unsigned reaped = 0;
    int transient = 0;
    while (reaped < chunk) {
      int r = io_uring_submit_and_wait(ring_, chunk - reaped);
      if (r < 0) {
        if (r == -EINTR || ((r == -EAGAIN || r == -EBUSY) && ++transient < 1000)) continue;
        // Not usable any more. Sends whose outcome is unknown report EIO
        // (their connections fail; none is sent twice); the rest are plain.
        for (int k = done + static_cast<int>(chunk); k < n; ++k) results[k] = -EIO;
        close_ring();
        return false;
      }
      unsigned head;
      unsigned seen = 0;
      io_uring_cqe* c;
      io_uring_for_each_cqe(ring_, head, c) {
        results[io_uring_cqe_get_data64(c)] = c->res;
        ++seen;
      }
      io_uring_cq_advance(ring_, seen);
      reaped += seen;
    }
    done += static_cast<int>(chunk);
  }
  return true;
}

}  // namespace md::proxy
