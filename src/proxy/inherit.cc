// Listening sockets this process did not bind: matched to the listeners
// that name their address (see adopt_listen_sockets in proxy.h).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <deque>

#include "proxy/proxy.h"
#include "proxy/routing.h"

namespace md::proxy {

namespace {

bool same_host(const sockaddr_storage& a, const sockaddr_storage& b) {
  if (a.ss_family != b.ss_family) return false;
  if (a.ss_family == AF_INET)
    return std::memcmp(&reinterpret_cast<const sockaddr_in&>(a).sin_addr,
                       &reinterpret_cast<const sockaddr_in&>(b).sin_addr, sizeof(in_addr)) == 0;
  return std::memcmp(&reinterpret_cast<const sockaddr_in6&>(a).sin6_addr,
                     &reinterpret_cast<const sockaddr_in6&>(b).sin6_addr, sizeof(in6_addr)) == 0;
}

uint16_t port_of(const sockaddr_storage& a) {
  return ntohs(a.ss_family == AF_INET ? reinterpret_cast<const sockaddr_in&>(a).sin_port
                                      : reinterpret_cast<const sockaddr_in6&>(a).sin6_port);
}

}  // namespace

Result<Endpoint> socket_endpoint(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
    return fail(Errc::kIo, "getsockname of fd " + std::to_string(fd) + ": " + std::strerror(errno));
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET)
    ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in&>(ss).sin_addr, buf, sizeof buf);
  else if (ss.ss_family == AF_INET6)
    ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6&>(ss).sin6_addr, buf, sizeof buf);
  else
    return fail(Errc::kInvalidArgument, "fd " + std::to_string(fd) + " is not an IP socket");
  return Endpoint{buf, port_of(ss)};
}

Status adopt_listen_sockets(std::vector<Listener>& listeners, std::vector<int> fds) {
  auto close_rest = [&fds](size_t from) {
    for (size_t i = from; i < fds.size(); ++i) ::close(fds[i]);
  };
  // The wanted addresses, resolved once.
  std::deque<TargetState> wanted;  // WHY deque: TargetState does not move
  for (const Listener& l : listeners) {
    auto ep = parse_endpoint(l.address);
    if (!ep) {
      close_rest(0);
      return fail(ep.error());
    }
    wanted.emplace_back("", *ep, 1);
    if (auto st = wanted.back().resolve(); !st) {
      close_rest(0);
      return st;
    }
  }
  const bool make = listeners.empty();
  for (size_t i = 0; i < fds.size(); ++i) {
    int fd = fds[i];
    auto ep = socket_endpoint(fd);
    sockaddr_storage got{};
    socklen_t len = sizeof got;
    if (!ep || ::getsockname(fd, reinterpret_cast<sockaddr*>(&got), &len) != 0) {
      close_rest(i);
      return ep ? fail(Errc::kIo, "getsockname: " + std::string(std::strerror(errno)))
                : fail(ep.error());
    }
    Listener* match = nullptr;
    for (size_t k = 0; k < listeners.size() && !match; ++k) {
      if (make) {
        if (listeners[k].address == ep->str()) match = &listeners[k];
        continue;
      }
      uint16_t want_port = wanted[k].endpoint.port;
      if (same_host(wanted[k].addr, got) && (want_port == 0 || want_port == ep->port))
        match = &listeners[k];
    }
    if (!match && make) {
      listeners.push_back(Listener{ep->str(), {}, {}, {}});
      match = &listeners.back();
    }
    if (!match) {
      std::string names;
      for (const auto& l : listeners) names += (names.empty() ? "" : ", ") + l.address;
      close_rest(i);
      for (auto& l : listeners) {
        for (int s : l.sockets) ::close(s);
        l.sockets.clear();
      }
      return fail(Errc::kInvalidArgument,
                  "a listening socket on " + ep->str() +
                      " was handed to this process, but the listeners are " + names +
                      ": make them agree");
    }
    match->sockets.push_back(fd);
  }
  return ok();
}

}  // namespace md::proxy
