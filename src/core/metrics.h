// Metrics: counters, gauges and histograms recorded on lock-free atomics, and callback collectors
// that fill families at scrape time; prometheus-cpp's TextSerializer writes the exposition text.
// Recording stays ours: prometheus-cpp's Histogram::Observe takes a mutex and costs about twice
// our observe (docs/metrics.md, "Recording cost"); its data model and serializer are used as is.
// Thread-safety: every method is safe from any thread; series handles stay valid for the
// registry's lifetime, and updating one is a lock-free atomic operation. Collectors run on the
// scraping thread, outside the registry's lock (they may register series).
// Ownership: the Registry owns every family, series and collector callback; a Collectable added
// with AddCollectable stays owned by its caller (held weakly).
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace millions::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;
using Families = std::vector<prometheus::MetricFamily>;

class Counter {
 public:
  void Inc(double v = 1);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double v);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Histogram {
 public:
  explicit Histogram(const std::vector<double>* bounds);
  void Observe(double v);
  // Cumulative buckets, sum and count; the count is the buckets' total, so it always equals
  // the +Inf bucket even while other threads observe.
  void Collect(prometheus::ClientMetric* out) const;

 private:
  const std::vector<double>* bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // one per bound, plus +Inf
  std::atomic<double> sum_{0};
};

// Fills one family inside a callback collector:
//   AddGauge(out, "millions_cache_node_up", "1 when ...").Add({{"node", n}}, up ? 1 : 0);
class FamilyWriter {
 public:
  FamilyWriter(Families* out, size_t index) : out_(out), index_(index) {}
  // A sample of the family's type (counter or gauge).
  FamilyWriter& Add(const Labels& labels, double value);

 private:
  Families* out_;  // by index: later AddCounter/AddGauge calls may grow the vector
  size_t index_;
};
FamilyWriter AddCounter(Families* out, std::string name, std::string help);
FamilyWriter AddGauge(Families* out, std::string name, std::string help);

class Registry : public prometheus::Collectable {
 public:
  // Handles are looked up once (at start-up or first use) and kept: the request path only
  // touches the returned object's atomics.
  Counter& GetCounter(const std::string& name, const std::string& help, const Labels& labels);
  Gauge& GetGauge(const std::string& name, const std::string& help, const Labels& labels);
  Histogram& GetHistogram(const std::string& name, const std::string& help, const Labels& labels);

  // A callback collector: fills families from values read at scrape time (cache stats, queue
  // depth, a balancer's backends). It lives as long as the registry, so what it reads must too.
  void AddCollector(std::function<void(Families* out)> collect);
  // Another prometheus-cpp Collectable (a library's prometheus::Registry); skipped once expired.
  void AddCollectable(std::weak_ptr<prometheus::Collectable> collectable);

  // Registered series (families by name), then each collector's; families of one name from
  // several sources are merged (a second type for a name is dropped and logged).
  std::vector<prometheus::MetricFamily> Collect() const override;
  // The /metrics body: Collect() through prometheus::TextSerializer.
  std::string Render() const;

  static const std::vector<double>& LatencyBuckets();

 private:
  template <typename T>
  struct Series {
    Labels labels;
    std::unique_ptr<T> metric;
  };
  struct Family {
    prometheus::MetricType type;
    std::string help;
    // Keyed by FormatLabels(labels): one series per label set, in a stable order.
    std::map<std::string, Series<Counter>> counters;
    std::map<std::string, Series<Gauge>> gauges;
    std::map<std::string, Series<Histogram>> histograms;
  };
  Family& GetFamily(const std::string& name, const std::string& help, prometheus::MetricType type);

  mutable std::mutex mu_;
  std::map<std::string, Family> families_;
  std::vector<std::function<void(Families*)>> collectors_;
  std::vector<std::weak_ptr<prometheus::Collectable>> collectables_;
};

// Renders {a="x",b="y"} with Prometheus escaping.
std::string FormatLabels(const Labels& labels);

}  // namespace millions::metrics
