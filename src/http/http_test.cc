#include "http/http.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "core/interrupt.h"

namespace md::http {
namespace {

namespace fsys = std::filesystem;

class HttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/md-http-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    sock_ = dir_ / "api.sock";
  }
  void TearDown() override { fsys::remove_all(dir_); }

  Router router() {
    Router r;
    r.add("GET", "/v1/ping", [](const Request&) { return Response::json(200, {{"pong", true}}); });
    r.add("POST", "/v1/items/{name}", [](const Request& req) {
      auto body = req.json();
      if (!body) return Response::from_error(body.error());
      return Response::json(200, {{"name", req.params.at("name")},
                                  {"body", *body},
                                  {"q", req.query_param("q").value_or("")}});
    });
    r.add("GET", "/v1/fail", [](const Request&) {
      return Response::from_error(Error(Errc::kFailedPrecondition, "targets unhealthy"));
    });
    r.add("GET", "/v1/slow", [this](const Request&) {
      ++in_slow_;
      while (!release_.load()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      return Response::json(200, {{"slow", true}});
    });
    r.add("GET", "/v1/throw", [](const Request&) -> Response { throw std::runtime_error("boom"); });
    return r;
  }

  fsys::path dir_, sock_;
  std::atomic<bool> release_{false};
  std::atomic<int> in_slow_{0};
};

TEST_F(HttpTest, RoutesJsonAndParams) {
  auto srv = UnixServer::start({.socket_path = sock_}, router());
  ASSERT_TRUE(srv) << srv.error().what();
  UnixClient c(sock_);
  auto r = c.call("GET", "/v1/ping");
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ((*r)["pong"], true);
  nlohmann::json body = {{"k", 1}};
  r = c.call("POST", "/v1/items/a%2Fb?q=x%20y", &body);
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ((*r)["name"], "a/b");
  EXPECT_EQ((*r)["body"]["k"], 1);
  EXPECT_EQ((*r)["q"], "x y");
}

TEST_F(HttpTest, ErrorsCarryCodeAndMessage) {
  auto srv = UnixServer::start({.socket_path = sock_}, router());
  ASSERT_TRUE(srv);
  UnixClient c(sock_);
  auto r = c.call("GET", "/v1/fail");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kFailedPrecondition);
  EXPECT_EQ(r.error().message(), "targets unhealthy");

  auto raw = c.request("GET", "/v1/nope");
  ASSERT_TRUE(raw);
  EXPECT_EQ(raw->status, 404);
  EXPECT_EQ(raw->to_status().error().code(), Errc::kNotFound);
  raw = c.request("DELETE", "/v1/ping");
  ASSERT_TRUE(raw);
  EXPECT_EQ(raw->status, 405);
  EXPECT_EQ(raw->header("allow"), "GET");
  raw = c.request("POST", "/v1/items/x", "{not json");
  ASSERT_TRUE(raw);
  EXPECT_EQ(raw->status, 400);
  EXPECT_NE(raw->body.find("not valid JSON"), std::string::npos);
  // A number past double's range is a parse failure too (nlohmann throws
  // out_of_range, not parse_error): 400, not a 500 from the handler guard.
  raw = c.request("POST", "/v1/items/x", "{\"n\": 1e99999}");
  ASSERT_TRUE(raw);
  EXPECT_EQ(raw->status, 400);
  EXPECT_NE(raw->body.find("not valid JSON"), std::string::npos);
  raw = c.request("GET", "/v1/throw");
  ASSERT_TRUE(raw);
  EXPECT_EQ(raw->status, 500);
  EXPECT_NE(raw->body.find("boom"), std::string::npos);
}

