#include "roles/lb/forward.h"

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

bool HopByHop(std::string_view name) {
  for (const char* h :
       {"connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
        "te", "trailer", "transfer-encoding", "upgrade", "content-length"})
    if (http::IEquals(name, h)) return true;
  return false;
}

std::vector<http::Header> UpstreamHeaders(const http::Request& req) {
  std::vector<http::Header> out;
  out.reserve(req.headers.size() + 5);
  for (const auto& h : req.headers)
    if (!HopByHop(h.name) && !Untrusted(h.name)) out.push_back(h);
  out.push_back({"X-Forwarded-For", req.remote_addr});
  const char* proto = req.tls ? "https" : "http";
  out.push_back({"X-Forwarded-Proto", proto});
  out.push_back({"Forwarded", "for=\"" + req.remote_addr + "\";proto=" + proto});
  out.push_back({"X-Request-Id", req.request_id});
  if (!req.header("traceparent"))
    out.push_back(
        {"traceparent", "00-" + req.trace_id + "-" + req.request_id.substr(0, 16) + "-01"});
  return out;
}

}  // namespace millions::lb
