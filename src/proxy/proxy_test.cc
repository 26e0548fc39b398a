// The proxy end to end in one process: real sockets, a real upstream server
// (test_support.h), the real data path and control plane.
#include "proxy/proxy.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <future>

#include "core/fs.h"
#include "http/http.h"
#include "proxy/test_support.h"

namespace md::proxy {
namespace {

using namespace md::proxy::testing;
namespace fsys = std::filesystem;

class ProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/md-proxy-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    p_.reset();
    fsys::remove_all(dir_);
  }

  Options options() {
    Options o;
    o.listeners.push_back({"127.0.0.1:0", {}, {}, {}});
    o.threads = 2;
    return o;
  }
  void start(Options o) {
    auto p = Proxy::start(std::move(o));
    ASSERT_TRUE(p) << p.error().what();
    p_ = std::move(*p);
    port_ = p_->listening()[0].port;
  }
  static ServiceSpec spec(std::string name = "app") {
    ServiceSpec s;
    s.name = std::move(name);
    s.health.interval = Millis(100);
    s.health.timeout = Millis(100);
    s.health.healthy_threshold = 1;
    s.health.unhealthy_threshold = 2;
    s.drain_deadline = Millis(300);
    return s;
  }
  static DeployOptions fast() {
    DeployOptions d;
    d.probe_interval = Millis(20);
    d.health_timeout = Millis(3000);
    return d;
  }
  // A service "app" whose live set is `ups`.
  void serve(std::vector<Upstream*> ups, ServiceSpec s = spec()) {
    ASSERT_TRUE(p_->upsert_service(s));
    std::vector<Endpoint> eps;
    for (auto* u : ups) eps.push_back({"127.0.0.1", u->port()});
    auto r = p_->deploy(s.name, eps, fast());
    ASSERT_TRUE(r) << r.error().what();
  }
  // Waits until the live set counted `n` requests (counters are recorded
  // right after the last byte is written, so a client can be faster).
  void wait_counted(uint64_t n) {
    for (int i = 0; i < 400 && live_counters().requests < n; ++i)
      std::this_thread::sleep_for(Millis(5));
  }
  Counters live_counters(const std::string& svc = "app") {
    for (const auto& s : p_->metrics().services)
      if (s.service == svc)
        for (const auto& set : s.sets)
          if (set.role == "live") return set.counters;
    return {};
  }

  fsys::path dir_;
  std::unique_ptr<Proxy> p_;
  uint16_t port_ = 0;
};

TEST_F(ProxyTest, ForwardsOverPooledKeepAlive) {
  Upstream blue("blue");
  start(options());
  serve({&blue});
  int before = blue.connections();
  Client c(port_);
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(c.send(get_req("/")));
    Reply r = c.read_reply();
    ASSERT_EQ(r.status, 200) << i;
    EXPECT_EQ(r.body, "blue");
    EXPECT_FALSE(r.closed);
  }
  // One client connection, pooled upstream connections: far fewer than 20.
  EXPECT_LE(blue.connections() - before, 2);
  wait_counted(20);
  Counters c2 = live_counters();
  EXPECT_EQ(c2.by_class[1], 20u);
  EXPECT_GT(c2.percentile_ms(0.99), 0.0);
}

TEST_F(ProxyTest, ForwardedHeadersAndHopByHop) {
  Upstream blue("blue");
  start(options());
  serve({&blue});
  Reply r = fetch(
      port_, get_req("/echo", "Example.COM:8080",
                     "X-Forwarded-For: 10.0.0.1\r\nConnection: keep-alive, X-Secret\r\n"
                     "X-Secret: s\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\n"
                     "Proxy-Connection: keep-alive\r\nX-Forwarded-Proto: https\r\nX-Kept: 1\r\n"));
  ASSERT_EQ(r.status, 200);
  const std::string& seen = r.body;
  EXPECT_NE(seen.find("X-Forwarded-For: 10.0.0.1, 127.0.0.1\r\n"), std::string::npos) << seen;
  EXPECT_NE(seen.find("X-Forwarded-Proto: http\r\n"), std::string::npos) << seen;
  EXPECT_EQ(seen.find("X-Forwarded-Proto: https"), std::string::npos) << seen;
  EXPECT_NE(seen.find("X-Forwarded-Host: Example.COM:8080\r\n"), std::string::npos) << seen;
  EXPECT_NE(seen.find("X-Kept: 1\r\n"), std::string::npos);
  for (const char* gone : {"X-Secret", "Keep-Alive", "TE:", "Proxy-Connection", "Connection:"})
    EXPECT_EQ(seen.find(gone), std::string::npos) << gone << " reached the upstream:\n" << seen;
  // Hop-by-hop fields of the response are removed too.
  EXPECT_EQ(r.header("Keep-Alive"), "");
  EXPECT_EQ(r.header("Connection"), "");
  EXPECT_EQ(r.header("X-Upstream"), "blue");
}

