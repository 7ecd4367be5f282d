// The balancer's metrics: per-backend request counts and durations, retries, and the backend
// gauges collected from its pool at scrape time. Kept apart so that moving onto another metrics
// library touches this file only.
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

void Proxy::CollectMetrics(metrics::Families* out) {
  // Read at scrape time from the published pool and each backend's tracker, as /status does.
  auto pool = pool_.load();
  auto up = metrics::AddGauge(out, "millions_lb_backend_up", "1 while the backend takes requests.");
  for (const auto& b : pool->backends) up.Add({{"backend", b.name}}, b.stats->healthy ? 1 : 0);
  auto ejections = metrics::AddCounter(out, "millions_lb_ejections_total",
                                       "Times the backend was ejected as an outlier.");
  for (const auto& b : pool->backends) ejections.Add({{"backend", b.name}}, Health(b).ejections());
}

}  // namespace millions::lb
