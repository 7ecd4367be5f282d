// Health of one backend as the balancer sees it: active checks (GET /readyz every interval;
// `fall` failures in a row take it down, `rise` successes bring it back) and passive outlier
// ejection (`consecutive_failures` 5xx answers or connect failures in a row eject it for a
// time that doubles with each ejection, up to a cap). A backend that comes back starts slow:
// its weight ramps up over `slow_start`. The verdict is written into BackendStats for the
// policies to read.
// Thread-safety: every method may be called from any thread. Ownership: shares the stats.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>

#include "core/env.h"
#include "roles/lb/balancer.h"

namespace millions::lb {

struct HealthOptions {
  int rise = 2;
  int fall = 2;
  int consecutive_failures = 5;
  std::chrono::milliseconds base_ejection{5000};
  std::chrono::milliseconds max_ejection{120000};
  std::chrono::milliseconds slow_start{10000};
};

class BackendHealth {
 public:
  BackendHealth(HealthOptions options, Env& env, std::shared_ptr<BackendStats> stats);
  void OnCheck(bool ok);        // an active check finished
  void OnRequest(bool failed);  // a proxied request: failed = 5xx or connect failure
  void Tick();                  // ends ejections and advances slow start
  bool up() const;
  int ejections() const;

 private:
  void Publish();  // under mu_
  HealthOptions opt_;
  Env& env_;
  std::shared_ptr<BackendStats> stats_;
  mutable std::mutex mu_;
  bool checked_up_ = true;        // a node announces itself when ready, so it starts up
  int check_streak_ = 0;          // >0 successes, <0 failures in a row
  std::atomic<int> failures_{0};  // passive, in a row (successes reset it without the lock)
  int ejections_ = 0;
  std::chrono::steady_clock::time_point ejected_until_{};
  std::optional<std::chrono::steady_clock::time_point> back_since_;  // set on recovery
  bool was_healthy_ = true;
};

}  // namespace millions::lb