// The same server over TCP (the agent's Prometheus endpoint): a port-0
// listener reports its port, a plain HTTP GET reaches the routes, and a
// taken port is kUnavailable.
TEST_F(HttpTest, ServesOverTcp) {
  ServerOptions o;
  o.tcp_address = "127.0.0.1:0";
  auto server = UnixServer::start(o, router());
  ASSERT_TRUE(server) << server.error().what();
  const int port = (*server)->tcp_port();
  ASSERT_GT(port, 0);
  auto r = get("127.0.0.1", static_cast<uint16_t>(port), "/v1/ping", Millis(10000));
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("pong"), std::string::npos) << r->body;
  o.tcp_address = "127.0.0.1:" + std::to_string(port);
  auto again = UnixServer::start(o, router());
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), Errc::kUnavailable) << again.error().what();
  o.tcp_address = "no-port";
  EXPECT_EQ(UnixServer::start(o, router()).error().code(), Errc::kInvalidArgument);
  (*server)->stop();
  EXPECT_FALSE(get("127.0.0.1", static_cast<uint16_t>(port), "/v1/ping", Millis(2000)));
}

TEST_F(HttpTest, BodyLimitAnswers413) {
  ServerOptions o{.socket_path = sock_};
  o.max_body_bytes = 10;
  auto srv = UnixServer::start(o, router());
  ASSERT_TRUE(srv);
  auto raw = UnixClient(sock_).request("POST", "/v1/items/x", std::string(100, 'x'));
  ASSERT_TRUE(raw) << raw.error().what();
  EXPECT_EQ(raw->status, 413);
}

TEST_F(HttpTest, SocketIsPrivateAndRemovedOnStop) {
  ::umask(022);
  auto srv = UnixServer::start({.socket_path = sock_}, router());
  ASSERT_TRUE(srv);
  struct stat st {};
  ASSERT_EQ(::stat(sock_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  (*srv)->stop();
  EXPECT_FALSE(fsys::exists(sock_));
}

TEST_F(HttpTest, StaleSocketReplacedLiveOneRefused) {
  // A socket file nobody listens on: bind and close without unlinking.
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strcpy(a.sun_path, sock_.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ::close(fd);
  auto refused = UnixClient(sock_).request("GET", "/v1/ping");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), Errc::kUnavailable);
  EXPECT_NE(refused.error().what().find("refused"), std::string::npos);

  auto srv = UnixServer::start({.socket_path = sock_}, router());
  ASSERT_TRUE(srv) << srv.error().what();
  auto second = UnixServer::start({.socket_path = sock_}, router());
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code(), Errc::kAlreadyExists);
  // The first server still serves.
  EXPECT_TRUE(UnixClient(sock_).call("GET", "/v1/ping"));
}

TEST_F(HttpTest, RefusesNonSocketFileAndLongPath) {
  std::ofstream(sock_) << "data";
  auto srv = UnixServer::start({.socket_path = sock_}, router());
  ASSERT_FALSE(srv);
  EXPECT_EQ(srv.error().code(), Errc::kAlreadyExists);
  EXPECT_TRUE(fsys::exists(sock_));
  auto longp = UnixServer::start({.socket_path = dir_ / std::string(120, 'x')}, router());
  ASSERT_FALSE(longp);
  EXPECT_EQ(longp.error().code(), Errc::kInvalidArgument);
  EXPECT_NE(longp.error().what().find("limit is 107"), std::string::npos);
}

TEST_F(HttpTest, ClientErrorsWhenSocketMissing) {
  auto r = UnixClient(dir_ / "missing.sock").request("GET", "/");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kUnavailable);
  EXPECT_NE(r.error().what().find("is the server running"), std::string::npos) << r.error().what();
}

TEST_F(HttpTest, SlowHandlerDoesNotBlockOthersAndClientTimesOut) {
  auto srv = UnixServer::start({.socket_path = sock_}, router());
  ASSERT_TRUE(srv);
  auto slow =
      std::async(std::launch::async, [&] { return UnixClient(sock_).call("GET", "/v1/slow"); });
  // Others are served while the slow handler runs.
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(UnixClient(sock_).call("GET", "/v1/ping"));
  auto timed = UnixClient(sock_, Millis(100)).request("GET", "/v1/slow");
  ASSERT_FALSE(timed);
  EXPECT_EQ(timed.error().code(), Errc::kTimeout);
  release_ = true;
  auto r = slow.get();
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ((*r)["slow"], true);
}

