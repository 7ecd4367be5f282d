// PgExecutor: where every PostgreSQL statement of the store runs, apart from the SQL itself
// (pg_users.cc, pg_photos.cc, pg_jobs.cc, pg_sessions.cc). It owns the cluster (PgCluster) and
// the routing rules: which member serves a statement (the primary, or a replica within the lag
// bound), read-your-writes (reads about a user who just wrote through this node go to the
// primary), waiting for a primary during a failover, which failures are retried, and the
// per-member query counters. The `user` argument of ReadFor/WriteFor is the routing key a
// sharded store will pick the shard by.
// Thread-safety: every method may be called from any thread; calls block (BlockingPool).
// Ownership: owns the PgCluster (its pools and poller); facets share the executor.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "core/metrics.h"
#include "core/pg.h"
#include "core/result.h"
#include "data/pg_cluster.h"
#include "data/rows.h"

namespace millions::data {

class PgExecutor {
 public:
  template <class T>
  using Fn = std::function<Result<T>(pg::Conn&)>;

  explicit PgExecutor(ClusterOptions options) : cluster_(std::move(options)) {}

  // Queries by member role and per-member reads, and the cluster's own series.
  void RegisterMetrics(metrics::Registry& registry);

  // Reads: on the member the consistency asks for; a replica that fails is skipped and the
  // read goes to another member (reads are safe to repeat); a row a replica does not have
  // yet (404) is asked of the primary, so a caller sees what was just created.
  template <class T>
  Result<T> Read(Consistency c, const Fn<T>& fn) {
    return Capture<T>(fn, [&](const Attempt& a) { return ReadOn(c, a); });
  }
  // A read about `user`: on the primary while the user's own recent write may not have
  // reached the replicas (read-your-writes), else as Read.
  template <class T>
  Result<T> ReadFor(int64_t user, Consistency c, const Fn<T>& fn) {
    return Read<T>(ForUser(c, user), fn);
  }

  // Writes: on the primary, waiting (bounded) for one during a failover. A statement that
  // fails because the primary went away is not repeated: it may have committed; the caller
  // gets a 503 and decides (Idempotency-Key).
  template <class T>
  Result<T> Write(const Fn<T>& fn) {
    return Capture<T>(fn, [&](const Attempt& a) { return WriteOn(a); });
  }
  // A write by `user`: opens the user's read-your-writes window, then as Write.
  template <class T>
  Result<T> WriteFor(int64_t user, const Fn<T>& fn) {
    Wrote(user);
    return Write<T>(fn);
  }
  // A write whose statements commit together (BEGIN ... COMMIT).
  template <class T>
  Result<T> WriteTx(const Fn<T>& fn) {
    return Write<T>([&](pg::Conn& c) -> Result<T> { return pg::InTx<T>(c, fn); });
  }

  // One statement whose rows do not matter, as Write / WriteFor.
  Status Run(const char* name, const char* sql, std::initializer_list<pg::Param> params);
  Status RunFor(int64_t user, const char* name, const char* sql,
                std::initializer_list<pg::Param> params);

 private:
  using Attempt = std::function<Status(pg::Conn&)>;
  Status ReadOn(Consistency c, const Attempt& attempt);
  Status WriteOn(const Attempt& attempt);

  // Runs fn through `route` (ReadOn or WriteOn), keeping the result of its last attempt.
  template <class T, class Route>
  static Result<T> Capture(const Fn<T>& fn, Route&& route) {
    std::optional<Result<T>> out;
    Status st = route([&](pg::Conn& c) -> Status {
      out.emplace(fn(c));
      if (out->ok()) return Ok();
      return out->error();
    });
    if (!st.ok()) return st.error();
    return std::move(*out);
  }

  // Read-your-writes: reads about a user who wrote through this node in the last
  // kReadYourWritesMs go to the primary (replicas may not have replayed the write yet).
  static constexpr int64_t kReadYourWritesMs = 2000;
  void Wrote(int64_t user);
  Consistency ForUser(Consistency c, int64_t user);

  struct Counters {
    metrics::Counter* primary_read = nullptr;
    metrics::Counter* replica_read = nullptr;
    metrics::Counter* primary_write = nullptr;
  };
  PgCluster cluster_;
  Counters counters_;
  std::map<std::string, metrics::Counter*> member_reads_;  // fixed once metrics are registered
  std::mutex recent_mu_;
  std::unordered_map<int64_t, std::chrono::steady_clock::time_point> recent_;
};

}  // namespace millions::data
