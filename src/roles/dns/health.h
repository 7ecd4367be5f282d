// The DNS node's own view of the balancers' health: every interval, GET check_path (default
// /readyz) on each balancer's admin listener, all at once, each bounded by the check timeout;
// `fall` failures in a row take a balancer down and `rise` successes bring it back (the first
// round decides outright). When a verdict changes, a new Zone (zone.h) is built and published
// as an immutable snapshot: the io threads take a shared_ptr to it (once per batch of
// datagrams, once per TCP query) and never wait for a check. The pointer sits behind a mutex
// held only for that copy, not in a std::atomic<std::shared_ptr>: libstdc++ 12's hides its lock
// from ThreadSanitizer, which then reports every load beside a store as a race.
// Thread-safety: Check runs on one thread (the checker); zone(), StatusJson() and the metrics
// collector on any. Ownership: owns the published zones; borrows the registry.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/metrics.h"
#include "roles/dns/settings.h"
#include "roles/dns/zone.h"

namespace millions::dns {

// One balancer's check result: true when it answered 200 within the timeout.
using Probe = std::function<bool(const CheckTarget&, std::chrono::milliseconds timeout)>;
// GET http://host:port/path (http_client.h).
Probe HttpProbe(std::string path);

class Health {
 public:
  Health(const DnsConfig& cfg, metrics::Registry& reg, Probe probe);
  // One round: every balancer probed at once (a thread each), verdicts updated, a new zone
  // published when one changed. Blocks for at most about the check timeout.
  void Check();
  std::shared_ptr<const Zone> zone() const {
    std::lock_guard lock(zone_mu_);
    return zone_;
  }
  std::string StatusJson() const;

 private:
  void Publish();  // under mu_

  const DnsConfig& cfg_;
  Probe probe_;
  mutable std::mutex zone_mu_;  // guards zone_ alone; never held while building one
  std::shared_ptr<const Zone> zone_;
  mutable std::mutex mu_;
  std::vector<bool> up_;
  std::vector<int> streak_;  // >0 successes in a row, <0 failures
  bool first_ = true;
  std::vector<metrics::Gauge*> up_gauges_;
  metrics::Counter* changes_ = nullptr;
};

}  // namespace millions::dns
