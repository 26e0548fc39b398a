// UnixClient and get(): one blocking HTTP/1.1 exchange on a private
// io_context, with one deadline for the whole exchange (Beast's basic_stream
// timeouts; blocking socket options would not bound Asio's sync calls).
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <unistd.h>

#include <optional>

#include "core/interrupt.h"
#include "core/json.h"
#include "http/http.h"
#include "http/socket_path.h"

namespace md::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

namespace {

struct Outcome {
  beast::error_code ec;
  const char* stage = "connect";
  bool interrupted = false;  // cut by SIGINT/SIGTERM (core/interrupt.h)
  ClientResponse resp;
};

// Cuts the exchange on `stream` when a signal arrives (interrupt::fd()
// becomes readable), so a controller blocked on a peer that never answers
// stops at once. Inactive in processes without an interrupt::Watch.
template <class Stream>
class SignalCut {
 public:
  SignalCut(net::io_context& ioc, Stream& stream, Outcome& out) : stream_(stream), out_(out) {
    const int fd = interrupt::fd();
    if (fd < 0) return;
    if (interrupt::pending()) {
      out_.interrupted = true;
      return;
    }
    const int mine = ::dup(fd);  // the descriptor object closes its own
    if (mine < 0) return;
    watch_.emplace(ioc, mine);
    arm();
  }
  // The exchange ended: stop watching so io_context::run() returns.
  void done() {
    beast::error_code ignored;
    if (watch_) watch_->cancel(ignored);
  }
  bool cut_before_start() const { return out_.interrupted; }

 private:
  void arm() {
    watch_->async_wait(net::posix::stream_descriptor::wait_read, [this](beast::error_code ec) {
      if (ec) return;  // cancelled: the exchange ended
      if (!interrupt::pending()) {
        // A stale wake-up (a signal already taken): wait for the next one.
        char b[64];
        while (::read(watch_->native_handle(), b, sizeof b) > 0) {
        }
        arm();
        return;
      }
      out_.interrupted = true;
      stream_.cancel();  // basic_stream's cancel: no throw (an error_code inside)
    });
  }
  Stream& stream_;
  Outcome& out_;
  std::optional<net::posix::stream_descriptor> watch_;
};

// Runs connect -> write -> read on `stream` until done or the deadline.
template <class Protocol, class Endpoints>
Outcome run_exchange(net::io_context& ioc, beast::basic_stream<Protocol>& stream,
                     const Endpoints& eps, bhttp::request<bhttp::string_body>& req,
                     Millis timeout, size_t max_body) {
  Outcome out;
  SignalCut cut(ioc, stream, out);
  if (cut.cut_before_start()) return out;
  beast::flat_buffer buf;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(max_body);
  parser.header_limit(64 * 1024);
  if (req.method() == bhttp::verb::head) parser.skip(true);
  stream.expires_after(timeout);
  auto on_read = [&](beast::error_code ec, size_t) {
    cut.done();
    out.ec = ec;
    if (ec) return;
    auto msg = parser.release();
    out.resp.status = static_cast<int>(msg.result_int());
    for (const auto& f : msg)
      out.resp.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    out.resp.body = std::move(msg.body());
  };
  auto on_write = [&](beast::error_code ec, size_t) {
    out.ec = ec;
    if (ec) return cut.done();
    out.stage = "read";
    bhttp::async_read(stream, buf, parser, on_read);
  };
  auto after_connect = [&](beast::error_code ec) {
    out.ec = ec;
    if (ec) return cut.done();
    out.stage = "write";
    bhttp::async_write(stream, req, on_write);
  };
  if constexpr (std::is_same_v<Protocol, net::ip::tcp>) {
    stream.async_connect(eps, [&](beast::error_code ec, const auto&) { after_connect(ec); });
  } else {
    stream.async_connect(eps, after_connect);
  }
  ioc.run();
  return out;
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
  return Error(Errc::kIo, where + ec.message());
}

}  // namespace

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
  net::io_context ioc(1);
  beast::basic_stream<local> stream(ioc);
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
  Outcome o = run_exchange(ioc, stream, local::endpoint(path_.string()), req, timeout,
                           size_t{256} << 20);
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
  net::io_context ioc(1);
  std::string peer = std::string(host) + ":" + std::to_string(port);
  std::vector<tcp::endpoint> eps;
  beast::error_code ec;
  std::string h(host);
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  auto addr = net::ip::make_address(h, ec);
  if (!ec) {
    eps.emplace_back(addr, port);
  } else {
    tcp::resolver res(ioc);
    auto r = res.resolve(h, std::to_string(port), ec);
    if (ec) return fail(Errc::kUnavailable, "resolve " + h + ": " + ec.message(), true);
    for (const auto& e : r) eps.push_back(e.endpoint());
  }
  beast::basic_stream<tcp> stream(ioc);
  bhttp::request<bhttp::string_body> req(bhttp::verb::get, std::string(target), 11);
  req.set(bhttp::field::host, host_header.empty() ? peer : std::string(host_header));
  req.set(bhttp::field::user_agent, "meshdeploy-health");
  req.set(bhttp::field::connection, "close");
  Outcome o = run_exchange(ioc, stream, eps, req, timeout, max_body);
  if (o.ec || o.interrupted) return fail(to_error(o, peer));
  return std::move(o.resp);
}

}  // namespace md::http
