// HTTP plumbing for control planes: a JSON-over-HTTP/1.1 server on a unix
// socket (the proxy's admin API, the agent's control API), the blocking
// client for it, and a blocking HTTP GET client for loopback health checks.
//
// Not for the proxy's data path (src/proxy has its own event loop); the head
// parser both use is in http/parser.h.
//
// Concurrency: UnixServer runs its I/O on one thread of its own and calls
// handlers on a small pool of handler threads, so a handler may block (a
// deploy that waits for health checks) without stalling other requests.
// UnixClient and get() block the calling thread and are thread-compatible
// (one client object per thread, or external locking). Their exchanges run
// on one event loop thread the process starts on first use and keeps: an
// exchange costs one socket, never an io_context of its own.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/error.h"

namespace md::http {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// A request as a handler sees it. The body is complete (bounded by
// ServerOptions::max_body_bytes).
struct Request {
  std::string method;  // "GET", "POST", ...
  std::string target;  // as sent, e.g. "/v1/services/web?x=1"
  std::string path;    // target without the query, percent-decoding NOT applied
  std::string query;   // after '?', without it; "" if none
  HeaderList headers;
  std::string body;
  // Captures of the route pattern, percent-decoded: "/v1/services/{name}"
  // matched against "/v1/services/web" gives params["name"] == "web".
  std::map<std::string, std::string, std::less<>> params;

  // The first header named `name` (case-insensitive), or "".
  std::string_view header(std::string_view name) const;
  // A query parameter, percent-decoded; nullopt when absent.
  std::optional<std::string> query_param(std::string_view name) const;
  // The body parsed as JSON. An empty body is an empty object. kInvalidArgument
  // with the parser's position on malformed JSON.
  Result<nlohmann::json> json() const;
};

// A handler's answer.
struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  HeaderList headers;  // extra header fields

  // `value` serialised, with status.
  static Response json(int status, const nlohmann::json& value);
  // {"error": {"code": "<errc name>", "message": "<text>"}} with status.
  static Response error(int status, Errc code, std::string_view message);
  // An Error as above; the status follows from the code (400 invalid_argument,
  // 404 not_found, 409 already_exists/conflict, 403 permission_denied,
  // 412 failed_precondition, 503 unavailable, 504 timeout, else 500).
  static Response from_error(const Error& e);
  static Response text(int status, std::string body,
                       std::string content_type = "text/plain; charset=utf-8");
};

// The HTTP status for an error code (as in Response::from_error).
int status_for(Errc code);

using Handler = std::function<Response(const Request&)>;

// Routes by method and path pattern. Patterns are literal segments and
// "{name}" captures of one segment ("/v1/services/{name}/deploy"). The first
// route added that matches wins. An unknown path answers 404, a known path
// with another method 405 (with Allow), both with an error body.
class Router {
 public:
  void add(std::string method, std::string pattern, Handler handler);
  // Dispatches `req` (fills req.params). Never throws: a handler that throws
  // answers 500 with the exception's text.
  Response dispatch(Request& req) const;

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;
    Handler handler;
  };
  std::vector<Route> routes_;
};

struct ServerOptions {
  std::filesystem::path socket_path;  // required unless tcp_address; at most 107 bytes
  // "IP:PORT" or "[V6]:PORT": serve over TCP there instead of a unix socket
  // (the agent's Prometheus endpoint); port 0 picks a free one. Default "".
  std::string tcp_address{};
  unsigned socket_mode = 0600;      // permission bits of the socket file
  int handler_threads = 4;          // handlers running at once; more requests wait
  size_t max_body_bytes = 1 << 20;  // larger request bodies get 413
  Millis read_timeout{30000};       // a client that sends nothing for this long is closed
  Millis idle_timeout{120000};      // keep-alive connections idle this long are closed
};