TEST_F(ProxyTest, ChunkedBothWaysAndCloseDelimited) {
  Upstream blue("blue");
  start(options());
  serve({&blue});
  Client c(port_);
  c.send(
      "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n "
      "world\r\n0\r\n\r\n");
  Reply r = c.read_reply();
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("Transfer-Encoding: chunked"), std::string::npos);
  EXPECT_EQ(r.body.substr(r.body.size() - 11), "hello world");
  c.send(get_req("/chunked?n=50"));
  r = c.read_reply();
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.header("Transfer-Encoding"), "chunked");
  EXPECT_NE(r.body.find("chunk-49\n"), std::string::npos);
  EXPECT_FALSE(r.closed);
  c.send(get_req("/close"));
  r = c.read_reply();
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "close-delimited blue");
  EXPECT_EQ(r.header("Connection"), "close");
  EXPECT_TRUE(c.wait_closed(2000));
}

TEST_F(ProxyTest, LargeUploadStreams) {
  Upstream blue("blue");
  start(options());
  serve({&blue});
  Client c(port_);
  const size_t total = 32u << 20;  // far beyond any buffer
  ASSERT_TRUE(c.send("POST /count HTTP/1.1\r\nHost: a\r\nContent-Length: " + std::to_string(total) +
                     "\r\n\r\n"));
  std::string chunk(1 << 16, 'x');
  for (size_t sent = 0; sent < total; sent += chunk.size()) ASSERT_TRUE(c.send(chunk));
  Reply r = c.read_reply("POST", 20000);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body, std::to_string(total));
}

// The write paths: a large response to a client that stops reading for a
// while (short writes, EAGAIN, resumed on EPOLLOUT), a large upload, and
// pipelined requests answered in order on one connection.
void exercise_writes(uint16_t port) {
  Client c(port);
  ASSERT_TRUE(c.send(get_req("/chunked?n=200000")));
  std::this_thread::sleep_for(Millis(300));  // the socket buffers fill up meanwhile
  Reply r = c.read_reply("GET", 20000);
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("chunk-199999\n"), std::string::npos);
  EXPECT_FALSE(r.closed);
  ASSERT_TRUE(c.send(get_req("/") + get_req("/echo?n=1") + get_req("/")));
  for (int i = 0; i < 3; ++i) {
    Reply p = c.read_reply();
    ASSERT_EQ(p.status, 200) << i;
    if (i == 1) {
      EXPECT_NE(p.body.find("/echo?n=1"), std::string::npos) << p.body;
    } else {
      EXPECT_EQ(p.body, "blue") << i;
    }
  }
  const size_t total = 4u << 20;
  ASSERT_TRUE(c.send("POST /count HTTP/1.1\r\nHost: a\r\nContent-Length: " + std::to_string(total) +
                     "\r\n\r\n"));
  std::string chunk(1 << 16, 'x');
  for (size_t sent = 0; sent < total; sent += chunk.size()) ASSERT_TRUE(c.send(chunk));
  r = c.read_reply("POST", 20000);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body, std::to_string(total));
}

TEST_F(ProxyTest, BatchedWritesSlowReaderPipelineUpload) {
  Upstream blue("blue");
  start(options());
  serve({&blue});
  exercise_writes(port_);
}

TEST_F(ProxyTest, UnbatchedWritesSlowReaderPipelineUpload) {
  Upstream blue("blue");
  Options o = options();
  o.batch_writes = false;
  start(std::move(o));
  serve({&blue});
  exercise_writes(port_);
}

TEST_F(ProxyTest, ServerSentEventsAreNotBuffered) {
  Upstream blue("blue");
  start(options());
  serve({&blue});
  Client c(port_);
  c.send(get_req("/sse"));
  // Events arrive while the response is still open.
  ASSERT_TRUE(c.read_until(
      [](const std::string& b) { return b.find("data: blue 2") != std::string::npos; }, 3000));
  EXPECT_NE(c.buffer().find("text/event-stream"), std::string::npos);
}

