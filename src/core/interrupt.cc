#include "core/interrupt.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>

namespace md::interrupt {
namespace {

std::atomic<bool> g_flag{false};
std::atomic<unsigned> g_count{0};  // signals received under the Watch
std::atomic<unsigned> g_taken{0};  // signals handled by take()
std::atomic<int> g_rd{-1}, g_wr{-1};
std::atomic<bool> g_active{false};
struct sigaction g_old_int {
}, g_old_term{};

extern "C" void on_signal(int) {
  const int saved = errno;
  g_flag.store(true);
  g_count.fetch_add(1);
  const int wr = g_wr.load();
  if (wr >= 0) {
    const char b = 1;
    [[maybe_unused]] ssize_t n = ::write(wr, &b, 1);  // full pipe: already readable
  }
  errno = saved;
}

void drain() {
  const int rd = g_rd.load();
  if (rd < 0) return;
  char buf[64];
  while (::read(rd, buf, sizeof buf) > 0) {
  }
}

}  // namespace

Watch::Watch() {
  if (g_rd.load() < 0) {
    int p[2];
    // WHY never closed: fd() is handed to clients that may outlive a Watch.
    if (::pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0) {
      g_rd = p[0];
      g_wr = p[1];
    }
  }
  drain();
  g_flag = false;
  g_taken = g_count.load();
  g_active = true;
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &g_old_int);
  sigaction(SIGTERM, &sa, &g_old_term);
}

Watch::~Watch() {
  sigaction(SIGINT, &g_old_int, nullptr);
  sigaction(SIGTERM, &g_old_term, nullptr);
  g_active = false;
  drain();
}

const std::atomic<bool>& flag() { return g_flag; }

bool pending() { return g_active.load() && g_count.load() != g_taken.load(); }

int fd() { return g_active.load() ? g_rd.load() : -1; }

void take() {
  // WHY drain first: a signal arriving in between leaves a byte for its own
  // wake-up instead of being lost (it counts as taken; readers re-check
  // pending()).
  drain();
  g_taken = g_count.load();
}

}  // namespace md::interrupt
