// UnixServer: Boost.Beast HTTP/1.1 over a unix socket (or TCP, for a
// Prometheus endpoint). One I/O thread runs every connection (async
// reads/writes); handlers run on a thread pool so a slow handler never stalls
// the others.
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <cstring>
#include <future>
#include <list>
#include <thread>
#include <tuple>

#include "core/guard.h"
#include "core/log.h"
#include "http/http.h"
#include "http/socket_path.h"

namespace md::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
// WHY generic: one Session type for both AF_UNIX and AF_INET/AF_INET6 sockets.
using local = net::generic::stream_protocol;
using Stream = beast::basic_stream<local, net::any_io_executor>;
using Acceptor = net::basic_socket_acceptor<local>;

namespace {

class Session;

}  // namespace

struct UnixServer::Impl {
  ServerOptions opts;
  Router router;
  std::unique_ptr<net::io_context> ioc = std::make_unique<net::io_context>(1);
  std::unique_ptr<Acceptor> acceptor;
  std::unique_ptr<net::steady_timer> backoff;  // between accept attempts after a failure
  std::unique_ptr<net::thread_pool> pool;
  std::thread io_thread;
  std::list<std::weak_ptr<Session>> sessions;  // io thread only
  ino_t socket_ino = 0;
  dev_t socket_dev = 0;
  bool stopped = false;
  std::mutex stop_mu;

  void accept();
  void stop();
  ~Impl() {
    stop();
    // Pending handlers hold sessions that refer to this Impl: destroy them
    // while every other member is still alive.
    backoff.reset();
    acceptor.reset();
    ioc.reset();
  }
};

namespace {

Request to_request(bhttp::request<bhttp::string_body>&& msg) {
  Request r;
  r.method = std::string(msg.method_string());
  r.target = std::string(msg.target());
  size_t q = r.target.find('?');
  r.path = r.target.substr(0, q);
  if (q != std::string::npos) r.query = r.target.substr(q + 1);
  for (const auto& f : msg)
    r.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
  r.body = std::move(msg.body());
  return r;
}

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(UnixServer::Impl* server, local::socket sock)
      : server_(server), stream_(std::move(sock)) {}

  void start() { read(); }
  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(local::socket::shutdown_both, ec);
    stream_.close();
  }

 private:
  void read() {
    parser_.emplace();
    parser_->body_limit(server_->opts.max_body_bytes);
    parser_->header_limit(64 * 1024);
    stream_.expires_after(first_ ? server_->opts.read_timeout : server_->opts.idle_timeout);
    bhttp::async_read(
        stream_, buf_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    first_ = false;
    if (ec == bhttp::error::end_of_stream || ec == net::error::operation_aborted ||
        ec == beast::error::timeout || ec == net::error::eof ||
        ec == net::error::connection_reset) {
      close();
      return;
    }
    if (ec == bhttp::error::body_limit) {
      reply(Response::error(413, Errc::kInvalidArgument,
                            "request body larger than " +
                                std::to_string(server_->opts.max_body_bytes) + " bytes"),
            false, 11);
      return;
    }
    if (ec) {
      reply(Response::error(400, Errc::kInvalidArgument, "malformed HTTP request: " + ec.message()),
            false, 11);
      return;
    }
    auto msg = parser_->release();
    bool keep = msg.keep_alive();
    unsigned version = msg.version();
    auto req = std::make_shared<Request>(to_request(std::move(msg)));
    // Handlers may block: run them on the pool, write the answer on the I/O thread.
    stream_.expires_never();
    net::post(*server_->pool, [self = shared_from_this(), req, keep, version] {
      // WHY guarded: an exception out of a pool thread ends the process.
      Response resp = Response::error(500, Errc::kInternal, "handler failed");
      guarded(log::Logger("http"), "control handler",
              [&] { resp = self->server_->router.dispatch(*req); });
      net::post(self->stream_.get_executor(),
                [self, resp = std::move(resp), keep, version]() mutable {
                  self->reply(std::move(resp), keep, version);
                });
    });
  }

  void reply(Response resp, bool keep, unsigned version) {
    auto msg = std::make_shared<bhttp::response<bhttp::string_body>>(
        static_cast<bhttp::status>(resp.status), version);
    msg->set(bhttp::field::content_type, resp.content_type);
    msg->set(bhttp::field::cache_control, "no-store");
    for (auto& [k, v] : resp.headers) msg->insert(k, v);
    msg->body() = std::move(resp.body);
    msg->keep_alive(keep);
    msg->prepare_payload();
    stream_.expires_after(server_->opts.read_timeout);
    bhttp::async_write(stream_, *msg,
                       [self = shared_from_this(), msg, keep](beast::error_code ec, size_t) {
                         if (ec || !keep) {
                           self->close();
                           return;
                         }
                         self->read();
                       });
  }

  UnixServer::Impl* server_;
  Stream stream_;
  beast::flat_buffer buf_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  bool first_ = true;
};

}  // namespace

