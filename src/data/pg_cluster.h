// PgCluster: the data layer's view of a replicated PostgreSQL cluster (a primary and replicas
// managed by Patroni), and the connections to each member. Every query says what it needs, as
// userver's do: the primary (writes, and reads that must see the caller's own writes) or a
// replica (may be stale). Replica reads spread over replicas whose replay lag is within a
// bound, and fall back to the primary; writes wait (bounded) for a primary during a failover.
//
// Roles and lag are discovered, not configured: a poller thread asks every member
// `pg_is_in_recovery()` and its WAL position every poll interval (and Patroni's REST API for
// the leader when members disagree), and publishes an immutable snapshot.
//
// Thread-safety: every method may be called from any thread; calls block (they run on a
// BlockingPool). The view is an atomic shared_ptr<const ClusterView>. Ownership: owns one
// pg::Pool per member and the poller thread, stopped by the destructor.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/metrics.h"
#include "core/pg.h"
#include "core/result.h"

namespace millions::data {

struct MemberState {
  std::string name;
  std::string host;
  int port = 0;
  std::string dc;  // its data centre ("" when the topology does not say)
  bool reachable = false;
  bool primary = false;
  uint64_t lsn = 0;        // replicas: replayed; the primary: current
  int64_t lag_bytes = -1;  // replicas: behind the primary (-1 unknown)
  double lag_seconds = 0;  // replicas: age of the last replayed transaction while behind
  uint32_t timeline = 0;   // members taking writes: the timeline they write on
};

struct ClusterView {
  std::vector<MemberState> members;
  int primary = -1;  // index into members, -1 while there is none (failover)
};

enum class Need { kPrimary, kReplica };

// Which member serves a read or write: for kReplica a reachable replica within `max_lag_bytes`
// (the `spread`-th of those, so that successive calls rotate), else the primary; for kPrimary
// the primary. Members named in `avoid` are skipped. -1 when none qualifies. With `local_dc`
// (several DCs, docs/datacentres.md) a read prefers, in turn: a replica in that DC, the primary
// when it is there, a replica elsewhere, the primary. Pure.
int PickMember(const ClusterView& view, Need need, int64_t max_lag_bytes, uint64_t spread,
               const std::vector<std::string>& avoid, const std::string& local_dc = "");

// Of several members that take writes at once (another DC's cluster promoted while the old
// primary is still up, or an old primary not yet fenced): the one on the highest timeline, the
// last promoted; of several there, only `leader` (Patroni's). -1 for none. Pure.
int PickPrimary(const ClusterView& view, const std::vector<int>& primaries,
                const std::string& leader);

// "16/B374D848" (pg_lsn as text) to a byte position; 0 when malformed.
uint64_t ParseLsn(std::string_view text);

struct ClusterOptions {
  struct Member {
    std::string name;
    std::string host;
    int port = 0;
    std::string rest;      // Patroni REST host:port (optional)
    std::string conninfo;  // instead of host/port/database/user (a single, unmanaged server)
    std::string dc;        // its data centre (optional)
  };
  // This node's data centre: replica reads prefer its members (PickMember). "": no preference.
  std::string local_dc;
  std::vector<Member> members;
  // The `shard` label of this cluster's series: "0" unsharded, else the cluster's name in the
  // shard map (docs/sharding.md), so several clusters share one node's registry.
  std::string shard = "0";
  std::string database = "millions";
  std::string user = "millions";
  int pool_size = 8;  // per member
  int connect_timeout_s = 3;
  int statement_timeout_ms = 10'000;
  int64_t max_replica_lag_bytes = 1 << 20;
  std::chrono::milliseconds failover_wait{15'000};  // a write waits this long for a primary
  std::chrono::milliseconds poll_interval{500};
};

class PgCluster {
 public:
  // Starts the poller and waits (up to a few seconds) for a first view. Never throws for a
  // cluster that is down: requests then get 503s until it is up.
  explicit PgCluster(ClusterOptions options);
  ~PgCluster();

  struct Lease {
    pg::Pool::Lease conn;
    std::string member;
    bool primary = false;
  };
  // A connection to a member that serves `need`. kPrimary waits up to failover_wait for a
  // primary; 503 database_unavailable when none appears.
  Result<Lease> Acquire(Need need, const std::vector<std::string>& avoid = {});
  // After a connection failure on `member`: skip it until the poller sees it again, and poll
  // now (a dead primary is noticed at once, not at the next interval).
  void MarkDown(const std::string& member);

  std::shared_ptr<const ClusterView> View() const { return view_.load(); }
  const std::string& shard() const { return opt_.shard; }
  std::vector<std::string> MemberNames() const {
    std::vector<std::string> out;
    for (const auto& m : opt_.members) out.push_back(m.name);
    return out;
  }
  uint64_t failovers() const { return failovers_.load(); }
  // A callback collector (metrics::Registry::AddCollector): reachability and role, replica lag
  // in bytes and seconds per member, and the failovers seen, read from the current view.
  void CollectMetrics(metrics::Families* out) const;

 private:
  void PollLoop();
  void PollOnce();
  std::string LeaderFromPatroni();

  ClusterOptions opt_;
  std::map<std::string, std::unique_ptr<pg::Pool>> pools_;   // fixed after construction
  std::map<std::string, std::unique_ptr<pg::Pool>> probes_;  // one connection each, for polling
  std::atomic<std::shared_ptr<const ClusterView>> view_;
  std::mutex down_mu_;
  std::map<std::string, std::chrono::steady_clock::time_point> down_;
  std::atomic<uint64_t> spread_{0};
  std::atomic<uint64_t> failovers_{0};
  std::string last_primary_;
  std::mutex poll_mu_;
  std::condition_variable poll_cv_;
  bool poll_now_ = false;
  bool stop_ = false;
  std::thread poller_;
};

}  // namespace millions::data
