// Per-route HTTP request metrics of one server:
// millions_http_requests_total{role,route,method,code} and
// millions_http_request_duration_seconds{role,route}. The request path formats no label and builds
// no string: a route's handles are looked up in the registry the first time the route is seen, then
// found by the route template's text in a table read without a lock, and a counter by method index
// and status in the route's own small slot array (docs/metrics.md, "Per-route HTTP metrics").
// Thread-safety: Record may be called from any thread; the first request of a route, method and
// status takes a mutex once, later ones only atomic loads and the series' atomic adds.
// Ownership: borrows the registry (it must outlive this); owns the route table and keeps every
// table it replaced until destruction, since a reader may still hold one.
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/metrics.h"

namespace millions::metrics {

// Counters of one family told apart by a small positive key (an HTTP status), found without a
// lock: the first use of a key looks its counter up (make(), under the caller's mutex) and fills
// a slot; later uses read the slot. Past N keys, make() is called each time (correct, slower).
template <size_t N>
class CounterSlots {
 public:
  template <class Make>
  Counter& Get(int key, std::mutex& mu, Make&& make) {
    for (const Slot& s : slots_) {  // slots fill in order: the first free one ends the search
      int seen = s.key.load(std::memory_order_acquire);
      if (seen == 0) break;
      if (seen == key) return *s.counter;
    }
    std::lock_guard lock(mu);
    Counter& c = make();
    if (key <= 0) return c;  // 0 marks a free slot: never cached
    for (Slot& s : slots_) {
      int seen = s.key.load(std::memory_order_relaxed);
      if (seen == key) return c;  // another thread filled it meanwhile: the same series
      if (seen == 0) {
        s.counter = &c;
        s.key.store(key, std::memory_order_release);
        return c;
      }
    }
    return c;
  }

 private:
  struct Slot {
    std::atomic<int> key{0};  // 0 while free; set (release) after `counter`
    Counter* counter = nullptr;
  };
  std::array<Slot, N> slots_;
};

// Entries (each with a stable `std::string name`) found by name without a lock: a new name is
// made once (make(), under the caller's mutex) and published in a new immutable table. Every
// table stays alive until destruction, since a reader may still hold one.
template <class T>
class NamedIndex {
 public:
  template <class Make>
  T& Get(std::string_view name, std::mutex& mu, Make&& make) {
    if (T* e = Find(table_.load(std::memory_order_acquire), name)) return *e;
    std::lock_guard lock(mu);
    const Table* t = table_.load(std::memory_order_acquire);
    if (T* e = Find(t, name)) return *e;
    std::unique_ptr<T> e = make();
    auto next = t ? std::make_unique<Table>(*t) : std::make_unique<Table>();
    next->emplace(e->name, e.get());
    entries_.push_back(std::move(e));
    tables_.push_back(std::move(next));
    table_.store(tables_.back().get(), std::memory_order_release);
    return *entries_.back();
  }

 private:
  using Table = std::unordered_map<std::string_view, T*>;  // keys view the entries' names
  static T* Find(const Table* t, std::string_view name) {
    if (!t) return nullptr;
    auto it = t->find(name);
    return it == t->end() ? nullptr : it->second;
  }
  std::atomic<const Table*> table_{nullptr};
  std::vector<std::unique_ptr<T>> entries_;
  std::vector<std::unique_ptr<const Table>> tables_;
};

class HttpRequestMetrics {
 public:
  HttpRequestMetrics(Registry& registry, std::string role);
  ~HttpRequestMetrics();
  HttpRequestMetrics(const HttpRequestMetrics&) = delete;
  HttpRequestMetrics& operator=(const HttpRequestMetrics&) = delete;

  // `route` is the matched template ("/api/users/{id}"; "unmatched" when none), never a raw path.
  void Record(std::string_view route, std::string_view method, int status, double seconds);

  // The method label: one of the known methods, else "other" (labels stay bounded).
  static std::string_view MethodLabel(std::string_view method);

 private:
  static constexpr size_t kMethods = 8;  // GET HEAD POST PUT DELETE PATCH OPTIONS other
  // Distinct codes a route answers per method; past that a code's counter is looked up in the
  // registry per request (correct, slower; no route of ours comes near it).
  static constexpr size_t kCodesPerMethod = 12;

  struct Route {
    std::string name;
    Histogram* duration = nullptr;
    std::array<CounterSlots<kCodesPerMethod>, kMethods> codes;
  };

  static size_t MethodIndex(std::string_view method);

  Registry& registry_;
  const std::string role_;
  std::mutex mu_;  // adding a route or a code slot
  NamedIndex<Route> routes_;
};

}  // namespace millions::metrics
