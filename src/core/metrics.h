// Metrics: counters, gauges and histograms with labels, rendered in Prometheus text format.
// prometheus-cpp is not packaged for Debian 12, so this is the small part of it we need.
// Thread-safety: every method is safe from any thread; series handles stay valid for the
// registry's lifetime, and updating one is a lock-free atomic operation.
// Ownership: the Registry owns every family and series.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace millions::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

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
  // Appends the _bucket/_sum/_count lines.
  void Render(const std::string& name, const std::string& labels, std::string* out) const;

 private:
  const std::vector<double>* bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // one per bound, plus +Inf
  std::atomic<double> sum_{0};
  std::atomic<uint64_t> count_{0};
};

class Registry {
 public:
  Counter& GetCounter(const std::string& name, const std::string& help, const Labels& labels);
  Gauge& GetGauge(const std::string& name, const std::string& help, const Labels& labels);
  Histogram& GetHistogram(const std::string& name, const std::string& help, const Labels& labels);
  // A collector renders values it reads at scrape time (cache stats, queue depth).
  void AddCollector(std::function<void(std::string* out)> collector);
  std::string Render() const;

  static const std::vector<double>& LatencyBuckets();

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Family {
    Type type;
    std::string help;
    std::map<std::string, std::unique_ptr<Counter>> counters;
    std::map<std::string, std::unique_ptr<Gauge>> gauges;
    std::map<std::string, std::unique_ptr<Histogram>> histograms;
  };
  Family& GetFamily(const std::string& name, const std::string& help, Type type);

  mutable std::mutex mu_;
  std::map<std::string, Family> families_;
  std::vector<std::function<void(std::string*)>> collectors_;
};

// Renders {a="x",b="y"} with Prometheus escaping.
std::string FormatLabels(const Labels& labels);

}  // namespace millions::metrics
