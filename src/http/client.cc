// UnixClient and get(): one HTTP/1.1 exchange on the process's shared client
// event loop, with one deadline for the whole exchange (Beast's basic_stream
// timeouts; blocking socket options would not bound Asio's sync calls).
//
// WHY one long-lived loop and not an io_context per exchange: an io_context
// opens an epoll fd, an eventfd and a timerfd, and its constructor throws when
// the process is out of descriptors (a connection flood): an exchange must
// cost its socket and nothing else, and fail with a value when even that is
// not available.
#include <netdb.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstring>
#include <future>
#include <mutex>
#include <optional>
#include <thread>

#include "core/guard.h"
#include "core/interrupt.h"
#include "core/json.h"
#include "core/log.h"
#include "http/http.h"
#include "http/socket_path.h"

namespace md::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

namespace {

// The client event loop: one io_context and one thread for the life of the
// process, created on first use (or by start_client_loop()).
// WHY never destroyed: exchanges may run from any thread until exit, and a
// joinable std::thread in a static would terminate the process at exit.
class ClientLoop {
 public:
  ClientLoop() : work_(net::make_work_guard(ioc_)) {
    // WHY a timer now: it makes Asio open its reactor (epoll, eventfd,
    // timerfd) here, where a failure is reported, not in the first exchange.
    net::steady_timer warm(ioc_);
    thread_ = std::thread([this] { run(); });
    thread_.detach();
  }
  net::io_context& ioc() { return ioc_; }

