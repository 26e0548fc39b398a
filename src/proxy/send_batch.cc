// SendBatch: a minimal io_uring for batched sendmsg and recv (see send_batch.h).
#include "proxy/send_batch.h"

#include <linux/io_uring.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace md::proxy {

namespace {

int sys_setup(unsigned entries, io_uring_params* p) {
  return static_cast<int>(::syscall(__NR_io_uring_setup, entries, p));
}

int sys_enter(int fd, unsigned submit, unsigned min_complete, unsigned flags) {
  return static_cast<int>(::syscall(__NR_io_uring_enter, fd, submit, min_complete, flags, nullptr, 0));
}

template <class T>
T* at(void* base, unsigned off) {
  return reinterpret_cast<T*>(static_cast<char*>(base) + off);
}

}  // namespace

SendBatch::~SendBatch() {
  if (sqes_) ::munmap(sqes_, sqes_len_);
  if (cq_ptr_ && cq_ptr_ != sq_ptr_) ::munmap(cq_ptr_, cq_len_);
  if (sq_ptr_) ::munmap(sq_ptr_, sq_len_);
  if (ring_fd_ >= 0) ::close(ring_fd_);
}

bool SendBatch::init(unsigned entries) {
  io_uring_params p{};
  // WHY these flags: completions are posted inline during submission (no
  // task-work interrupts), and only this thread ever submits. Older kernels
  // refuse unknown flags with EINVAL: then plain.
  p.flags = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_SUBMIT_ALL;
  int fd = sys_setup(entries, &p);
  if (fd < 0 && errno == EINVAL) {
    p = io_uring_params{};
    fd = sys_setup(entries, &p);
  }
  if (fd < 0) return false;
  ring_fd_ = fd;
  sq_len_ = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  cq_len_ = p.cq_off.cqes + p.cq_entries * sizeof(io_uring_cqe);
  bool single = (p.features & IORING_FEAT_SINGLE_MMAP) != 0;
  if (single) sq_len_ = cq_len_ = sq_len_ > cq_len_ ? sq_len_ : cq_len_;
  sq_ptr_ = ::mmap(nullptr, sq_len_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
  if (sq_ptr_ == MAP_FAILED) {
    sq_ptr_ = nullptr;
    return false;
  }
  if (single) {
    cq_ptr_ = sq_ptr_;
  } else {
    cq_ptr_ = ::mmap(nullptr, cq_len_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_CQ_RING);
    if (cq_ptr_ == MAP_FAILED) {
      cq_ptr_ = nullptr;
      return false;
    }
  }
  sqes_len_ = p.sq_entries * sizeof(io_uring_sqe);
  sqes_ = ::mmap(nullptr, sqes_len_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
  if (sqes_ == MAP_FAILED) {
    sqes_ = nullptr;
    return false;
  }
  sq_head_ = at<unsigned>(sq_ptr_, p.sq_off.head);
  sq_tail_ = at<unsigned>(sq_ptr_, p.sq_off.tail);
  sq_mask_ = *at<unsigned>(sq_ptr_, p.sq_off.ring_mask);
  sq_entries_ = p.sq_entries;
  sq_array_ = at<unsigned>(sq_ptr_, p.sq_off.array);
  cq_head_ = at<unsigned>(cq_ptr_, p.cq_off.head);
  cq_tail_ = at<unsigned>(cq_ptr_, p.cq_off.tail);
  cq_mask_ = *at<unsigned>(cq_ptr_, p.cq_off.ring_mask);
  cqes_ = at<void>(cq_ptr_, p.cq_off.cqes);
  return true;
}

bool SendBatch::send_all(const int* fds, msghdr* msgs, int n, int* results) {
  addrs_.resize(static_cast<size_t>(n));
  lens_.assign(static_cast<size_t>(n), 1);
  for (int i = 0; i < n; ++i) addrs_[static_cast<size_t>(i)] = &msgs[i];
  return run(IORING_OP_SENDMSG, fds, addrs_.data(), lens_.data(), n, results);
}

bool SendBatch::recv_all(const int* fds, const iovec* bufs, int n, int* results) {
  addrs_.resize(static_cast<size_t>(n));
  lens_.resize(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    addrs_[static_cast<size_t>(i)] = bufs[i].iov_base;
    lens_[static_cast<size_t>(i)] = static_cast<uint32_t>(bufs[i].iov_len);
  }
  return run(IORING_OP_RECV, fds, addrs_.data(), lens_.data(), n, results);
}

bool SendBatch::run(uint8_t opcode, const int* fds, const void* const* addrs, const uint32_t* lens, int n,
                    int* results) {
  auto* sqes = static_cast<io_uring_sqe*>(sqes_);
  auto* cqes = static_cast<io_uring_cqe*>(cqes_);
  int done = 0;
  while (done < n) {
    // One chunk of at most the ring's size; each completes inside the enter
    // (MSG_DONTWAIT: EAGAIN is a result, never a wait).
    unsigned chunk = static_cast<unsigned>(n - done) < sq_entries_ ? static_cast<unsigned>(n - done) : sq_entries_;
    unsigned tail = *sq_tail_;
    for (unsigned k = 0; k < chunk; ++k) {
      unsigned idx = tail & sq_mask_;
      io_uring_sqe* s = &sqes[idx];
      std::memset(s, 0, sizeof *s);
      int j = done + static_cast<int>(k);
      s->opcode = opcode;
      s->fd = fds[j];
      s->addr = reinterpret_cast<uint64_t>(addrs[j]);
      s->len = lens[j];
      s->msg_flags = opcode == IORING_OP_SENDMSG ? MSG_NOSIGNAL | MSG_DONTWAIT : MSG_DONTWAIT;
      s->user_data = static_cast<uint64_t>(done) + k;
      sq_array_[idx] = idx;
      ++tail;
    }
    __atomic_store_n(sq_tail_, tail, __ATOMIC_RELEASE);
    for (unsigned k = 0; k < chunk; ++k) results[done + static_cast<int>(k)] = -EIO;
    unsigned submitted = 0;
    unsigned reaped = 0;
    int transient = 0;
    while (reaped < chunk) {
      int r = sys_enter(ring_fd_, chunk - submitted, chunk - reaped, IORING_ENTER_GETEVENTS);
      if (r < 0) {
        if (errno == EINTR || ((errno == EAGAIN || errno == EBUSY) && ++transient < 1000)) continue;
        // Not usable any more. Sends whose outcome is unknown report EIO
        // (their connections fail; none is sent twice); the rest are plain.
        for (int k = done + static_cast<int>(chunk); k < n; ++k) results[k] = -EIO;
        ::close(ring_fd_);
        ring_fd_ = -1;
        return false;
      }
      submitted += static_cast<unsigned>(r);
      unsigned head = *cq_head_;
      unsigned ctail = __atomic_load_n(cq_tail_, __ATOMIC_ACQUIRE);
      while (head != ctail) {
        const io_uring_cqe& c = cqes[head & cq_mask_];
        results[c.user_data] = c.res;
        ++head;
        ++reaped;
      }
      __atomic_store_n(cq_head_, head, __ATOMIC_RELEASE);
    }
    done += static_cast<int>(chunk);
  }
  return true;
}

}  // namespace md::proxy
