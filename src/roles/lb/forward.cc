#include "roles/lb/forward.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <initializer_list>

#include "core/upstream.h"

namespace millions::lb {
namespace {

// Headers a client must not be able to set: the balancer writes its own.
bool Untrusted(std::string_view name) {
  for (const char* h : {"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded",
                        "x-real-ip", "x-request-id"})
    if (http::IEquals(name, h)) return true;
  return false;
}

}  // namespace

bool HopByHop(std::string_view name) { return upstream::HopByHop(name); }

namespace {

// Joins pieces into `buf` (the values below are short and bounded: an address, fixed text, ids
// of at most 128 bytes); the header values are composed without a string per request.
template <size_t N>
std::string_view Join(std::array<char, N>& buf, std::initializer_list<std::string_view> parts) {
  size_t n = 0;
  for (std::string_view p : parts) {
    size_t k = std::min(p.size(), N - n);
    std::memcpy(buf.data() + n, p.data(), k);
    n += k;
  }
  return std::string_view(buf.data(), n);
}

// The one place that decides which headers a backend sees; both forms below use it.
template <class F>
void ForEachUpstreamHeader(const http::Request& req, F&& f) {
  for (const auto& h : req.headers)
    if (!HopByHop(h.name) && !Untrusted(h.name)) f(h.name, h.value);
  f("X-Forwarded-For", req.remote_addr);
  const std::string_view proto = req.tls ? "https" : "http";
  f("X-Forwarded-Proto", proto);
  std::array<char, 256> buf;
  f("Forwarded", Join(buf, {"for=\"", req.remote_addr, "\";proto=", proto}));
  f("X-Request-Id", req.request_id);
  if (!req.header("traceparent"))
    f("traceparent",
      Join(buf, {"00-", req.trace_id, "-", std::string_view(req.request_id).substr(0, 16), "-01"}));
}

}  // namespace

std::vector<http::Header> UpstreamHeaders(const http::Request& req) {
  std::vector<http::Header> out;
  out.reserve(req.headers.size() + 5);
  ForEachUpstreamHeader(req, [&out](std::string_view name, std::string_view value) {
    out.push_back({std::string(name), std::string(value)});
  });
  return out;
}

std::string UpstreamHead(const http::Request& req, std::string_view default_host) {
  std::string out;
  size_t need = req.method.size() + req.target.size() + 200 + 2 * req.remote_addr.size();
  for (const auto& h : req.headers) need += h.name.size() + h.value.size() + 4;
  out.reserve(need);
  out.append(req.method).push_back(' ');
  out.append(req.target).append(" HTTP/1.1\r\n");
  ForEachUpstreamHeader(req, [&out](std::string_view name, std::string_view value) {
    out.append(name).append(": ").append(value).append("\r\n");
  });
  // HTTP/1.0 clients may omit Host; the HTTP/1.1 request we send may not (RFC 9112 3.2).
  if (!req.header("host")) out.append("Host: ").append(default_host).append("\r\n");
  if (req.body_stream) {
    if (req.body_length) {
      out.append("Content-Length: ").append(std::to_string(*req.body_length)).append("\r\n");
    } else {
      out.append("Transfer-Encoding: chunked\r\n");
    }
  } else if (!req.body.empty() || req.method == "POST" || req.method == "PUT" ||
             req.method == "PATCH") {
    out.append("Content-Length: ").append(std::to_string(req.body.size())).append("\r\n");
  }
  out.append("\r\n");
  return out;
}

}  // namespace millions::lb
