// The libcurl Transport: HTTPS POSTs and SMTP submissions. libcurl lives
// only in this file.
#include <curl/curl.h>

#include <algorithm>
#include <cstring>
#include <mutex>

#include "notify/notify.h"

namespace md::notify {
namespace {

constexpr size_t kMaxBody = 64 * 1024;

// A curl easy handle and the lists it points to, freed together.
struct Easy {
  CURL* h = curl_easy_init();
  curl_slist* headers = nullptr;
  curl_slist* rcpt = nullptr;
  char error[CURL_ERROR_SIZE] = {};
  Easy() {
    MD_CHECK(h != nullptr);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);  // WHY: thread-safe timeouts
  }
  ~Easy() {
    curl_slist_free_all(headers);
    curl_slist_free_all(rcpt);
    curl_easy_cleanup(h);
  }
  Easy(const Easy&) = delete;
  Easy& operator=(const Easy&) = delete;

  void timeouts(Millis timeout) {
    long ms = static_cast<long>(std::max<int64_t>(1, timeout.count()));
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, ms);
  }

  // "what: curl's text (detail)". Never holds the URL's path or query:
  // curl's messages name the host and port at most.
  std::string message(const char* what, CURLcode rc) const {
    std::string m = std::string(what) + ": " + curl_easy_strerror(rc);
    if (error[0] && std::strcmp(error, curl_easy_strerror(rc)) != 0)
      m += " (" + std::string(error) + ")";
    return m;
  }
};

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* out = static_cast<std::string*>(user);
  size_t len = size * n;
  if (out->size() < kMaxBody) out->append(data, std::min(len, kMaxBody - out->size()));
  return len;
}

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* retry_after = static_cast<std::string*>(user);
  std::string_view line(data, size * n);
  constexpr std::string_view kName = "retry-after:";
  if (line.size() > kName.size() && strncasecmp(line.data(), kName.data(), kName.size()) == 0) {
    line.remove_prefix(kName.size());
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
    *retry_after = std::string(line);
  }
  return size * n;
}

struct Upload {
  std::string_view data;
  size_t pos = 0;
};

size_t on_read(char* buf, size_t size, size_t n, void* user) {
  auto* up = static_cast<Upload*>(user);
  size_t len = std::min(size * n, up->data.size() - up->pos);
  std::memcpy(buf, up->data.data() + up->pos, len);
  up->pos += len;
  return len;
}

bool retryable(CURLcode rc) {
  switch (rc) {
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_LOGIN_DENIED:
    case CURLE_USE_SSL_FAILED:
    case CURLE_NOT_BUILT_IN:
    case CURLE_BAD_FUNCTION_ARGUMENT:
      return false;
    default:
      return true;
  }
}

Errc code_for(CURLcode rc) {
  switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
      return Errc::kTimeout;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return Errc::kInvalidArgument;
    case CURLE_LOGIN_DENIED:
      return Errc::kPermissionDenied;
    case CURLE_USE_SSL_FAILED:
      return Errc::kFailedPrecondition;
    default:
      return Errc::kUnavailable;
  }
}

class CurlTransport : public Transport {
 public:
  Result<HttpResponse> post(const HttpRequest& req) override {
    Easy e;
    HttpResponse resp;
    curl_easy_setopt(e.h, CURLOPT_URL, req.url.c_str());
    curl_easy_setopt(e.h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e.h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e.h, CURLOPT_POST, 1L);
    curl_easy_setopt(e.h, CURLOPT_POSTFIELDS, req.body.data());
    curl_easy_setopt(e.h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
    for (const auto& [name, value] : req.headers)
      e.headers = curl_slist_append(e.headers, (name + ": " + value).c_str());
    // WHY: curl would otherwise send "Expect: 100-continue" for large bodies
    // and wait a second for an answer many receivers never give.
    e.headers = curl_slist_append(e.headers, "Expect:");
    curl_easy_setopt(e.h, CURLOPT_HTTPHEADER, e.headers);
    curl_easy_setopt(e.h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e.h, CURLOPT_WRITEDATA, &resp.body);
    curl_easy_setopt(e.h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e.h, CURLOPT_HEADERDATA, &resp.retry_after);
    if (!req.ca_file.empty()) curl_easy_setopt(e.h, CURLOPT_CAINFO, req.ca_file.c_str());
    e.timeouts(req.timeout);
    CURLcode rc = curl_easy_perform(e.h);
    if (rc != CURLE_OK) return fail(code_for(rc), e.message("POST", rc), retryable(rc));
    long status = 0;
    curl_easy_getinfo(e.h, CURLINFO_RESPONSE_CODE, &status);
    resp.status = static_cast<int>(status);
    return resp;
  }

  Status send_mail(const MailRequest& req) override {
    Easy e;
    Upload up{req.message};
    curl_easy_setopt(e.h, CURLOPT_URL, req.smtp_url.c_str());
    curl_easy_setopt(e.h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(e.h, CURLOPT_MAIL_FROM, ("<" + req.from + ">").c_str());
    for (const std::string& to : req.to)
      e.rcpt = curl_slist_append(e.rcpt, ("<" + to + ">").c_str());
    curl_easy_setopt(e.h, CURLOPT_MAIL_RCPT, e.rcpt);
    curl_easy_setopt(e.h, CURLOPT_USE_SSL,
                     req.require_starttls ? static_cast<long>(CURLUSESSL_ALL)
                                          : static_cast<long>(CURLUSESSL_NONE));
    if (!req.user.empty()) {
      curl_easy_setopt(e.h, CURLOPT_USERNAME, req.user.c_str());
      curl_easy_setopt(e.h, CURLOPT_PASSWORD, req.password.reveal().c_str());
    }
    if (!req.ca_file.empty()) curl_easy_setopt(e.h, CURLOPT_CAINFO, req.ca_file.c_str());
    curl_easy_setopt(e.h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(e.h, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(e.h, CURLOPT_READDATA, &up);
    curl_easy_setopt(e.h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(req.message.size()));
    e.timeouts(req.timeout);
    CURLcode rc = curl_easy_perform(e.h);
    if (rc == CURLE_OK) return ok();
    long smtp = 0;
    curl_easy_getinfo(e.h, CURLINFO_RESPONSE_CODE, &smtp);
    std::string msg = e.message("SMTP", rc);
    if (smtp >= 400) msg += " (server answered " + std::to_string(smtp) + ")";
    if (rc == CURLE_USE_SSL_FAILED)
      msg += ": the server does not offer STARTTLS and starttls is required";
    // SMTP 5xx is a permanent refusal (RFC 5321 4.2.1); 4xx is transient.
    bool retry = smtp >= 500 ? false : smtp >= 400 ? true : retryable(rc);
    return fail(smtp >= 500 ? Errc::kFailedPrecondition : code_for(rc), msg, retry);
  }
};

}  // namespace

std::unique_ptr<Transport> make_curl_transport() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  return std::make_unique<CurlTransport>();
}

}  // namespace md::notify
