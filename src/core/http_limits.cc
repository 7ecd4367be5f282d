#include "core/http_limits.h"

#include "core/config.h"

namespace millions::http {

void ReadLimits(config::Section s, Limits* out) {
  auto size = [&](const char* key, size_t* v, int64_t min, int64_t max) {
    int64_t x = static_cast<int64_t>(*v);
    s.Get(key, &x, min, max);
    *v = static_cast<size_t>(x);
  };
  auto ms = [&](const char* key, std::chrono::milliseconds* v) {
    int64_t x = v->count();
    s.Get(key, &x, 1, 3'600'000);
    *v = std::chrono::milliseconds(x);
  };
  size("max_header_bytes", &out->max_header_bytes, 1024, 1 << 20);
  size("max_headers", &out->max_headers, 8, 1000);
  size("max_body_bytes", &out->max_body_bytes, 1024, int64_t{1} << 32);
  size("max_connections", &out->max_connections, 1, 1'000'000);
  size("send_buffer_bytes", &out->send_buffer_bytes, 0, 64 << 20);
  ms("header_timeout_ms", &out->header_timeout);
  ms("request_timeout_ms", &out->request_timeout);
  ms("idle_timeout_ms", &out->idle_timeout);
  ms("drain_timeout_ms", &out->drain_timeout);
  int64_t w = out->withdraw.count();
  s.Get("withdraw_ms", &w, 0, 600'000);
  out->withdraw = std::chrono::milliseconds(w);
}

}  // namespace millions::http
