// The balancer's metrics: per-backend request counts and durations, retries, and the backend
// gauges rendered from its status. Kept apart so that moving onto another metrics library
// touches this file only.
#include <boost/json.hpp>
#include <unordered_map>

#include "roles/lb/proxy_internal.h"

namespace millions::lb {

void Proxy::Count(const std::string& backend, int status, double seconds) {
  // Per-thread handles, as the core server keeps them: no registry lock per request.
  struct Handles {
    metrics::Counter* requests;
    metrics::Histogram* duration;
  };
  thread_local std::unordered_map<std::string, Handles> cache;
  std::string key = backend;
  key.push_back('\0');
  key.append(std::to_string(status)).append(reinterpret_cast<const char*>(this), sizeof this);
  auto it = cache.find(key);
  if (it == cache.end()) {
    std::string code = status == 0 ? "error" : std::to_string(status);
    Handles h{&registry_.GetCounter("millions_lb_requests_total", "Requests sent to each backend.",
                                    {{"backend", backend}, {"code", code}}),
              &registry_.GetHistogram("millions_lb_backend_duration_seconds",
                                      "Backend response time.", {{"backend", backend}})};
    if (cache.size() > 4096) cache.clear();
    it = cache.emplace(std::move(key), h).first;
  }
  it->second.requests->Inc();
  it->second.duration->Observe(seconds);
}

void Proxy::CountRetry() {
  registry_.GetCounter("millions_lb_retries_total", "Requests retried on another backend.", {})
      .Inc();
}

void AddBackendCollector(metrics::Registry& reg, Proxy& proxy) {
  reg.AddCollector([&proxy](std::string* out) {
    auto v = boost::json::parse(proxy.StatusJson());
    *out += "# TYPE millions_lb_backend_up gauge\n";
    for (const auto& b : v.at("backends").as_array())
      *out += "millions_lb_backend_up{backend=\"" + std::string(b.at("name").as_string()) + "\"} " +
              (b.at("up").as_bool() ? "1" : "0") + "\n";
    *out += "# TYPE millions_lb_ejections_total counter\n";
    for (const auto& b : v.at("backends").as_array())
      *out += "millions_lb_ejections_total{backend=\"" + std::string(b.at("name").as_string()) +
              "\"} " + std::to_string(b.at("ejections").to_number<int64_t>()) + "\n";
  });
}

}  // namespace millions::lb
