// The balancer's metrics: per-backend request counts and durations, retries, and the backend
// gauges collected from its pool at scrape time. Kept apart so that moving onto another metrics
// library touches this file only.
#include "roles/lb/proxy_internal.h"

namespace millions::lb {

Proxy::BackendSeries& Proxy::Series(std::string_view backend) {
  const SeriesTable* t = series_table_.load(std::memory_order_acquire);
  if (t)
    if (auto it = t->find(backend); it != t->end()) return *it->second;
  // First answer from this backend: look its histogram up once and publish a table holding it.
  std::lock_guard lock(series_mu_);
  t = series_table_.load(std::memory_order_acquire);
  if (t)
    if (auto it = t->find(backend); it != t->end()) return *it->second;
  auto s = std::make_unique<BackendSeries>();
  s->name = std::string(backend);
  s->duration = &registry_.GetHistogram("millions_lb_backend_duration_seconds",
                                        "Backend response time.", {{"backend", s->name}});
  auto next = t ? std::make_unique<SeriesTable>(*t) : std::make_unique<SeriesTable>();
  next->emplace(s->name, s.get());
  series_.push_back(std::move(s));
  series_tables_.push_back(std::move(next));
  series_table_.store(series_tables_.back().get(), std::memory_order_release);
  return *series_.back();
}

metrics::Counter& Proxy::Requests(BackendSeries& s, int status) {
  const int code = status + 1;  // status 0 (no answer) is a real series: 0 marks a free slot
  // Slots fill in order, so the first free one ends the search.
  for (const auto& slot : s.codes) {
    int seen = slot.code.load(std::memory_order_acquire);
    if (seen == 0) break;
    if (seen == code) return *slot.requests;
  }
  std::lock_guard lock(series_mu_);
  metrics::Counter& c = registry_.GetCounter(
      "millions_lb_requests_total", "Requests sent to each backend.",
      {{"backend", s.name}, {"code", status == 0 ? "error" : std::to_string(status)}});
  for (auto& slot : s.codes) {
    int seen = slot.code.load(std::memory_order_relaxed);
    if (seen == code) return c;  // another thread filled it meanwhile: the same series
    if (seen == 0) {
      slot.requests = &c;
      slot.code.store(code, std::memory_order_release);
      return c;
    }
  }
  return c;  // every slot taken: this code goes through the registry each time
}

void Proxy::Count(const std::string& backend, int status, double seconds) {
  BackendSeries& s = Series(backend);
  Requests(s, status).Inc();
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
}

}  // namespace millions::lb
