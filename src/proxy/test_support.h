// Test helpers for the proxy's tests (header-only; included by *_test.cc
// only): a real HTTP/1.1 upstream on 127.0.0.1:0 with scripted endpoints, and
// a raw blocking HTTP client that sends exact bytes.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "http/parser.h"

namespace md::proxy::testing {

inline int listen_loopback(uint16_t* port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(*port);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 512) != 0) {
    ::close(fd);
    return -1;
  }
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  *port = ntohs(a.sin_port);
  return fd;
}

inline int connect_loopback(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

inline bool send_all(int fd, std::string_view s) {
  while (!s.empty()) {
    ssize_t n = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    s.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// A parsed response as a client saw it.
struct Reply {
  int status = 0;  // 0: connection closed or timed out before a head
  std::string head;
  std::string body;
  bool closed = false;  // the connection ended after (or instead of) this reply
  std::string header(std::string_view name) const {
    http::ResponseHead h;
    size_t scan = 0;
    size_t hl = http::find_head_end(head.data(), head.size(), &scan);
    if (!hl || http::parse_response_head(head.data(), hl, "GET", {}, &h) != http::HeadError::kNone)
      return "";
    auto* f = h.find(name);
    return f ? std::string(f->value) : "";
  }
};

// A blocking client connection that keeps its unread bytes between replies.
class Client {
 public:
  explicit Client(uint16_t port) : fd_(connect_loopback(port)) {}
  ~Client() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  bool send(std::string_view s) { return send_all(fd_, s); }
  void shutdown_write() { ::shutdown(fd_, SHUT_WR); }

  // Reads until `pred(buffer)` or timeout; returns false on timeout/close.
  bool read_until(const std::function<bool(const std::string&)>& pred, int timeout_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (!pred(buf_)) {
      int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                      deadline - std::chrono::steady_clock::now())
                                      .count());
      if (left <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, left) <= 0) return false;
      char b[65536];
      ssize_t n = ::recv(fd_, b, sizeof b, 0);
      if (n <= 0) {
        eof_ = true;
        return pred(buf_);
      }
      buf_.append(b, static_cast<size_t>(n));
    }
    return true;
  }

  // Reads one response (for `method`), decoding nothing: body is the raw
  // bytes (chunked framing included).
  Reply read_reply(std::string_view method = "GET", int timeout_ms = 5000) {
    Reply r;
    size_t scan = 0, hl = 0;
    read_until(
        [&](const std::string& b) {
          return (hl = http::find_head_end(b.data(), b.size(), &scan)) > 0;
        },
        timeout_ms);
    if (!hl) {
      r.closed = eof_;
      return r;
    }
    http::ResponseHead h;
    if (http::parse_response_head(buf_.data(), hl, method, {}, &h) != http::HeadError::kNone)
      return r;
    r.status = h.status;
    r.head = buf_.substr(0, hl);
    bool keep = h.keep_alive();
    buf_.erase(0, hl);
    if (h.body == http::BodyKind::kLength) {
      size_t n = h.content_length;
      read_until([&](const std::string& b) { return b.size() >= n; }, timeout_ms);
      r.body = buf_.substr(0, n);
      buf_.erase(0, std::min(n, buf_.size()));
    } else if (h.body == http::BodyKind::kChunked) {
      http::ChunkedScanner sc;
      size_t used = 0;
      read_until(
          [&](const std::string& b) {
            http::ChunkedScanner s2;
            return s2.feed(b.data(), b.size(), &used) == http::ChunkedScanner::Status::kDone;
          },
          timeout_ms);
      r.body = buf_.substr(0, used);
      buf_.erase(0, used);
      (void)sc;
    } else if (h.body == http::BodyKind::kClose) {
      read_until([](const std::string&) { return false; }, timeout_ms);
      r.body = buf_;
      buf_.clear();
      keep = false;
    }
    r.closed = !keep || eof_;
    return r;
  }

  // True when the peer closed the connection within timeout_ms.
  bool wait_closed(int timeout_ms) {
    read_until([&](const std::string&) { return eof_; }, timeout_ms);
    return eof_;
  }
  std::string& buffer() { return buf_; }

 private:
  int fd_;
  std::string buf_;
  bool eof_ = false;
};

// One request and its reply on a fresh connection.
inline Reply fetch(uint16_t port, std::string_view request, std::string_view method = "GET") {
  Client c(port);
  if (!c.ok()) return {};
  c.send(request);
  return c.read_reply(method);
}

