// Request/Response helpers, the router, percent coding.
#include "http/http.h"

#include <exception>

#include "core/json.h"
#include "http/parser.h"

namespace md::http {
namespace {

std::string_view find_header(const HeaderList& h, std::string_view name) {
  for (const auto& [k, v] : h)
    if (iequals(k, name)) return v;
  return {};
}

std::vector<std::string> split_path(std::string_view p) {
  std::vector<std::string> out;
  while (!p.empty()) {
    if (p.front() == '/') {
      p.remove_prefix(1);
      continue;
    }
    size_t s = p.find('/');
    out.emplace_back(p.substr(0, s));
    if (s == std::string_view::npos) break;
    p.remove_prefix(s);
  }
  return out;
}

Errc errc_from_name(std::string_view name, Errc fallback) {
  for (int i = 0; i <= static_cast<int>(Errc::kInternal); ++i)
    if (errc_name(static_cast<Errc>(i)) == name) return static_cast<Errc>(i);
  return fallback;
}

Errc errc_for_status(int status) {
  switch (status) {
    case 400:
    case 413:
    case 422:
      return Errc::kInvalidArgument;
    case 401:
    case 403:
      return Errc::kPermissionDenied;
    case 404:
      return Errc::kNotFound;
    case 409:
      return Errc::kConflict;
    case 412:
      return Errc::kFailedPrecondition;
    case 503:
      return Errc::kUnavailable;
    case 504:
      return Errc::kTimeout;
    default:
      return status >= 500 ? Errc::kInternal : Errc::kInvalidArgument;
  }
}

}  // namespace

std::string_view Request::header(std::string_view name) const { return find_header(headers, name); }

std::optional<std::string> Request::query_param(std::string_view name) const {
  std::string_view q = query;
  while (!q.empty()) {
    size_t amp = q.find('&');
    std::string_view kv = q.substr(0, amp);
    size_t eq = kv.find('=');
    std::string_view k = kv.substr(0, eq);
    if (k == name) {
      auto v =
          percent_decode(eq == std::string_view::npos ? std::string_view() : kv.substr(eq + 1));
      return v ? std::optional<std::string>(*v) : std::nullopt;
    }
    if (amp == std::string_view::npos) break;
    q.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

Result<nlohmann::json> Request::json() const {
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) return nlohmann::json::object();
  try {
    return nlohmann::json::parse(body);
  } catch (const nlohmann::json::exception& e) {  // parse_error, and out_of_range for 1e99999
    return fail(Errc::kInvalidArgument, std::string("request body is not valid JSON: ") + e.what());
  }
}

Response Response::json(int status, const nlohmann::json& value) {
  Response r;
  r.status = status;
  r.body = to_json_text(value, 2);
  r.body += '\n';
  return r;
}

Response Response::error(int status, Errc code, std::string_view message) {
  return json(status, {{"error", {{"code", errc_name(code)}, {"message", message}}}});
}

int status_for(Errc code) {
  switch (code) {
    case Errc::kInvalidArgument:
      return 400;
    case Errc::kNotFound:
      return 404;
    case Errc::kAlreadyExists:
    case Errc::kConflict:
      return 409;
    case Errc::kPermissionDenied:
      return 403;
    case Errc::kFailedPrecondition:
      return 412;
    case Errc::kUnavailable:
      return 503;
    case Errc::kTimeout:
      return 504;
    default:
      return 500;
  }
}

Response Response::from_error(const Error& e) {
  return error(status_for(e.code()), e.code(), e.what());
}

Response Response::text(int status, std::string body, std::string content_type) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  r.content_type = std::move(content_type);
  return r;
}

void Router::add(std::string method, std::string pattern, Handler handler) {
  routes_.push_back(Route{std::move(method), split_path(pattern), std::move(handler)});
}

Response Router::dispatch(Request& req) const {
  std::vector<std::string> segs = split_path(req.path);
  std::string allow;
  for (const Route& r : routes_) {
    if (r.segments.size() != segs.size()) continue;
    std::map<std::string, std::string, std::less<>> params;
    bool match = true;
    for (size_t i = 0; i < segs.size() && match; ++i) {
      const std::string& p = r.segments[i];
      if (p.size() > 2 && p.front() == '{' && p.back() == '}') {
        auto v = percent_decode(segs[i]);
        if (!v) return Response::from_error(v.error());
        params[p.substr(1, p.size() - 2)] = *v;
      } else if (p != segs[i]) {
        match = false;
      }
    }
    if (!match) continue;
    if (r.method != req.method) {
      if (allow.find(r.method) == std::string::npos)
        allow += (allow.empty() ? "" : ", ") + r.method;
      continue;
    }
    req.params = std::move(params);
    try {
      return r.handler(req);
    } catch (const std::exception& e) {
      return Response::error(500, Errc::kInternal, std::string("handler failed: ") + e.what());
    }
  }
  if (!allow.empty()) {
    Response resp = Response::error(
        405, Errc::kInvalidArgument,
        "method " + req.method + " not allowed on " + req.path + " (allowed: " + allow + ")");
    resp.headers.emplace_back("Allow", allow);
    return resp;
  }
  return Response::error(404, Errc::kNotFound, "no such endpoint: " + req.method + " " + req.path);
}

std::string_view ClientResponse::header(std::string_view name) const {
  return find_header(headers, name);
}

Result<nlohmann::json> ClientResponse::json() const {
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) return nlohmann::json::object();
  try {
    return nlohmann::json::parse(body);
  } catch (const nlohmann::json::exception& e) {  // parse_error, and out_of_range for 1e99999
    return fail(Errc::kInternal, std::string("answer is not valid JSON: ") + e.what());
  }
}

Status ClientResponse::to_status() const {
  if (status >= 200 && status < 300) return ok();
  Errc fallback = errc_for_status(status);
  try {
    auto j = nlohmann::json::parse(body);
    if (j.is_object() && j.contains("error") && j["error"].is_object()) {
      const auto& e = j["error"];
      std::string code = e.value("code", "");
      std::string msg = e.value("message", "");
      return fail(errc_from_name(code, fallback),
                  msg.empty() ? "HTTP " + std::to_string(status) : msg);
    }
  } catch (const std::exception&) {
  }
  std::string text = body.substr(0, 300);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return fail(fallback, "HTTP " + std::to_string(status) + (text.empty() ? "" : ": " + text));
}

Result<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    auto hex = [](char c) {
      return c >= '0' && c <= '9'   ? c - '0'
             : c >= 'a' && c <= 'f' ? c - 'a' + 10
             : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                    : -1;
    };
    if (i + 2 >= s.size() || hex(s[i + 1]) < 0 || hex(s[i + 2]) < 0)
      return fail(Errc::kInvalidArgument, "malformed percent escape in '" + std::string(s) + "'");
    out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
    i += 2;
  }
  return out;
}

std::string percent_encode(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace md::http
