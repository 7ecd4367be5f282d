#include "core/metrics_http.h"

namespace millions::metrics {
namespace {

constexpr std::string_view kMethodLabels[] = {"GET",    "HEAD",  "POST",    "PUT",
                                              "DELETE", "PATCH", "OPTIONS", "other"};

constexpr const char* kRequestsHelp = "HTTP requests answered.";
constexpr const char* kDurationHelp =
    "Time from the end of the request headers to the response written.";

}  // namespace

HttpRequestMetrics::HttpRequestMetrics(Registry& registry, std::string role)
    : registry_(registry), role_(std::move(role)) {
  tables_.push_back(std::make_unique<const Table>());
  table_.store(tables_.back().get(), std::memory_order_release);
}

HttpRequestMetrics::~HttpRequestMetrics() = default;

size_t HttpRequestMetrics::MethodIndex(std::string_view method) {
  for (size_t i = 0; i + 1 < kMethods; ++i)
    if (kMethodLabels[i] == method) return i;
  return kMethods - 1;
}

std::string_view HttpRequestMetrics::MethodLabel(std::string_view method) {
  return kMethodLabels[MethodIndex(method)];
}

HttpRequestMetrics::Route& HttpRequestMetrics::FindRoute(std::string_view route) {
  const Table* t = table_.load(std::memory_order_acquire);
  if (auto it = t->find(route); it != t->end()) return *it->second;
  // First request of this route: look its histogram up once and publish a table holding it.
  std::lock_guard lock(mu_);
  t = table_.load(std::memory_order_acquire);
  if (auto it = t->find(route); it != t->end()) return *it->second;
  auto r = std::make_unique<Route>();
  r->name = std::string(route);
  r->duration = &registry_.GetHistogram("millions_http_request_duration_seconds", kDurationHelp,
                                        {{"role", role_}, {"route", r->name}});
  auto next = std::make_unique<Table>(*t);
  next->emplace(r->name, r.get());
  routes_.push_back(std::move(r));
  tables_.push_back(std::move(next));
  table_.store(tables_.back().get(), std::memory_order_release);
  return *routes_.back();
}

Counter& HttpRequestMetrics::FindCounter(Route& r, size_t method, int status) {
  auto& slots = r.codes[method];
  // Slots fill in order, so the first free one ends the search.
  for (const Slot& s : slots) {
    int seen = s.status.load(std::memory_order_acquire);
    if (seen == 0) break;
    if (seen == status) return *s.counter;
  }
  std::lock_guard lock(mu_);
  Labels labels = {{"role", role_},
                   {"route", r.name},
                   {"method", std::string(kMethodLabels[method])},
                   {"code", std::to_string(status)}};
  Counter& c = registry_.GetCounter("millions_http_requests_total", kRequestsHelp, labels);
  if (status <= 0) return c;  // 0 marks a free slot: never cached (no server answers it)
  for (Slot& s : slots) {
    int seen = s.status.load(std::memory_order_relaxed);
    if (seen == status) return c;  // another thread filled it meanwhile: the same series
    if (seen == 0) {
      s.counter = &c;
      s.status.store(status, std::memory_order_release);
      return c;
    }
  }
  return c;  // every slot taken: this code goes through the registry each time
}

void HttpRequestMetrics::Record(std::string_view route, std::string_view method, int status,
                                double seconds) {
  Route& r = FindRoute(route);
  FindCounter(r, MethodIndex(method), status).Inc();
  r.duration->Observe(seconds);
}

}  // namespace millions::metrics