TEST_F(ProxyTest, WebSocketUpgradeTunnels) {
  Upstream blue("blue");
  start(options());
  serve({&blue});
  Client c(port_);
  c.send(
      "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
      "Sec-WebSocket-Key: x\r\nSec-WebSocket-Version: 13\r\n\r\n");
  ASSERT_TRUE(c.read_until(
      [](const std::string& b) { return b.find("\r\n\r\n") != std::string::npos; }, 3000));
  EXPECT_EQ(c.buffer().substr(0, 12), "HTTP/1.1 101");
  c.buffer().clear();
  c.send("ping-bytes");
  ASSERT_TRUE(c.read_until([](const std::string& b) { return b == "ping-bytes"; }, 3000))
      << c.buffer();
  c.shutdown_write();
  EXPECT_TRUE(c.wait_closed(3000));
}

TEST_F(ProxyTest, MalformedAndOversizedRequests) {
  Upstream blue("blue");
  start(options());
  serve({&blue});
  EXPECT_EQ(
      fetch(port_,
            "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n")
          .status,
      400);
  EXPECT_EQ(
      fetch(port_, "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx")
          .status,
      400);
  EXPECT_EQ(fetch(port_, "GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n").status, 400);
  EXPECT_EQ(fetch(port_, "GET / HTTP/1.1\r\nHost : a\r\n\r\n").status, 400);
  EXPECT_EQ(fetch(port_, "GET / HTTP/3.0\r\nHost: a\r\n\r\n").status, 505);
  EXPECT_EQ(
      fetch(port_, "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n")
          .status,
      431);
  std::string many;
  for (int i = 0; i < 150; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
  EXPECT_EQ(fetch(port_, get_req("/", "a", many)).status, 431);
  Reply r = fetch(port_, "GET / HTTP/1.1\r\n\r\n");
  EXPECT_EQ(r.status, 400);
  EXPECT_TRUE(r.closed);
  // The worker is fine afterwards.
  EXPECT_EQ(fetch(port_, get_req("/")).status, 200);
}

// Regression (issue 11): a head with bare LF line ends waited for the header
// timeout and got 408; the docs promise 400, and at once.
TEST_F(ProxyTest, BareLfHeadGets400AtOnce) {
  Upstream blue("blue");
  Options o = options();
  o.timeouts.client_header = Millis(20000);
  start(o);
  serve({&blue});
  Client c(port_);
  c.send("GET / HTTP/1.1\nHost: a\n\n");
  Reply r = c.read_reply("GET", 5000);  // well under the header timeout
  EXPECT_EQ(r.status, 400);
  EXPECT_TRUE(c.wait_closed(5000));
}

// Regression (issue 11): an absolute-form request was routed by its URI but
// forwarded with the client's Host, so the client chose the Host a
// host-restricted backend saw (RFC 9112 3.2.2: replace it).
TEST_F(ProxyTest, AbsoluteFormForwardsTheTargetsAuthorityAsHost) {
  Upstream admin("admin");
  start(options());
  ServiceSpec s = spec("admin");
  s.host = "admin.example";
  serve({&admin}, s);
  Reply r = fetch(port_, "GET http://admin.example/echo HTTP/1.1\r\nHost: public.example\r\n\r\n");
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("\r\nHost: admin.example\r\n"), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("public.example"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("X-Forwarded-Host: admin.example\r\n"), std::string::npos) << r.body;
  // Origin-form requests keep their Host.
  r = fetch(port_, get_req("/echo", "admin.example"));
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("Host: admin.example\r\n"), std::string::npos) << r.body;
}

// Regression (issue 11): a backend's invalid chunk size closed the client
// with 0 bytes; nothing was sent yet, so the client gets a 502.
TEST_F(ProxyTest, InvalidChunkSizeBeforeAnyByteSentGives502) {
  Upstream blue("blue");
  start(options());
  serve({&blue});
  Reply r = fetch(port_, get_req("/badchunk"));
  EXPECT_EQ(r.status, 502);
  EXPECT_EQ(fetch(port_, get_req("/")).status, 200);
}

