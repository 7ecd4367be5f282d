// The autoscaler of `millions up` for the two stateless tiers (workers and web nodes): its
// settings ([autoscale.worker], [autoscale.web]), the pure decision that turns one sample of a
// tier into a target count and a reason, and the bounded list of decisions the dashboard shows.
// The loop that samples, decides and scales lives in the runner (runner_autoscale.cc); this file
// knows no process, no clock and no HTTP, so every rule is unit-tested with a fake clock.
// Thread-safety: Decide is a pure function; AutoscaleState is owned by the autoscaler thread
// alone; DecisionLog is safe to use from any thread (one mutex).
// Ownership: values only.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/topology.h"

namespace millions::ctl {

// One tier's [autoscale.<tier>] table. A bound of 0 is not looked at.
struct AutoscaleTier {
  bool enabled = false;
  int min = 1;
  int max = 4;
  int interval_ms = 2000;   // sample and decide this often; at most one step up per interval
  int cooldown_ms = 30000;  // below half of every bound this long before one node goes
  // Workers: jobs waiting or running per worker, and the age of the oldest of them.
  double backlog_per_worker = 4;
  int oldest_age_ms = 10000;
  // Web nodes: requests in flight per node, CPU (fraction of one core, mean per node) and the
  // tier's p99 over the last interval.
  double in_flight_per_node = 8;
  double cpu = 0.8;
  int p99_ms = 500;
};

struct AutoscaleConfig {
  AutoscaleTier worker;
  AutoscaleTier web;
};

// Reads [autoscale.worker] and [autoscale.web] (both optional; absent: disabled). Throws
// config::ConfigError naming the key (range) or the table (min above max). Start-up only.
AutoscaleConfig ReadAutoscale(const topo::Topology& t);

// What one sample of a tier saw. A measure that could not be read is nullopt: it neither asks
// for a node nor counts as idle (an unreadable tier never shrinks).
struct TierSample {
  int nodes = 0;  // nodes the tier has now (wanted ones)
  // Workers.
  std::optional<double> backlog;         // jobs waiting or running, whole tier
  std::optional<double> oldest_age_ms;   // the oldest of them; 0 when there is none
  std::optional<std::string> idle_node;  // a worker running no job (the one to remove), if any
  // Web nodes.
  std::optional<double> in_flight;  // requests in flight, whole tier
  std::optional<double> cpu;        // mean per node, fraction of a core
  std::optional<double> p99_ms;     // over the last interval; nullopt with no request
};

enum class Tier { kWorker, kWeb };
const char* TierName(Tier t);

using AutoClock = std::chrono::steady_clock;

// What the autoscaler remembers of a tier between samples.
struct AutoscaleState {
  std::optional<AutoClock::time_point> last_change;  // the last scaling of this tier
  std::optional<AutoClock::time_point> calm_since;   // below half of every bound since then
};

struct Decision {
  int target = 0;      // == sample.nodes: no change
  std::string reason;  // why (also when nothing changes: for the dashboard's "now" line)
  std::string remove;  // scaling down: the node to remove ("" = any); workers: an idle one
};

// The rules (docs/autoscale.md): below min or above max: straight to the bound. Over any bound:
// one node more, at most once per interval, never above max. Below half of every bound for
// cooldown_ms (and cooldown_ms since the last change): one node less, never below min, and for
// workers only when one is idle. Updates `state` (calm_since, last_change when it scales).
Decision Decide(Tier tier, const AutoscaleTier& cfg, const TierSample& s, AutoClock::time_point now,
                AutoscaleState* state);

// One scaling the autoscaler made (or tried), for the dashboard and the runner's events.
struct DecisionRecord {
  std::string ts;  // RFC 3339
  std::string tier;
  int from = 0, to = 0;
  std::string reason;
  std::string error;  // Scale's error, "" when it worked
};

// The last `capacity` records, oldest first.
class DecisionLog {
 public:
  explicit DecisionLog(size_t capacity = 50) : capacity_(capacity) {}
  void Add(DecisionRecord r);
  std::vector<DecisionRecord> List() const;

 private:
  size_t capacity_;
  mutable std::mutex mu_;
  std::deque<DecisionRecord> records_;
};

}  // namespace millions::ctl
