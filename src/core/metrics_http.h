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

  struct Slot {
    std::atomic<int> status{0};  // 0 while free; set (release) after `counter`
    Counter* counter = nullptr;
  };
  struct Route {
    std::string name;
    Histogram* duration = nullptr;
    std::array<std::array<Slot, kCodesPerMethod>, kMethods> codes;
  };
  // Immutable once published; keys view the names of routes_, which never move.
  using Table = std::unordered_map<std::string_view, Route*>;

  static size_t MethodIndex(std::string_view method);
  Route& FindRoute(std::string_view route);
  Counter& FindCounter(Route& r, size_t method, int status);

  Registry& registry_;
  const std::string role_;
  std::atomic<const Table*> table_;
  std::mutex mu_;  // adding a route or a code slot
  std::vector<std::unique_ptr<Route>> routes_;
  std::vector<std::unique_ptr<const Table>> tables_;  // every table published, the last is current
};

}  // namespace millions::metrics