// Issue 11: idle connections up to the cap; past it, a new connection closes
// the oldest idle one, so a flood of idle connects cannot lock clients out.
TEST_F(ProxyTest, ClientConnectionCapClosesTheOldestIdleConnection) {
  Upstream blue("blue");
  Options o = options();
  o.limits.max_connections = 8;
  start(o);
  serve({&blue});
  std::vector<std::unique_ptr<Client>> idle;
  for (int i = 0; i < 24; ++i) {
    idle.push_back(std::make_unique<Client>(port_));
    ASSERT_TRUE(idle.back()->ok());
  }
  for (int i = 0; i < 5; ++i) {
    Reply r = fetch(port_, get_req("/"));
    EXPECT_EQ(r.status, 200) << "request " << i << " past the cap";
  }
  EXPECT_TRUE(idle.front()->wait_closed(5000)) << "the oldest idle connection is still open";
  for (int i = 0; i < 400 && p_->metrics().client_connections > 8; ++i)
    std::this_thread::sleep_for(Millis(5));
  EXPECT_LE(p_->metrics().client_connections, 8);
}

// Issue 11: connections to one target are capped; past the cap a request
// gets 503 at once and the target is not ejected.
TEST_F(ProxyTest, UpstreamConnectionCapAnswers503WithoutEjecting) {
  Upstream blue("blue");
  Options o = options();
  o.limits.max_upstream_connections = 2;
  start(o);
  ServiceSpec s = spec();
  s.ejection.consecutive_failures = 1;
  serve({&blue}, s);
  Client a(port_), b(port_);
  ASSERT_TRUE(a.send(get_req("/slow?ms=1500")));
  ASSERT_TRUE(b.send(get_req("/slow?ms=1500")));
  for (int i = 0; i < 400 && live_counters().active < 2; ++i)
    std::this_thread::sleep_for(Millis(5));
  Reply r = fetch(port_, get_req("/"));
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(a.read_reply().status, 200);
  EXPECT_EQ(b.read_reply().status, 200);
  // Not ejected: once the two upstream connections are handed back (on a
  // slow, sanitized build that can lag the replies), the target serves again.
  int status = 0;
  for (int i = 0; i < 100 && status != 200; ++i) {
    status = fetch(port_, get_req("/")).status;
    if (status != 200) std::this_thread::sleep_for(Millis(50));
  }
  EXPECT_EQ(status, 200);
  auto st = p_->status("app");
  ASSERT_TRUE(st);
  EXPECT_FALSE(st->live->targets[0].ejected);
}

TEST(ProxyLimits, AutoFromTheOpenFileLimit) {
  Limits l = auto_limits({}, 1024, 1);
  EXPECT_EQ(l.max_connections, (1024u - kReservedFds) / 2);
  EXPECT_EQ(l.max_upstream_connections, (1024u - kReservedFds) / 2);
  EXPECT_EQ(auto_limits({}, 1024, 2).max_connections, (1024u - kReservedFds) / 4);
  Limits asked;
  asked.max_connections = 7;
  EXPECT_EQ(auto_limits(asked, 1024, 1).max_connections, 7u);
  EXPECT_GE(auto_limits({}, 100, 1).max_connections, 16u);  // tiny limits still work
  EXPECT_GE(raise_open_file_limit(), 16u);
}

TEST_F(ProxyTest, SlowlorisGets408AndIdleKeepAliveCloses) {
  Upstream blue("blue");
  Options o = options();
  o.timeouts.client_header = Millis(300);
  o.timeouts.client_idle = Millis(300);
  start(o);
  serve({&blue});
  Client slow(port_);
  slow.send("GET / HTTP/1.1\r\nHost: a\r\n");
  Reply r = slow.read_reply("GET", 3000);
  EXPECT_EQ(r.status, 408);
  EXPECT_TRUE(slow.wait_closed(2000));
  Client idle(port_);
  idle.send(get_req("/"));
  EXPECT_EQ(idle.read_reply().status, 200);
  EXPECT_TRUE(idle.wait_closed(3000));
}

TEST_F(ProxyTest, ConnectFailureRetriedOnAnotherTarget) {
  Upstream blue("blue");
  Upstream dead("dead");
  start(options());
  ServiceSpec s = spec();
  s.health.interval = Millis(60000);  // keep the dead one "healthy" for this test
  ASSERT_TRUE(p_->upsert_service(s));
  ASSERT_TRUE(p_->deploy("app", {{"127.0.0.1", blue.port()}, {"127.0.0.1", dead.port()}}, fast()));
  dead.stop();
  for (int i = 0; i < 10; ++i) EXPECT_EQ(fetch(port_, get_req("/")).status, 200) << i;
  wait_counted(10);
  EXPECT_GE(live_counters().retries, 1u);
  EXPECT_GE(live_counters().upstream_errors, 1u);
}