// Under an interrupt::Watch (a controller), SIGTERM cuts an exchange in
// flight on the shared client loop at once (kCancelled, not the timeout), a
// signal still pending cuts the next exchange before it connects, and one
// taken by the caller cuts nothing.
TEST_F(HttpTest, ASignalCutsAnExchangeInFlight) {
  auto srv = UnixServer::start({.socket_path = sock_}, router());
  ASSERT_TRUE(srv);
  interrupt::Watch watch;
  auto slow = std::async(std::launch::async, [&] {
    // WHY 20 s: without the cut this ends in kTimeout, which fails below.
    return UnixClient(sock_, Millis(20'000)).request("GET", "/v1/slow");
  });
  while (in_slow_.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(::kill(::getpid(), SIGTERM), 0);
  auto r = slow.get();
  release_ = true;
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kCancelled) << r.error().what();
  EXPECT_NE(r.error().what().find("interrupted by a signal"), std::string::npos)
      << r.error().what();
  EXPECT_TRUE(interrupt::flag().load());

  auto next = UnixClient(sock_).request("GET", "/v1/ping");  // still pending
  ASSERT_FALSE(next);
  EXPECT_EQ(next.error().code(), Errc::kCancelled);

  interrupt::take();
  auto after = UnixClient(sock_).call("GET", "/v1/ping");
  ASSERT_TRUE(after) << after.error().what();
  EXPECT_EQ((*after)["pong"], true);
}

TEST_F(HttpTest, StopWithOpenConnections) {
  auto srv = UnixServer::start({.socket_path = sock_}, router());
  ASSERT_TRUE(srv);
  // An idle connection that never sends a request must not block stop().
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strcpy(a.sun_path, sock_.c_str());
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  (*srv)->stop();
  char c;
  EXPECT_LE(::read(fd, &c, 1), 0);  // EOF, or a reset if it was never accepted
  ::close(fd);
}

// A one-shot TCP server on 127.0.0.1:0 that answers one request with `answer`.
struct OneShot {
  int lfd = -1;
  uint16_t port = 0;
  std::thread t;
  explicit OneShot(std::string answer, int delay_ms = 0) {
    lfd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    ::listen(lfd, 4);
    t = std::thread([this, answer, delay_ms] {
      int c = ::accept(lfd, nullptr, nullptr);
      if (c < 0) return;
      char buf[4096];
      ssize_t n = ::read(c, buf, sizeof buf);
      (void)n;
      std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
      ssize_t w = ::write(c, answer.data(), answer.size());
      (void)w;
      ::close(c);
    });
  }
  ~OneShot() {
    ::shutdown(lfd, SHUT_RDWR);
    t.join();
    ::close(lfd);
  }
};

TEST(LoopbackGet, ReadsStatusAndBody) {
  OneShot s("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  auto r = get("127.0.0.1", s.port, "/healthz", Millis(2000));
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "ok");
}

TEST(LoopbackGet, TimeoutAndRefused) {
  {
    OneShot s("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 500);
    auto r = get("127.0.0.1", s.port, "/", Millis(100));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), Errc::kTimeout);
  }
  uint16_t port;
  {
    OneShot s("");
    port = s.port;
  }
  auto r = get("127.0.0.1", port, "/", Millis(1000));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kUnavailable);
}

TEST(Percent, RoundTrip) {
  EXPECT_EQ(*percent_decode(percent_encode("a b/c?d")), "a b/c?d");
  EXPECT_FALSE(percent_decode("%2"));
  EXPECT_FALSE(percent_decode("%zz"));
}

}  // namespace
}  // namespace md::http
