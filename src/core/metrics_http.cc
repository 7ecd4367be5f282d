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
    : registry_(registry), role_(std::move(role)) {}

HttpRequestMetrics::~HttpRequestMetrics() = default;

size_t HttpRequestMetrics::MethodIndex(std::string_view method) {
  for (size_t i = 0; i + 1 < kMethods; ++i)
    if (kMethodLabels[i] == method) return i;
  return kMethods - 1;
}

std::string_view HttpRequestMetrics::MethodLabel(std::string_view method) {
  return kMethodLabels[MethodIndex(method)];
}

void HttpRequestMetrics::Record(std::string_view route, std::string_view method, int status,
                                double seconds) {
  // First request of a route: its histogram is looked up once.
  Route& r = routes_.Get(route, mu_, [&] {
    auto e = std::make_unique<Route>();
    e->name = std::string(route);
    e->duration = &registry_.GetHistogram("millions_http_request_duration_seconds", kDurationHelp,
                                          {{"role", role_}, {"route", e->name}});
    return e;
  });
  size_t m = MethodIndex(method);
  r.codes[m]
      .Get(status, mu_,
           [&]() -> Counter& {
             return registry_.GetCounter("millions_http_requests_total", kRequestsHelp,
                                         {{"role", role_},
                                          {"route", r.name},
                                          {"method", std::string(kMethodLabels[m])},
                                          {"code", std::to_string(status)}});
           })
      .Inc();
  r.duration->Observe(seconds);
}

}  // namespace millions::metrics