TEST_F(ProxyTest, ResetBeforeResponseRetriesIdempotentOnlyOnce) {
  Upstream blue("blue");
  start(options());
  serve({&blue});
  blue.reset_next(1);
  EXPECT_EQ(fetch(port_, get_req("/")).status, 200);  // retried
  blue.reset_next(1);
  Reply post = fetch(port_, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx", "POST");
  EXPECT_EQ(post.status, 502);  // sent, never retried
  blue.reset_next(2);
  EXPECT_EQ(fetch(port_, get_req("/")).status, 502);  // only one retry
  wait_counted(3);
  Counters c = live_counters();
  EXPECT_EQ(c.retries, 2u);
}

TEST_F(ProxyTest, ActiveHealthTakesTargetOutAndBack) {
  Upstream blue("blue"), green("green");
  start(options());
  serve({&blue, &green});
  green.set_healthy(false);
  // After unhealthy_threshold probes, green gets nothing.
  std::this_thread::sleep_for(Millis(500));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(fetch(port_, get_req("/")).body, "blue");
  auto st = p_->status("app");
  ASSERT_TRUE(st);
  int unhealthy = 0;
  for (const auto& t : st->live->targets) unhealthy += !t.healthy;
  EXPECT_EQ(unhealthy, 1);
  green.set_healthy(true);
  std::this_thread::sleep_for(Millis(500));
  std::set<std::string> seen;
  for (int i = 0; i < 10; ++i) seen.insert(fetch(port_, get_req("/")).body);
  EXPECT_EQ(seen.size(), 2u);
}

TEST_F(ProxyTest, PassiveEjection) {
  Upstream blue("blue"), bad("bad");
  start(options());
  ServiceSpec s = spec();
  s.ejection.consecutive_failures = 2;
  s.ejection.duration = Millis(60000);
  serve({&blue, &bad}, s);
  bad.reset_next(1000);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(fetch(port_, get_req("/")).status, 200) << i;
  auto st = p_->status("app");
  int ejected = 0;
  for (const auto& t : st->live->targets) ejected += t.ejected;
  EXPECT_EQ(ejected, 1);
}

TEST_F(ProxyTest, DeploySwitchSemantics) {
  Upstream blue("blue"), green("green");
  start(options());
  ServiceSpec s = spec();
  s.drain_deadline = Millis(5000);  // the in-flight request must finish on its own
  serve({&blue}, s);
  Client keep(port_);  // an idle keep-alive client across the switch
  keep.send(get_req("/"));
  ASSERT_EQ(keep.read_reply().body, "blue");
  // An in-flight request to blue.
  auto inflight =
      std::async(std::launch::async, [&] { return fetch(port_, get_req("/slow?ms=400")); });
  std::this_thread::sleep_for(Millis(100));
  auto r = p_->deploy("app", {{"127.0.0.1", green.port()}}, fast());
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_TRUE(r->drained);
  Reply slow = inflight.get();
  EXPECT_EQ(slow.status, 200);
  EXPECT_EQ(slow.body, "blue");
  // New requests, and the next request of the kept connection, go to green.
  EXPECT_EQ(fetch(port_, get_req("/")).body, "green");
  keep.send(get_req("/"));
  Reply k = keep.read_reply();
  EXPECT_EQ(k.body, "green");
  EXPECT_FALSE(k.closed);
  // Idle upstream connections to blue are closed.
  for (int i = 0; i < 100 && blue.open_connections() > 0; ++i)
    std::this_thread::sleep_for(Millis(10));
  EXPECT_EQ(blue.open_connections(), 0);
  // The replaced set keeps its counters under its id.
  auto m = p_->metrics();
  bool found = false;
  for (const auto& set : m.services[0].sets)
    if (set.id == r->previous_set_id) {
      found = true;
      EXPECT_GE(set.counters.by_class[1], 2u);
      EXPECT_EQ(set.role, "retired");
    }
  EXPECT_TRUE(found);
}

TEST_F(ProxyTest, DeployToUnhealthyTargetsChangesNothing) {
  Upstream blue("blue"), green("green");
  green.set_healthy(false);
  start(options());
  serve({&blue});
  DeployOptions d = fast();
  d.health_timeout = Millis(300);
  auto r = p_->deploy("app", {{"127.0.0.1", green.port()}}, d);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kTimeout);
  EXPECT_NE(r.error().what().find(green.addr()), std::string::npos) << r.error().what();
  EXPECT_EQ(fetch(port_, get_req("/")).body, "blue");
  EXPECT_EQ(p_->status("app")->live->targets[0].endpoint.port, blue.port());
}

