#include "core/metrics.h"

#include <prometheus/text_serializer.h>

#include <limits>
#include <stdexcept>

#include "core/log.h"

namespace millions::metrics {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

void AtomicAdd(std::atomic<double>& a, double v) {
  double cur = a.load(std::memory_order_relaxed);
  while (!a.compare_exchange_weak(cur, cur + v, std::memory_order_relaxed)) {
  }
}

std::vector<ClientMetric::Label> ToLabels(const Labels& labels) {
  std::vector<ClientMetric::Label> out;
  out.reserve(labels.size());
  for (const auto& [k, v] : labels) out.push_back({k, v});
  return out;
}

FamilyWriter AddFamily(Families* out, std::string name, std::string help, MetricType type) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  out->push_back(std::move(f));
  return FamilyWriter(out, out->size() - 1);
}

// One family a name: a collector may add series to a registered family (or another
// collector's). A second type under one name would make the scrape unparsable, so it is dropped.
Families Merge(Families in) {
  Families out;
  std::map<std::string, size_t> at;
  for (auto& f : in) {
    auto [it, fresh] = at.try_emplace(f.name, out.size());
    if (fresh) {
      out.push_back(std::move(f));
      continue;
    }
    MetricFamily& into = out[it->second];
    if (into.type != f.type) {
      log::Warn("metric family collected with two types; the later one is dropped",
                {{"metric", f.name}});
      continue;
    }
    for (auto& m : f.metric) into.metric.push_back(std::move(m));
  }
  return out;
}

}  // namespace

void Counter::Inc(double v) { AtomicAdd(value_, v); }
void Gauge::Add(double v) { AtomicAdd(value_, v); }

Histogram::Histogram(const std::vector<double>* bounds)
    : bounds_(bounds), buckets_(new std::atomic<uint64_t>[bounds->size() + 1]) {
  for (size_t i = 0; i <= bounds_->size(); ++i) buckets_[i].store(0);
}

void Histogram::Observe(double v) {
  size_t i = 0;
  while (i < bounds_->size() && v > (*bounds_)[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  AtomicAdd(sum_, v);
}

void Histogram::Collect(ClientMetric* out) const {
  auto& h = out->histogram;
  h.bucket.resize(bounds_->size() + 1);
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_->size(); ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    h.bucket[i].cumulative_count = cumulative;
    h.bucket[i].upper_bound =
        i < bounds_->size() ? (*bounds_)[i] : std::numeric_limits<double>::infinity();
  }
  h.sample_count = cumulative;
  h.sample_sum = sum_.load(std::memory_order_relaxed);
}

FamilyWriter& FamilyWriter::Add(const Labels& labels, double value) {
  MetricFamily& f = (*out_)[index_];
  ClientMetric& m = f.metric.emplace_back();
  m.label = ToLabels(labels);
  if (f.type == MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  return *this;
}

FamilyWriter AddCounter(Families* out, std::string name, std::string help) {
  return AddFamily(out, std::move(name), std::move(help), MetricType::Counter);
}

FamilyWriter AddGauge(Families* out, std::string name, std::string help) {
  return AddFamily(out, std::move(name), std::move(help), MetricType::Gauge);
}

std::string FormatLabels(const Labels& labels) {
  if (labels.empty()) return "";
  std::string s = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i) s += ",";
    s += labels[i].first + "=\"";
    for (char c : labels[i].second) {
      if (c == '\\' || c == '"') s += '\\';
      if (c == '\n') {
        s += "\\n";
        continue;
      }
      s += c;
    }
    s += "\"";
  }
  return s + "}";
}

Registry::Family& Registry::GetFamily(const std::string& name, const std::string& help,
                                      MetricType type) {
  auto [it, inserted] = families_.try_emplace(name);
  if (inserted) {
    it->second.type = type;
    it->second.help = help;
  } else if (it->second.type != type) {
    throw std::logic_error("metric " + name + " registered with two types");
  }
  return it->second;
}

Counter& Registry::GetCounter(const std::string& name, const std::string& help,
                              const Labels& labels) {
  std::lock_guard lock(mu_);
  auto& s = GetFamily(name, help, MetricType::Counter).counters[FormatLabels(labels)];
  if (!s.metric) s = {labels, std::make_unique<Counter>()};
  return *s.metric;
}

Gauge& Registry::GetGauge(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard lock(mu_);
  auto& s = GetFamily(name, help, MetricType::Gauge).gauges[FormatLabels(labels)];
  if (!s.metric) s = {labels, std::make_unique<Gauge>()};
  return *s.metric;
}

Histogram& Registry::GetHistogram(const std::string& name, const std::string& help,
                                  const Labels& labels) {
  std::lock_guard lock(mu_);
  auto& s = GetFamily(name, help, MetricType::Histogram).histograms[FormatLabels(labels)];
  if (!s.metric) s = {labels, std::make_unique<Histogram>(&LatencyBuckets())};
  return *s.metric;
}

void Registry::AddCollector(std::function<void(Families*)> collect) {
  std::lock_guard lock(mu_);
  collectors_.push_back(std::move(collect));
}

void Registry::AddCollectable(std::weak_ptr<prometheus::Collectable> collectable) {
  std::lock_guard lock(mu_);
  collectables_.push_back(std::move(collectable));
}

const std::vector<double>& Registry::LatencyBuckets() {
  static const std::vector<double> b = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                        0.1,    0.25,  0.5,    1,     2.5,  5,     10};
  return b;
}

std::vector<MetricFamily> Registry::Collect() const {
  Families out;
  std::vector<std::function<void(Families*)>> collectors;
  std::vector<std::weak_ptr<prometheus::Collectable>> collectables;
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, f] : families_) {
      MetricFamily& mf = out.emplace_back();
      mf.name = name;
      mf.help = f.help;
      mf.type = f.type;
      for (const auto& [key, s] : f.counters) {
        ClientMetric& m = mf.metric.emplace_back();
        m.label = ToLabels(s.labels);
        m.counter.value = s.metric->value();
      }
      for (const auto& [key, s] : f.gauges) {
        ClientMetric& m = mf.metric.emplace_back();
        m.label = ToLabels(s.labels);
        m.gauge.value = s.metric->value();
      }
      for (const auto& [key, s] : f.histograms) {
        ClientMetric& m = mf.metric.emplace_back();
        m.label = ToLabels(s.labels);
        s.metric->Collect(&m);
      }
    }
    // Copied so the callbacks run unlocked: one may register a series it found at scrape time.
    collectors = collectors_;
    collectables = collectables_;
  }
  for (const auto& c : collectors) c(&out);
  for (const auto& weak : collectables) {
    if (auto c = weak.lock()) {
      for (auto& f : c->Collect()) out.push_back(std::move(f));
    }
  }
  return Merge(std::move(out));
}

std::string Registry::Render() const { return prometheus::TextSerializer().Serialize(Collect()); }

}  // namespace millions::metrics
