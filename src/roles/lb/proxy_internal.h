// Private to roles/lb: the balancer behind `Run`: picks a backend by policy, forwards through
// the core upstream client, retries by its rules on another backend, tracks health, and takes
// its pool from a membership source. Split by concern: the request path and pool in proxy.cc,
// SIGHUP in reconfigure.cc, metrics in lb_metrics.cc, the process in run.cc.
// Thread-safety: Handle runs on many io_context threads at once; CheckAll on the checker
// thread; Reconfigure on an io_context thread. The pool and policy are atomic snapshots.
// Ownership: owns its pools, health trackers, membership source and metrics registry; the
// backend connections belong to the io_contexts of the requests that made them.
#pragma once

#include <array>
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/http.h"
#include "core/membership.h"
#include "core/metrics.h"
#include "core/metrics_http.h"
#include "core/upstream.h"
#include "roles/lb/balancer.h"
#include "roles/lb/health.h"
#include "roles/lb/proxy.h"
#include "roles/lb/rate_limiter.h"

namespace millions::lb {

// Responses up to this size are read whole; larger ones (and those of unknown length) are
// streamed to the client as they arrive. Request bodies over it are streamed to the backend.
inline constexpr uint64_t kStreamOver = 256 * 1024;

class Proxy {
 public:
  explicit Proxy(const LbConfig& cfg);
  // SIGHUP: a new policy, pool, health settings and rate limits; connections are untouched.
  void Reconfigure(const LbConfig& next);

  boost::asio::awaitable<http::Response> Handle(http::Request& req);
  void CheckAll();  // membership and active checks, from a background thread
  std::string StatusJson();
  metrics::Registry& registry() { return registry_; }
  // The client TLS context of upstream_tls, or null (tests count its handshakes).
  const std::shared_ptr<boost::asio::ssl::context>& upstream_tls() const { return upstream_tls_; }
  // lb_metrics.cc: the backend gauges (up, ejections) read from the pool and health trackers at
  // scrape time; registered on registry() by the constructor.
  void CollectMetrics(metrics::Families* out);

 private:
  void Publish(std::vector<Backend> backends);
  BackendHealth& Health(const Backend& b);
  // lb_metrics.cc: one answer (status 0: no answer) and one retry.
  void Count(const std::string& backend, int status, double seconds);
  void CountRetry();

  // lb_metrics.cc: one backend's series, looked up in the registry once per backend and code, then
  // found by the backend's name in a table read without a lock (as core/metrics_http.h does for
  // routes): the request path builds no key and formats no label.
  struct BackendSeries {
    std::string name;
    metrics::Histogram* duration = nullptr;
    metrics::CounterSlots<12> codes;  // by status + 1 (status 0, no answer, is a series too)
  };

  LbConfig cfg_;
  std::atomic<std::shared_ptr<Policy>> policy_;
  std::atomic<std::shared_ptr<const Pool>> pool_;
  std::mutex mu_;                 // health map, stats map, cfg_.settings.policy and health_options_
  HealthOptions health_options_;  // for backends seen from now on
  std::map<std::string, std::unique_ptr<BackendHealth>> health_;
  std::map<std::string, std::shared_ptr<BackendStats>> stats_;  // survive snapshots
  RateLimiter limiter_;
  std::unique_ptr<membership::Membership> membership_;
  membership::StaticMembership* static_members_ = nullptr;  // set when there is no runner
  // Settings::upstream_tls: the client context every backend connection and check uses (the
  // CA it trusts); null over plain HTTP.
  std::shared_ptr<boost::asio::ssl::context> upstream_tls_;
  upstream::Client upstream_;
  metrics::Registry registry_;
  std::mutex series_mu_;  // adding a backend's series or a code slot
  metrics::NamedIndex<BackendSeries> series_;
};

// The pool as members and back. `tls`: the backends' addresses are their TLS listeners (a
// member's tls_address; members without one are left out).
membership::Members ToMembers(const std::vector<Backend>& backends, bool tls);
std::vector<Backend> ToBackends(const membership::Members& members, bool tls);

}  // namespace millions::lb