TEST_F(ProxyTest, SseToReplacedSetEndsCleanlyAtDrainDeadline) {
  Upstream blue("blue"), green("green");
  start(options());
  serve({&blue});
  Client sse(port_);
  sse.send(get_req("/sse"));
  ASSERT_TRUE(sse.read_until(
      [](const std::string& b) { return b.find("data: blue 1") != std::string::npos; }, 3000));
  auto r = p_->deploy("app", {{"127.0.0.1", green.port()}}, fast());
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->drained);
  EXPECT_EQ(r->closed_streams, 1);
  // The stream ended with the last chunk: a complete response, then close.
  ASSERT_TRUE(sse.read_until(
      [](const std::string& b) { return b.find("\r\n0\r\n\r\n") != std::string::npos; }, 3000));
  EXPECT_TRUE(sse.wait_closed(2000));
}

TEST_F(ProxyTest, WebSocketToReplacedSetGetsCloseFrameAtDrainDeadline) {
  Upstream blue("blue"), green("green");
  start(options());
  serve({&blue});
  Client ws(port_);
  ws.send("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
  ASSERT_TRUE(ws.read_until(
      [](const std::string& b) { return b.find("\r\n\r\n") != std::string::npos; }, 3000));
  ws.buffer().clear();
  // One complete client frame (masked, "hi") goes through and comes back.
  const char frame[] = {'\x81', '\x82', 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2};
  ws.send(std::string_view(frame, sizeof frame));
  ASSERT_TRUE(ws.read_until([](const std::string& b) { return b.size() >= 8; }, 3000));
  ws.buffer().clear();
  auto r = p_->deploy("app", {{"127.0.0.1", green.port()}}, fast());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->closed_streams, 1);
  // Status 1001 "going away", then the proxy's FIN.
  ASSERT_TRUE(ws.read_until(
      [](const std::string& b) { return b.find("\x88\x02\x03\xE9") != std::string::npos; }, 3000))
      << ws.buffer().size();
  EXPECT_TRUE(ws.wait_closed(2000));
}

TEST_F(ProxyTest, CanaryWeightsAndStickiness) {
  Upstream blue("blue"), green("green");
  start(options());
  ServiceSpec s = spec();
  s.sticky_header = "X-User";
  s.sticky_cookie = "mdc";
  serve({&blue}, s);
  ASSERT_TRUE(p_->set_canary("app", {{"127.0.0.1", green.port()}}, 50, fast()));
  int g = 0;
  for (int i = 0; i < 200; ++i) g += fetch(port_, get_req("/")).body == "green";
  EXPECT_GT(g, 40);
  EXPECT_LT(g, 160);
  // Sticky by header: the same user always lands on the same set.
  for (const char* user : {"alice", "bob", "carol"}) {
    std::string first =
        fetch(port_, get_req("/", "a", std::string("X-User: ") + user + "\r\n")).body;
    for (int i = 0; i < 10; ++i)
      EXPECT_EQ(fetch(port_, get_req("/", "a", std::string("X-User: ") + user + "\r\n")).body,
                first);
  }
  // Sticky by cookie: the proxy sets it, and it keeps the assignment.
  Reply r = fetch(port_, get_req("/"));
  std::string cookie = r.header("Set-Cookie");
  ASSERT_EQ(cookie.substr(0, 4), "mdc=");
  std::string value = cookie.substr(0, cookie.find(';'));
  for (int i = 0; i < 10; ++i) {
    Reply again = fetch(port_, get_req("/", "a", "Cookie: " + value + "\r\n"));
    EXPECT_EQ(again.body, r.body);
    EXPECT_EQ(again.header("Set-Cookie"), "");
  }
  // Weight only; then promote.
  ASSERT_TRUE(p_->set_canary("app", {}, 100, fast()));
  EXPECT_EQ(fetch(port_, get_req("/")).body, "green");
  auto pr = p_->promote("app", fast());
  ASSERT_TRUE(pr);
  EXPECT_EQ(p_->status("app")->live->id, pr->set_id);
  EXPECT_FALSE(p_->status("app")->canary);
  EXPECT_EQ(fetch(port_, get_req("/")).body, "green");
  EXPECT_EQ(p_->promote("app").error().code(), Errc::kFailedPrecondition);
}