inline std::string get_req(std::string_view path, std::string_view host = "app.test",
                           std::string_view extra = "") {
  return "GET " + std::string(path) + " HTTP/1.1\r\nHost: " + std::string(host) + "\r\n" +
         std::string(extra) + "\r\n";
}

// An upstream HTTP/1.1 server. Endpoints:
//   /healthz           200 "ok", or 503 while unhealthy
//   /echo              200, body = the request head as received + its decoded body
//   /count             200, body = number of request body bytes (streams, no buffering)
//   /chunked?n=K       200 chunked, K chunks "chunk-i\n"
//   /sse               text/event-stream, chunked, an event every 30 ms until closed
//   /slow?ms=N         200 after N ms
//   /close             200 without Content-Length, then close (close-delimited)
//   /reset             close the connection without answering
//   /status?code=N     that status, empty body
//   /ws                101 if asked to upgrade, then echo bytes
//   /badchunk          200 chunked whose first chunk size is not hex
//   anything else      200, body = name
class Upstream {
 public:
  explicit Upstream(std::string name) : name_(std::move(name)) {
    lfd_ = listen_loopback(&port_);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~Upstream() { stop(); }
  void stop() {
    if (stopped_.exchange(true)) return;
    ::shutdown(lfd_, SHUT_RDWR);
    ::close(lfd_);
    acceptor_.join();
    {
      std::lock_guard l(mu_);
      for (int fd : open_) ::shutdown(fd, SHUT_RDWR);
    }
    for (auto& t : conns_) t.join();
  }
  uint16_t port() const { return port_; }
  std::string addr() const { return "127.0.0.1:" + std::to_string(port_); }
  const std::string& name() const { return name_; }
  void set_healthy(bool h) { healthy_ = h; }
  int connections() const { return accepted_.load(); }
  int requests() const { return requests_.load(); }
  int open_connections() {
    std::lock_guard l(mu_);
    return static_cast<int>(open_.size());
  }
  // The next `n` requests (any path but /healthz) get the connection closed
  // without an answer.
  void reset_next(int n) { reset_next_ = n; }

 private:
  void accept_loop() {
    for (;;) {
      int fd = ::accept4(lfd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      accepted_++;
      std::lock_guard l(mu_);
      open_.push_back(fd);
      conns_.emplace_back([this, fd] {
        serve(fd);
        std::lock_guard l2(mu_);
        std::erase(open_, fd);
        ::close(fd);
      });
    }
  }

  static bool read_more(int fd, std::string& buf) {
    char b[65536];
    ssize_t n = ::recv(fd, b, sizeof b, 0);
    if (n <= 0) return false;
    buf.append(b, static_cast<size_t>(n));
    return true;
  }

  static std::string query_value(std::string_view target, std::string_view key) {
    size_t q = target.find('?');
    if (q == std::string_view::npos) return "";
    std::string_view qs = target.substr(q + 1);
    size_t at = qs.find(std::string(key) + "=");
    if (at == std::string_view::npos) return "";
    std::string_view v = qs.substr(at + key.size() + 1);
    return std::string(v.substr(0, v.find('&')));
  }

  void serve(int fd) {
    std::string buf;
    for (;;) {
      size_t scan = 0, hl = 0;
      while ((hl = http::find_head_end(buf.data(), buf.size(), &scan)) == 0)
        if (!read_more(fd, buf)) return;
      if (hl == http::kHeadBareLf) return;
      http::RequestHead h;
      if (http::parse_request_head(buf.data(), hl, {}, &h) != http::HeadError::kNone) {
        send_all(fd, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
      }
      requests_++;
      std::string head = buf.substr(0, hl);
      std::string path(h.path), target(h.target), method(h.method);
      bool keep = h.keep_alive();
      bool upgrade = (h.flags & http::kConnUpgrade) != 0;
      http::BodyKind bk = h.body;
      uint64_t cl = h.content_length;
      buf.erase(0, hl);
      if (path != "/healthz" && reset_next_.load() > 0) {
        reset_next_--;
        linger l{1, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);  // RST
        return;
      }
      // Body (decoded).
      std::string body;
      uint64_t count = 0;
      bool counting = path == "/count";
      if (bk == http::BodyKind::kLength) {
        uint64_t left = cl;
        for (;;) {
          uint64_t take = std::min<uint64_t>(buf.size(), left);
          if (counting)
            count += take;
          else
            body.append(buf, 0, take);
          buf.erase(0, take);
          left -= take;
          if (left == 0) break;
          if (!read_more(fd, buf)) return;
        }
      } else if (bk == http::BodyKind::kChunked) {
        http::ChunkedScanner sc;
        for (;;) {
          size_t used = 0;
          auto st = sc.feed(buf.data(), buf.size(), &used, [&](const char* p, size_t n) {
            if (counting)
              count += n;
            else
              body.append(p, n);
          });
          buf.erase(0, used);
          if (st == http::ChunkedScanner::Status::kDone) break;
          if (st == http::ChunkedScanner::Status::kError) return;
          if (!read_more(fd, buf)) return;
        }
      }
      auto respond = [&](int code, std::string b, std::string extra = "") {
        std::string r =
            "HTTP/1.1 " + std::to_string(code) +
            " X\r\nContent-Length: " + std::to_string(b.size()) +
            "\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nX-Upstream: " + name_ + "\r\n" +
            extra + "\r\n" + b;
        return send_all(fd, r);
      };
      bool okw = true;
      if (path == "/healthz") {
        okw = healthy_ ? respond(200, "ok") : respond(503, "down");
      } else if (path == "/echo") {
        okw = respond(200, head + body);
      } else if (path == "/count") {
        okw = respond(200, std::to_string(count));
      } else if (path == "/chunked") {
        int n = std::atoi(query_value(target, "n").c_str());
        std::string r =
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Upstream: " + name_ + "\r\n\r\n";
        for (int i = 0; i < n; ++i) {
          std::string c = "chunk-" + std::to_string(i) + "\n";
          char sz[16];
          std::snprintf(sz, sizeof sz, "%zx", c.size());
          r += std::string(sz) + "\r\n" + c + "\r\n";
        }
        r += "0\r\n\r\n";
        okw = send_all(fd, r);
      } else if (path == "/sse") {
        if (!send_all(fd,
                      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: "
                      "chunked\r\n"
                      "X-Upstream: " +
                          name_ + "\r\n\r\n"))
          return;
        for (int i = 0;; ++i) {
          std::string ev = "data: " + name_ + " " + std::to_string(i) + "\n\n";
          char sz[16];
          std::snprintf(sz, sizeof sz, "%zx", ev.size());
          if (!send_all(fd, std::string(sz) + "\r\n" + ev + "\r\n")) return;
          pollfd p{fd, POLLIN, 0};
          if (::poll(&p, 1, 30) > 0) {
            char b[1];
            if (::recv(fd, b, 1, MSG_PEEK) <= 0) return;
          }
        }
      } else if (path == "/badchunk") {
        send_all(fd,
                 "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n");
        return;
      } else if (path == "/slow") {
        std::this_thread::sleep_for(
            std::chrono::milliseconds(std::atoi(query_value(target, "ms").c_str())));
        okw = respond(200, name_);
      } else if (path == "/close") {
        send_all(fd,
                 "HTTP/1.1 200 OK\r\nX-Upstream: " + name_ + "\r\n\r\nclose-delimited " + name_);
        return;
      } else if (path == "/reset") {
        linger l{1, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        return;
      } else if (path == "/status") {
        okw = respond(std::atoi(query_value(target, "code").c_str()), "");
      } else if (path == "/ws" && upgrade) {
        if (!send_all(fd,
                      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
                      "Upgrade\r\n\r\n"))
          return;
        if (!buf.empty() && !send_all(fd, buf)) return;
        for (;;) {
          char b[4096];
          ssize_t n = ::recv(fd, b, sizeof b, 0);
          if (n <= 0) return;
          if (!send_all(fd, std::string_view(b, static_cast<size_t>(n)))) return;
        }
      } else {
        okw = respond(200, name_);
      }
      if (!okw || !keep) return;
    }
  }

  std::string name_;
  uint16_t port_ = 0;
  int lfd_ = -1;
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<int> open_;
  std::vector<std::thread> conns_;
  std::atomic<bool> stopped_{false};
  std::atomic<bool> healthy_{true};
  std::atomic<int> accepted_{0};
  std::atomic<int> requests_{0};
  std::atomic<int> reset_next_{0};
};

}  // namespace md::proxy::testing
