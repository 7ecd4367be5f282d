// The balancer's metrics: per-backend request counts and durations, retries, and the backend
// gauges collected from its pool at scrape time. Kept apart so that moving onto another metrics
// library touches this file only.
#include "roles/lb/proxy_internal.h"

namespace millions::lb {

void Proxy::Count(const std::string& backend, int status, double seconds) {
  // First answer from a backend: its histogram is looked up once.
  BackendSeries& s = series_.Get(backend, series_mu_, [&] {
    auto e = std::make_unique<BackendSeries>();
    e->name = backend;
    e->duration = &registry_.GetHistogram("millions_lb_backend_duration_seconds",
                                          "Backend response time.", {{"backend", e->name}});
    return e;
  });
  s.codes
      .Get(status + 1, series_mu_,
           [&]() -> metrics::Counter& {
             return registry_.GetCounter(
                 "millions_lb_requests_total", "Requests sent to each backend.",
                 {{"backend", s.name}, {"code", status == 0 ? "error" : std::to_string(status)}});
           })
      .Inc();
  s.duration->Observe(seconds);
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
  // Pipelined GETs ([lb] pipeline_depth): requests / sends is the mean batch.
  const auto p = upstream_.Pipelining();
  metrics::AddCounter(out, "millions_lb_pipelined_requests_total",
                      "GETs sent to backends pipelined, batched per event-loop turn.")
      .Add({}, static_cast<double>(p.requests));
  metrics::AddCounter(out, "millions_lb_pipelined_sends_total",
                      "Sends that carried pipelined GETs (requests / sends: the mean batch).")
      .Add({}, static_cast<double>(p.sends));
  metrics::AddCounter(out, "millions_lb_pipelined_dropped_total",
                      "Pipelined connections dropped: cut, closed by the backend, an answer "
                      "for another request, a failed connect; their GETs are sent again.")
      .Add({}, static_cast<double>(p.dropped));
}

}  // namespace millions::lb