TEST_F(ProxyTest, AbortCanary) {
  Upstream blue("blue"), green("green");
  start(options());
  serve({&blue});
  ASSERT_TRUE(p_->set_canary("app", {{"127.0.0.1", green.port()}}, 100, fast()));
  EXPECT_EQ(fetch(port_, get_req("/")).body, "green");
  ASSERT_TRUE(p_->abort_canary("app", fast()));
  EXPECT_EQ(fetch(port_, get_req("/")).body, "blue");
}

TEST_F(ProxyTest, MaintenanceKeepsHealthPath) {
  Upstream blue("blue");
  start(options());
  serve({&blue});
  ASSERT_TRUE(p_->set_maintenance("app", true, "<h1>back soon</h1>"));
  Reply r = fetch(port_, get_req("/anything"));
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, "<h1>back soon</h1>");
  EXPECT_EQ(r.header("Retry-After"), "30");
  EXPECT_EQ(fetch(port_, get_req("/healthz")).status, 200);
  ASSERT_TRUE(p_->set_maintenance("app", false));
  EXPECT_EQ(fetch(port_, get_req("/")).status, 200);
  bool seen_local = false;
  for (const auto& s : p_->metrics().services) seen_local = seen_local || s.local.by_class[4] == 1;
  EXPECT_TRUE(seen_local);
}

TEST_F(ProxyTest, PauseHoldsThenReleases) {
  Upstream blue("blue");
  start(options());
  serve({&blue});
  PauseOptions po;
  po.max_held = 2;
  po.max_wait = Millis(5000);
  ASSERT_TRUE(p_->pause("app", po));
  auto held1 = std::async(std::launch::async, [&] { return fetch(port_, get_req("/")); });
  auto held2 = std::async(std::launch::async, [&] { return fetch(port_, get_req("/")); });
  for (int i = 0; i < 200 && p_->status("app")->held < 2; ++i)
    std::this_thread::sleep_for(Millis(5));
  EXPECT_EQ(p_->status("app")->held, 2);
  EXPECT_EQ(fetch(port_, get_req("/")).status, 503);  // over the limit
  EXPECT_EQ(held1.wait_for(Millis(100)), std::future_status::timeout);
  ASSERT_TRUE(p_->resume("app"));
  EXPECT_EQ(held1.get().body, "blue");
  EXPECT_EQ(held2.get().body, "blue");
  EXPECT_EQ(p_->status("app")->held, 0);
  // A held request that waits too long gets 503.
  po.max_wait = Millis(200);
  ASSERT_TRUE(p_->pause("app", po));
  EXPECT_EQ(fetch(port_, get_req("/")).status, 503);
  ASSERT_TRUE(p_->resume("app"));
}

TEST_F(ProxyTest, StateFileRestoresRoutes) {
  Upstream blue("blue"), green("green");
  Options o = options();
  o.state_file = dir_ / "proxy.state";
  start(o);
  ServiceSpec s = spec();
  s.host = "app.test";
  serve({&blue}, s);
  ASSERT_TRUE(p_->set_canary("app", {{"127.0.0.1", green.port()}}, 30, fast()));
  struct stat st {};
  ASSERT_EQ(::stat(o.state_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto before = p_->status("app");
  p_.reset();
  start(o);
  auto after = p_->status("app");
  ASSERT_TRUE(after) << after.error().what();
  EXPECT_EQ(after->spec, before->spec);
  EXPECT_EQ(after->live->id, before->live->id);
  EXPECT_EQ(after->canary->id, before->canary->id);
  EXPECT_EQ(after->canary_weight, 30);
  EXPECT_EQ(fetch(port_, get_req("/")).status, 200);
  // A damaged file starts nothing.
  p_.reset();
  auto text = *fs::read_file(o.state_file);
  text.replace(text.find("app.test"), 8, "evil.com");
  ASSERT_TRUE(fs::atomic_write(o.state_file, text));
  auto bad = Proxy::start(o);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), Errc::kCorruption);
  EXPECT_NE(bad.error().what().find("checksum"), std::string::npos);
}

