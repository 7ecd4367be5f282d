// libFuzzer target: raw bytes through the HTTP request parsing path every server uses
// (Beast's parser with our limits, then ParseRequest's checks, then the router's matching), and
// the balancer's rewrite of what it forwards.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/http_limits.h"
#include "core/router.h"
#include "roles/lb/forward.h"

namespace {

const millions::http::Router& TheRouter() {
  static millions::http::Router* r = [] {
    auto* r = new millions::http::Router;
    for (const char* p : {"/api/users/{id}", "/api/users/by-handle/{handle}",
                          "/api/users/{id}/photos", "/media/{key...}", "/assets/{name}"})
      r->Add("GET", p, millions::http::Handler{});  // matching only
    return r;
  }();
  return *r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  millions::http::Limits limits;
  limits.max_body_bytes = 1 << 16;
  auto req = millions::http::ParseRequest(
      std::string_view(reinterpret_cast<const char*>(data), size), limits);
  if (req.ok()) {
    auto m = TheRouter().Find(req->method, req->path);
    (void)m;
    (void)req->query_param("limit");
    (void)req->cookie("sid");
    // The balancer's rewrite: exactly one X-Forwarded-For, its own, whatever the client sent.
    req->remote_addr = "127.0.0.1";
    auto up = millions::lb::UpstreamHeaders(*req);
    int xff = 0;
    for (const auto& h : up) {
      if (millions::http::IEquals(h.name, "x-forwarded-for")) {
        ++xff;
        if (h.value != "127.0.0.1") __builtin_trap();
      }
      if (millions::lb::HopByHop(h.name)) __builtin_trap();
    }
    if (xff != 1) __builtin_trap();
    // What the backend receives reads back as the same one request: nothing smuggled.
    millions::http::Limits wide = limits;
    wide.max_header_bytes = 1 << 20;
    wide.max_headers = 1000;
    std::string wire = millions::lb::UpstreamHead(*req, "10.0.0.1:8081") + req->body;
    auto back = millions::http::ParseRequest(wire, wide);
    if (!back.ok() || back->method != req->method || back->target != req->target ||
        back->body != req->body)
      __builtin_trap();
  }
  return 0;
}
