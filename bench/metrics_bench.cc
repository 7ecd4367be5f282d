// Recording cost on the request path: one counter increment and one histogram observe, ours
// (src/core/metrics: lock-free atomics) against prometheus-cpp 1.0.1's (Counter is an atomic
// double; Histogram::Observe takes a mutex), on 1 and 2 threads sharing one series, as a request
// path does. The figures and the choice they led to are in docs/metrics.md ("Recording cost").
// Thread-safety: Google Benchmark runs each Threads(n) case on n threads over the same handles.
// Ownership: the handles live in function-local statics, looked up once as the server does.
#include <benchmark/benchmark.h>
#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "core/metrics.h"

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

BENCHMARK(BM_OursCounterInc)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_PromCounterInc)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_OursHistogramObserve)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_PromHistogramObserve)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