// An HTTP/1.1 server on a unix socket, or on TCP with tcp_address (Boost.Beast).
// Keep-alive, bodies up to the limit, JSON errors for malformed requests.
class UnixServer {
 public:
  // Binds and starts serving on its own threads. A leftover socket file from
  // a dead process is replaced; one another process still listens on fails
  // with kAlreadyExists; an existing file that is not a socket fails with
  // kAlreadyExists and is left alone; a path longer than a unix socket
  // address allows fails with kInvalidArgument. The socket file gets
  // `socket_mode` before any client can connect.
  static Result<std::unique_ptr<UnixServer>> start(ServerOptions options, Router router);
  // Stops accepting, waits for running handlers, closes every connection and
  // removes the socket file. Idempotent; the destructor calls it.
  void stop();
  ~UnixServer();
  const std::filesystem::path& socket_path() const;
  // The bound TCP port with ServerOptions::tcp_address, else 0.
  int tcp_port() const;

  struct Impl;

 private:
  explicit UnixServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A response as a client sees it.
struct ClientResponse {
  int status = 0;
  HeaderList headers;
  std::string body;

  // The first header named `name` (case-insensitive), or "".
  std::string_view header(std::string_view name) const;
  // The body parsed as JSON; kInvalidArgument (from the peer: kInternal) on
  // malformed JSON.
  Result<nlohmann::json> json() const;
  // For a non-2xx answer, the error it carries: the code and message of an
  // {"error": {...}} body when present, else the status and body text.
  // ok() for 2xx.
  Status to_status() const;
};

// A blocking HTTP/1.1 client for a UnixServer. Opens one connection per
// request (control traffic is rare; no stale keep-alive state to handle).
class UnixClient {
 public:
  explicit UnixClient(std::filesystem::path socket_path, Millis timeout = Millis(30000));

  // Sends one request and reads the whole answer. Errors:
  //   kUnavailable (retryable) when the socket file is missing ("no such
  //   file: is the server running?") or nobody listens on it (stale file);
  //   kPermissionDenied when the socket is not ours to open;
  //   kTimeout when the whole exchange takes longer than the timeout;
  //   kIo for a broken exchange. A non-2xx status is NOT an error here: see
  //   ClientResponse::to_status().
  Result<ClientResponse> request(std::string_view method, std::string_view target,
                                 std::string_view body = {},
                                 std::string_view content_type = "application/json");
  // Same, then to_status() and json(): the parsed JSON of a 2xx answer or the
  // error of any other.
  Result<nlohmann::json> call(std::string_view method, std::string_view target,
                              const nlohmann::json* body = nullptr);
  // Like request(), but the time limit is `timeout` for this call.
  Result<ClientResponse> request_with_timeout(Millis timeout, std::string_view method,
                                              std::string_view target, std::string_view body,
                                              std::string_view content_type);

 private:
  std::filesystem::path path_;
  Millis timeout_;
};

// A blocking HTTP/1.1 GET over TCP (for health checks from the control plane;
// "Connection: close", no TLS, no redirects). `host` is an IP address or a
// name (resolved), `host_header` the Host field ("" = host:port). The body is
// read up to `max_body` bytes (more is an error). Errors: kUnavailable
// (refused, unreachable, reset), kTimeout (the whole exchange), kIo
// (malformed answer).
Result<ClientResponse> get(std::string_view host, uint16_t port, std::string_view target,
                           Millis timeout, std::string_view host_header = {},
                           size_t max_body = 1 << 20);

// Starts the clients' event loop now (it is otherwise started by the first
// exchange). Daemons call it at start, so that a later shortage of file
// descriptors fails exchanges, not the loop. kUnavailable when it cannot be
// created (the next call tries again). Idempotent, thread-safe.
Status start_client_loop();

// Errors of UnixClient and get() caused by this process running out of
// resources (descriptors, buffers) rather than by the peer carry this in
// their message (code kUnavailable, retryable): a health check that fails
// this way says nothing about the target.
inline constexpr std::string_view kLocalResourcesPrefix = "out of local resources: ";
bool is_local_resource_error(const Error& e);
// EMFILE, ENFILE, ENOBUFS, ENOMEM: the failure is ours, not the peer's.
bool local_resource_errno(int e);

// Percent-decodes a URL component ("%2F" -> "/", "+" stays). kInvalidArgument
// on a malformed escape.
Result<std::string> percent_decode(std::string_view s);
// Percent-encodes everything but unreserved characters (RFC 3986).
std::string percent_encode(std::string_view s);

}  // namespace md::http
