// Recording cost on the request path: one counter increment and one histogram observe, ours
// (src/core/metrics: lock-free atomics) against prometheus-cpp 1.0.1's (Counter is an atomic
// double; Histogram::Observe takes a mutex), on 1 and 2 threads sharing one series, as a request
// path does. The figures and the choice they led to are in docs/metrics.md ("Recording cost").
// Then a whole request's recording, as the HTTP server does it, over the web node's route mix:
// before (a key string built per request, looked up in a thread_local map) and now
// (metrics::HttpRequestMetrics: per route handles, no string built); docs/metrics.md,
// "Per-route HTTP metrics".
// Thread-safety: Google Benchmark runs each Threads(n) case on n threads over the same handles.
// Ownership: the handles live in function-local statics, looked up once as the server does.
#include <benchmark/benchmark.h>
#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <string>
#include <string_view>
#include <unordered_map>

#include "core/metrics.h"
#include "core/metrics_http.h"

namespace {

using millions::metrics::Registry;

// A latency in the middle of the buckets: the observe scans half of them, as a typical request's.
constexpr double kLatency = 0.003;

Registry& Ours() {
  static Registry r;
  return r;
}

prometheus::Registry& Theirs() {
  static prometheus::Registry r;
  return r;
}

void BM_OursCounterInc(benchmark::State& state) {
  static auto& c = Ours().GetCounter("millions_b_total", "b", {{"route", "/a"}});
  for (auto _ : state) c.Inc();
}

void BM_PromCounterInc(benchmark::State& state) {
  static auto& c = prometheus::BuildCounter()
                       .Name("millions_b_total")
                       .Help("b")
                       .Register(Theirs())
                       .Add({{"route", "/a"}});
  for (auto _ : state) c.Increment();
}

void BM_OursHistogramObserve(benchmark::State& state) {
  static auto& h = Ours().GetHistogram("millions_b_seconds", "b", {{"route", "/a"}});
  for (auto _ : state) h.Observe(kLatency);
}

void BM_PromHistogramObserve(benchmark::State& state) {
  static auto& h = prometheus::BuildHistogram()
                       .Name("millions_b_seconds")
                       .Help("b")
                       .Register(Theirs())
                       .Add({{"route", "/a"}}, Registry::LatencyBuckets());
  for (auto _ : state) h.Observe(kLatency);
}

// The web node's routes as a request names them (the router's template) with their method, and
// the code most answer; request i takes kMix[i % size].
struct RouteHit {
  std::string route;  // a std::string, as Request::route is
  const char* method;
  int status;
};
const std::vector<RouteHit>& Mix() {
  static const std::vector<RouteHit> m = {
      {"/api/feed", "GET", 200},        {"/api/users/{id}", "GET", 200},
      {"/api/photos/{id}", "GET", 200}, {"/media/{key...}", "GET", 200},
      {"/api/photos", "POST", 201},     {"/api/users/{id}/photos", "GET", 200},
      {"/api/users/{id}", "GET", 404},  {"/api/users/by-handle/{handle}", "GET", 200}};
  return m;
}

// Before: what HttpServer::Impl::Record did until this change (the key built per request).
void RecordKeyPerRequest(Registry* reg, const std::string& role, const RouteHit& h,
                         double seconds) {
  struct Handles {
    millions::metrics::Counter* requests;
    millions::metrics::Histogram* duration;
  };
  thread_local std::unordered_map<std::string, Handles> cache;
  std::string_view route = h.route;
  std::string_view method = millions::metrics::HttpRequestMetrics::MethodLabel(h.method);
  std::string key;
  key.reserve(route.size() + 32);
  key.append(reinterpret_cast<const char*>(&reg), sizeof reg).append(role).push_back('\0');
  key.append(route).append(method).append(std::to_string(h.status));
  auto it = cache.find(key);
  if (it == cache.end()) {
    std::string r(route);
    Handles hs{&reg->GetCounter("millions_http_requests_total", "HTTP requests answered.",
                                {{"role", role},
                                 {"route", r},
                                 {"method", std::string(method)},
                                 {"code", std::to_string(h.status)}}),
               &reg->GetHistogram("millions_http_request_duration_seconds", "d",
                                  {{"role", role}, {"route", r}})};
    it = cache.emplace(std::move(key), hs).first;
  }
  it->second.requests->Inc();
  it->second.duration->Observe(seconds);
}

void BM_RecordRequestKeyPerRequest(benchmark::State& state) {
  static Registry reg;
  static const std::string role = "web";
  const auto& mix = Mix();
  size_t i = 0;
  for (auto _ : state) RecordKeyPerRequest(&reg, role, mix[i++ % mix.size()], kLatency);
}

void BM_RecordRequestPerRoute(benchmark::State& state) {
  static Registry reg;
  static millions::metrics::HttpRequestMetrics m(reg, "web");
  const auto& mix = Mix();
  size_t i = 0;
  for (auto _ : state) {
    const RouteHit& h = mix[i++ % mix.size()];
    m.Record(h.route, h.method, h.status, kLatency);
  }
}

BENCHMARK(BM_OursCounterInc)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_PromCounterInc)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_OursHistogramObserve)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_PromHistogramObserve)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_RecordRequestKeyPerRequest)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_RecordRequestPerRoute)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
