// libFuzzer target: raw bytes through the HTTP request parsing path every server uses
// (Beast's parser with our limits, then ParseRequest's checks, then the router's matching).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/http_limits.h"
#include "core/router.h"

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
  }
  return 0;
}