 private:
  void run() {
    while (!guarded(log::Logger("http"), "HTTP client loop", [&] { ioc_.run(); })) {
    }
  }
  net::io_context ioc_{1};
  net::executor_work_guard<net::io_context::executor_type> work_;
  std::thread thread_;
};

std::mutex loop_mu;
ClientLoop* loop_instance = nullptr;  // GUARDED_BY(loop_mu); leaked on purpose

Result<net::io_context*> client_loop() {
  std::lock_guard lock(loop_mu);
  if (!loop_instance) {
    try {
      loop_instance = new ClientLoop();
    } catch (const std::exception& e) {
      return fail(Errc::kUnavailable,
                  std::string(kLocalResourcesPrefix) +
                      "cannot start the HTTP client's event loop: " + e.what(),
                  true);
    }
  }
  return &loop_instance->ioc();
}

struct Outcome {
  beast::error_code ec;
  const char* stage = "connect";
  bool interrupted = false;  // cut by SIGINT/SIGTERM (core/interrupt.h)
  ClientResponse resp;
};

// Everything one exchange touches; shared with the loop's handlers so that it
// outlives a caller that gave up waiting.
template <class Protocol>
struct Exchange {
  explicit Exchange(net::io_context& ioc) : stream(ioc) {}
  beast::basic_stream<Protocol> stream;
  beast::flat_buffer buf;
  bhttp::response_parser<bhttp::string_body> parser;
  bhttp::request<bhttp::string_body> req;
  Outcome out;
  std::promise<void> done;
  // Readable when a SIGINT/SIGTERM arrives (a dup of interrupt::fd(), its
  // own epoll registration); empty in processes without an interrupt::Watch.
  std::optional<net::posix::stream_descriptor> signal_watch;
  bool finished = false;  // loop thread only
};

// Cuts the exchange when a signal arrives, so a controller blocked on a peer
// that never answers stops at once. Runs on the loop thread.
template <class Protocol>
void watch_signal(const std::shared_ptr<Exchange<Protocol>>& x) {
  x->signal_watch->async_wait(net::posix::stream_descriptor::wait_read, [x](beast::error_code ec) {
    if (ec || x->finished) return;  // the exchange ended
    if (!interrupt::pending()) {
      // A stale wake-up (a signal already taken): wait for the next.
      char b[64];
      while (::read(x->signal_watch->native_handle(), b, sizeof b) > 0) {
      }
      return watch_signal(x);
    }
    x->out.interrupted = true;
    x->stream.cancel();  // the pending operation ends with an error
  });
}

// Runs connect -> write -> read on the client loop until done or the
// deadline; blocks the caller meanwhile.
template <class Protocol, class Endpoints>
Result<Outcome> run_exchange(Endpoints eps, bhttp::request<bhttp::string_body> req, Millis timeout,
                             size_t max_body) {
  net::io_context* ioc = MD_TRY(client_loop());
  auto x = std::make_shared<Exchange<Protocol>>(*ioc);
  x->req = std::move(req);
  x->parser.body_limit(max_body);
  x->parser.header_limit(64 * 1024);
  if (x->req.method() == bhttp::verb::head) x->parser.skip(true);
  if (interrupt::pending()) {
    Outcome out;
    out.interrupted = true;
    return out;
  }
  std::future<void> finished = x->done.get_future();
  net::post(*ioc, [x, eps = std::move(eps), timeout] {
    auto finish = [x](beast::error_code ec) {
      x->finished = true;
      x->out.ec = ec;
      beast::error_code ignored;
      x->stream.socket().close(ignored);
      if (x->signal_watch) x->signal_watch->cancel(ignored);
      x->done.set_value();
    };
    auto on_read = [x, finish](beast::error_code ec, size_t) {
      if (!ec) {
        auto msg = x->parser.release();
        x->out.resp.status = static_cast<int>(msg.result_int());
        for (const auto& f : msg)
          x->out.resp.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
        x->out.resp.body = std::move(msg.body());
      }
      finish(ec);
    };
    auto on_write = [x, finish, on_read](beast::error_code ec, size_t) {
      if (ec) return finish(ec);
      x->out.stage = "read";
      bhttp::async_read(x->stream, x->buf, x->parser, on_read);
    };
    auto after_connect = [x, finish, on_write](beast::error_code ec) {
      if (ec) return finish(ec);
      x->out.stage = "write";
      bhttp::async_write(x->stream, x->req, on_write);
    };
    x->stream.expires_after(timeout);
    if (interrupt::fd() >= 0) {
      // WHY a dup per exchange, registered and armed here on the loop
      // thread: a fresh registration reports a readiness that is already
      // there, and Asio's edge-triggered reactor drops one that arrives
      // while no wait is queued. Only controllers have a Watch; an agent's
      // exchanges cost their socket only.
      const int mine = ::dup(interrupt::fd());
      if (mine >= 0) {
        beast::error_code ec;
        x->signal_watch.emplace(x->stream.get_executor());
        x->signal_watch->assign(mine, ec);
        if (ec) {
          ::close(mine);
          x->signal_watch.reset();
        } else {
          watch_signal(x);
        }
      }
    }
    if constexpr (std::is_same_v<Protocol, net::ip::tcp>) {
      x->stream.async_connect(
          eps, [after_connect](beast::error_code ec, const auto&) { after_connect(ec); });
    } else {
      x->stream.async_connect(eps, after_connect);
    }
  });
  // WHY a bound on the wait too: the stream's deadline ends the exchange;
  // this only guards against a loop that stopped turning.
  if (finished.wait_for(timeout + Millis(5000)) != std::future_status::ready)
    return fail(Errc::kTimeout, "the HTTP client's event loop did not finish the exchange", true);
  return std::move(x->out);
}

Error to_error(const Outcome& o, const std::string& peer) {
  const auto& ec = o.ec;
  std::string where = std::string(o.stage) + " " + peer + ": ";
  if (o.interrupted) return Error(Errc::kCancelled, where + "interrupted by a signal");
  if (ec == beast::error::timeout) return Error(Errc::kTimeout, where + "timed out", true);
  if (ec == net::error::connection_refused)
    return Error(Errc::kUnavailable, where + "connection refused (nothing listens there)", true);
  if (ec == net::error::not_found || ec.value() == ENOENT)
    return Error(Errc::kUnavailable, where + "no such socket file (is the server running?)", true);
  if (ec == net::error::access_denied || ec.value() == EACCES)
    return Error(Errc::kPermissionDenied, where + "permission denied");
  if (ec == bhttp::error::body_limit) return Error(Errc::kIo, where + "answer body too large");
  if (ec == net::error::connection_reset || ec == net::error::eof ||
      ec == bhttp::error::end_of_stream || ec == net::error::broken_pipe)
    return Error(Errc::kUnavailable, where + ec.message(), true);
  if (ec.category() == net::error::get_system_category() && local_resource_errno(ec.value()))
    return Error(Errc::kUnavailable, where + std::string(kLocalResourcesPrefix) + ec.message(),
                 true);
  return Error(Errc::kIo, where + ec.message());
}

}  // namespace

