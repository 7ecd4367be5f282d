// Business: the service's business metrics (docs/metrics.md, Business): daily active users
// (distinct users with an authenticated request or a log-in on a UTC day), sign-ups, log-ins,
// uploads, edits and follows, and day-1 and day-7 retention by sign-up cohort.
// - Recording (the request path): a user seen on a day is noted once per node in a small
//   bounded set (Active is a striped hash-set lookup, no I/O); what is new, and every event, is
//   queued and written by a background thread every `flush_interval` into per-day structures of
//   a cache::Tallies store shared by every web node (the cache nodes; `single`: this process):
//   biz:active:DAY, biz:cohort:DAY (who signed up that day), biz:back:COHORT:1 and :7 (users of
//   a cohort active 1 and 7 days after it), biz:events:DAY:KIND. A user's sign-up day is read
//   from its ID (data/ids.h), so no lookup is needed. Keys expire after `ttl`.
// - Reading (a scrape): the exported figures come from a snapshot the background thread reads
//   from the store when scrapes ask for it, at most every `min_refresh`: a scrape never waits
//   for the store and never scans a table. Every node reports the same global figures (take
//   their max, never their sum); millions_business_events_total counts this node's own events.
// Days are UTC days of the Env's wall clock, so tests move across days with a FakeEnv.
// Thread-safety: Active and Event may be called from any thread, on an event loop too; Flush and
// Refresh block on the store. Ownership: shares the store; borrows the Env and the registry,
// whose collector holds the snapshot by shared_ptr (it may outlive this object).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "cache/tallies.h"
#include "core/env.h"
#include "core/metrics.h"

namespace millions::app {

struct BusinessOptions {
  std::chrono::milliseconds flush_interval{1000};
  std::chrono::milliseconds min_refresh{1000};
  int cohort_days = 28;  // cohorts exported: bounded label cardinality
  std::chrono::milliseconds ttl{35LL * 24 * 3600 * 1000};
  size_t max_seen = 200'000;     // users remembered per node and day (then forgotten: re-sent)
  size_t max_pending = 200'000;  // members waiting for a write (then dropped and counted)
};

enum class BusinessEvent { kSignUp, kLogIn, kUpload, kEdit, kFollow };
inline constexpr int kBusinessEvents = 5;
const char* BusinessEventName(BusinessEvent e);

class Business {
 public:
  struct Cohort {
    int64_t day = 0;  // UTC days since 1970-01-01
    int64_t users = 0;
    double day1 = -1, day7 = -1;  // ratios; -1 until that day has begun
  };
  struct Snapshot {
    bool valid = false;
    int64_t day = 0;
    int64_t active_today = 0, active_yesterday = 0;
    std::array<int64_t, kBusinessEvents> events_today{};
    std::vector<Cohort> cohorts;  // the last `cohort_days` days with sign-ups, oldest first
    std::chrono::steady_clock::time_point at;
  };

  Business(Env& env, std::shared_ptr<cache::Tallies> store, metrics::Registry& metrics,
           BusinessOptions options = {});
  ~Business();
  // A user made an authenticated request.
  void Active(int64_t user_id);
  // An event by `user_id` (active too); a sign-up also joins its cohort.
  void Event(BusinessEvent e, int64_t user_id);
  // The background thread: flushes, and refreshes the snapshot when a scrape asked for it.
  void Start();
  void Stop();
  // Writes what was noted since the last flush (kept for the next one when the store fails).
  void Flush();
  // Reads the shared figures into the snapshot (kept as it was when the store fails).
  void Refresh();
  Snapshot snapshot() const;

  static int64_t DayOf(int64_t wall_ms) { return wall_ms / 86'400'000; }
  static std::string DayName(int64_t day);  // "2026-12-03"

 private:
  struct Stripe {
    std::mutex mu;
    int64_t day = -1;
    std::unordered_set<int64_t> seen;
  };
  struct Shared {  // what the scrape's collector reads
    mutable std::mutex mu;
    Snapshot snap;
    std::atomic<bool> wanted{true};
  };
  void NoteActive(int64_t user_id, int64_t day);
  void AddMember(const std::string& key, int64_t member);  // under pending_mu_
  void Loop();

  Env& env_;
  std::shared_ptr<cache::Tallies> store_;
  BusinessOptions opt_;
  std::array<metrics::Counter*, kBusinessEvents> events_{};
  metrics::Counter& errors_;
  metrics::Counter& dropped_;
  std::array<Stripe, 16> stripes_;
  std::mutex pending_mu_;
  std::map<std::string, std::vector<int64_t>> pending_members_;
  std::map<std::string, int64_t> pending_counts_;
  size_t pending_size_ = 0;
  std::shared_ptr<Shared> shared_ = std::make_shared<Shared>();
  std::mutex flush_mu_;  // one Flush at a time (the thread's and a caller's)
  std::mutex loop_mu_;
  std::condition_variable loop_cv_;
  bool stop_ = false;
  std::thread thread_;
  std::chrono::steady_clock::time_point refreshed_{};
};

}  // namespace millions::app