void UnixServer::Impl::accept() {
  acceptor->async_accept([this](beast::error_code ec, local::socket sock) {
    if (ec) {
      if (ec == net::error::operation_aborted || !acceptor->is_open()) return;
      // EMFILE and the like: keep serving the connections we have and try
      // again shortly (at once would spin on the still-pending connection).
      backoff->expires_after(std::chrono::milliseconds(50));
      backoff->async_wait([this](beast::error_code e) {
        if (!e && acceptor->is_open()) accept();
      });
      return;
    }
    sessions.remove_if([](const std::weak_ptr<Session>& w) { return w.expired(); });
    auto s = std::make_shared<Session>(this, std::move(sock));
    sessions.push_back(s);
    s->start();
    accept();
  });
}

void UnixServer::Impl::stop() {
  std::lock_guard lock(stop_mu);
  if (stopped) return;
  stopped = true;
  if (io_thread.joinable()) {
    std::promise<void> closed;
    net::post(*ioc, [&] {
      beast::error_code ec;
      acceptor->close(ec);
      backoff->cancel();
      for (auto& w : sessions)
        if (auto s = w.lock()) s->close();
      closed.set_value();
    });
    closed.get_future().wait();
    pool->join();  // running handlers finish; their writes fail on the closed sockets
    ioc->stop();
    io_thread.join();
  }
  // Remove the socket file only if it is still the one we created.
  struct stat st {};
  if (opts.tcp_address.empty() && ::lstat(opts.socket_path.c_str(), &st) == 0 &&
      st.st_ino == socket_ino && st.st_dev == socket_dev)
    ::unlink(opts.socket_path.c_str());
}

namespace {

// Binds and listens on "IP:PORT" / "[V6]:PORT" (port 0 picks one). Returns the
// fd and the socket's family.
Result<std::pair<int, int>> listen_tcp(const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon + 1 == address.size())
    return fail(Errc::kInvalidArgument, "'" + address + "' is not HOST:PORT");
  std::string host = address.substr(0, colon), port = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  if (int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res);
      rc != 0)
    return fail(Errc::kInvalidArgument, "'" + address + "': " + ::gai_strerror(rc));
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(res, ::freeaddrinfo);
  int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
  if (fd < 0) return fail(Errc::kIo, "socket for " + address + ": " + std::strerror(errno));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, res->ai_addr, res->ai_addrlen) != 0 || ::listen(fd, 128) != 0) {
    const int err = errno;
    ::close(fd);
    return fail(err == EADDRINUSE ? Errc::kUnavailable : Errc::kIo,
                "listen on " + address + ": " + std::strerror(err));
  }
  return std::pair<int, int>(fd, res->ai_family);
}

}  // namespace

Result<std::unique_ptr<UnixServer>> UnixServer::start(ServerOptions options, Router router) {
  if (options.handler_threads < 1)
    return fail(Errc::kInvalidArgument, "handler_threads must be >= 1");
  const bool tcp = !options.tcp_address.empty();
  int fd = -1, family = AF_UNIX, proto = 0;
  if (tcp) {
    std::tie(fd, family) = MD_TRY(listen_tcp(options.tcp_address));
    proto = IPPROTO_TCP;
  } else {
    fd = MD_TRY(listen_unix(options.socket_path, options.socket_mode));
  }
  auto impl = std::make_unique<Impl>();
  impl->opts = std::move(options);
  impl->router = std::move(router);
  struct stat st {};
  if (!tcp && ::lstat(impl->opts.socket_path.c_str(), &st) == 0) {
    impl->socket_ino = st.st_ino;
    impl->socket_dev = st.st_dev;
  }
  const std::string where = tcp ? impl->opts.tcp_address : impl->opts.socket_path.string();
  // WHY a try: Asio opens its reactor's descriptors and threads here and
  // throws when it cannot (no descriptor left).
  try {
    impl->acceptor = std::make_unique<Acceptor>(*impl->ioc);
    impl->backoff = std::make_unique<net::steady_timer>(*impl->ioc);
    beast::error_code ec;
    impl->acceptor->assign(local(family, proto), fd, ec);
    if (ec) {
      ::close(fd);
      return fail(Errc::kIo, "listen on " + where + ": " + ec.message());
    }
    impl->pool =
        std::make_unique<net::thread_pool>(static_cast<size_t>(impl->opts.handler_threads));
  } catch (const std::exception& e) {
    if (!impl->acceptor || !impl->acceptor->is_open()) ::close(fd);
    return fail(Errc::kIo, "serve on " + where + ": " + e.what());
  }
  impl->accept();
  Impl* raw = impl.get();
  impl->io_thread = std::thread([raw] {
    // No exception may end this thread (it would end the process): log it
    // and keep serving.
    while (!guarded(log::Logger("http"), "control server", [&] { raw->ioc->run(); })) {
    }
  });
  return std::unique_ptr<UnixServer>(new UnixServer(std::move(impl)));
}

UnixServer::UnixServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
UnixServer::~UnixServer() { stop(); }
void UnixServer::stop() { impl_->stop(); }
const std::filesystem::path& UnixServer::socket_path() const { return impl_->opts.socket_path; }

int UnixServer::tcp_port() const {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (impl_->opts.tcp_address.empty() ||
      ::getsockname(impl_->acceptor->native_handle(), reinterpret_cast<sockaddr*>(&ss), &len) != 0)
    return 0;
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return 0;
}

}  // namespace md::http