bool local_resource_errno(int e) {
  return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}

bool is_local_resource_error(const Error& e) {
  return e.message().find(kLocalResourcesPrefix) != std::string::npos;
}

Status start_client_loop() {
  MD_TRY(client_loop());
  return ok();
}

UnixClient::UnixClient(std::filesystem::path socket_path, Millis timeout)
    : path_(std::move(socket_path)), timeout_(timeout) {}

Result<ClientResponse> UnixClient::request(std::string_view method, std::string_view target,
                                           std::string_view body, std::string_view content_type) {
  return request_with_timeout(timeout_, method, target, body, content_type);
}

Result<ClientResponse> UnixClient::request_with_timeout(Millis timeout, std::string_view method,
                                                        std::string_view target,
                                                        std::string_view body,
                                                        std::string_view content_type) {
  MD_TRY_STATUS(check_socket_path(path_));
  using local = net::local::stream_protocol;
  bhttp::request<bhttp::string_body> req;
  req.method_string(std::string(method));
  req.target(std::string(target));
  req.version(11);
  req.set(bhttp::field::host, "localhost");
  req.set(bhttp::field::user_agent, "meshdeploy");
  req.set(bhttp::field::connection, "close");
  if (!body.empty()) {
    req.set(bhttp::field::content_type, std::string(content_type));
    req.body() = std::string(body);
  }
  req.prepare_payload();
  Outcome o = MD_TRY(run_exchange<local>(local::endpoint(path_.string()), std::move(req), timeout,
                                         size_t{256} << 20));
  if (o.ec || o.interrupted) return fail(to_error(o, path_.string()));
  return std::move(o.resp);
}

Result<nlohmann::json> UnixClient::call(std::string_view method, std::string_view target,
                                        const nlohmann::json* body) {
  std::string text = body ? to_json_text(*body) : std::string();
  ClientResponse r = MD_TRY(request(method, target, text));
  MD_TRY_STATUS(r.to_status());
  return r.json();
}

Result<ClientResponse> get(std::string_view host, uint16_t port, std::string_view target,
                           Millis timeout, std::string_view host_header, size_t max_body) {
  using tcp = net::ip::tcp;
  std::string peer = std::string(host) + ":" + std::to_string(port);
  std::vector<tcp::endpoint> eps;
  beast::error_code ec;
  std::string h(host);
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  auto addr = net::ip::make_address(h, ec);
  if (!ec) {
    eps.emplace_back(addr, port);
  } else {
    // WHY getaddrinfo and not an Asio resolver: the resolver service starts
    // a private io_context and thread of its own.
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    int rc = ::getaddrinfo(h.c_str(), nullptr, &hints, &res);
    if (rc != 0 || !res)
      return fail(Errc::kUnavailable, "resolve " + h + ": " + ::gai_strerror(rc), true);
    for (addrinfo* a = res; a; a = a->ai_next) {
      tcp::endpoint e;
      if (a->ai_addrlen > e.capacity()) continue;
      std::memcpy(e.data(), a->ai_addr, a->ai_addrlen);
      e.resize(a->ai_addrlen);
      e.port(port);
      eps.push_back(e);
    }
    ::freeaddrinfo(res);
    if (eps.empty()) return fail(Errc::kUnavailable, "resolve " + h + ": no address", true);
  }
  bhttp::request<bhttp::string_body> req(bhttp::verb::get, std::string(target), 11);
  req.set(bhttp::field::host, host_header.empty() ? peer : std::string(host_header));
  req.set(bhttp::field::user_agent, "meshdeploy-health");
  req.set(bhttp::field::connection, "close");
  Outcome o = MD_TRY(run_exchange<tcp>(std::move(eps), std::move(req), timeout, max_body));
  if (o.ec || o.interrupted) return fail(to_error(o, peer));
  return std::move(o.resp);
}

}  // namespace md::http