TEST_F(ProxyTest, StaticRoutesAndUnknownHost) {
  Upstream blue("blue");
  Options o = options();
  StaticRoute r = *parse_route("web=" + blue.addr());
  r.spec.host = "web.test";
  o.routes.push_back(r);
  start(o);
  EXPECT_EQ(fetch(port_, get_req("/", "web.test")).body, "blue");
  EXPECT_EQ(fetch(port_, get_req("/", "WEB.test:80")).body, "blue");
  EXPECT_EQ(fetch(port_, get_req("/", "other.test")).status, 404);
}

TEST_F(ProxyTest, AdminApiOverSocket) {
  Upstream blue("blue");
  Options o = options();
  o.admin_socket = dir_ / "admin.sock";
  start(o);
  struct stat st {};
  ASSERT_EQ(::stat(o.admin_socket.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  AdminClient c(o.admin_socket);
  ServiceSpec s = spec();
  auto r = c.deploy("app", {{"127.0.0.1", blue.port()}}, fast(), s);
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(fetch(port_, get_req("/")).body, "blue");
  auto status = c.status();
  ASSERT_TRUE(status);
  ASSERT_EQ(status->size(), 1u);
  EXPECT_EQ((*status)[0].live->id, r->set_id);
  wait_counted(1);
  auto m = c.metrics();
  ASSERT_TRUE(m) << m.error().what();
  EXPECT_EQ(m->services[0].sets[0].counters.by_class[1], 1u);
  auto prom = c.metrics_prometheus();
  ASSERT_TRUE(prom);
  EXPECT_NE(prom->find("meshdeploy_proxy_requests_total{service=\"app\",set=\"" +
                       std::to_string(r->set_id) + "\",role=\"live\",class=\"2xx\"} 1"),
            std::string::npos)
      << *prom;
  // Bogus commands: 4xx with a message, nothing changed.
  http::UnixClient raw(o.admin_socket);
  auto bad = raw.request("POST", "/v1/services/app/canary", R"({"weight": 150})");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_NE(bad->body.find("weight"), std::string::npos);
  bad = raw.request("POST", "/v1/services/app/deploy", R"({"targets": ["nope"]})");
  EXPECT_EQ(bad->status, 400);
  EXPECT_NE(bad->body.find("missing port"), std::string::npos) << bad->body;
  bad =
      raw.request("POST", "/v1/services/app/deploy", R"({"targets": ["127.0.0.1:1"], "bogus": 1})");
  EXPECT_EQ(bad->status, 400);
  EXPECT_NE(bad->body.find("unknown field 'bogus'"), std::string::npos);
  bad = raw.request("POST", "/v1/services/nope/promote", "");
  EXPECT_EQ(bad->status, 404);
  bad = raw.request("POST", "/v1/services/app/promote", "");
  EXPECT_EQ(bad->status, 412);
  bad = raw.request("PUT", "/v1/services/app", R"({"path_prefix": "nope"})");
  EXPECT_EQ(bad->status, 400);
  bad = raw.request("POST", "/v1/services/app/deploy", "{");
  EXPECT_EQ(bad->status, 400);
  EXPECT_EQ(fetch(port_, get_req("/")).body, "blue");
}

TEST_F(ProxyTest, MetricsAreMonotonicAcrossSwitches) {
  Upstream blue("blue"), green("green");
  start(options());
  serve({&blue});
  for (int i = 0; i < 5; ++i) fetch(port_, get_req("/"));
  wait_counted(5);
  MetricsSnapshot a = p_->metrics();
  ASSERT_TRUE(p_->deploy("app", {{"127.0.0.1", green.port()}}, fast()));
  for (int i = 0; i < 5; ++i) fetch(port_, get_req("/status?code=500"));
  wait_counted(5);
  MetricsSnapshot b = p_->metrics();
  EXPECT_EQ(a.instance, b.instance);
  for (const auto& sa : a.services[0].sets)
    for (const auto& sb : b.services[0].sets)
      if (sa.id == sb.id) {
        EXPECT_GE(sb.counters.requests, sa.counters.requests);
        EXPECT_EQ(sb.counters.minus(sa.counters).requests,
                  0u);  // blue got nothing after the switch
      }
  EXPECT_EQ(b.services[0].sets[0].role, "live");
  EXPECT_EQ(b.services[0].sets[0].counters.by_class[4], 5u);
  // JSON round trip keeps everything.
  auto back = metrics_from_json(to_json(b));
  ASSERT_TRUE(back) << back.error().what();
  EXPECT_EQ(back->services[0].sets[0].counters.latency, b.services[0].sets[0].counters.latency);
}

}  // namespace
}  // namespace md::proxy
