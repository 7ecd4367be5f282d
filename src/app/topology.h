// Topology: one file describing a whole deployment (../shared/CONTRACT.md section 4): data
// centres, the nodes of each role with their listen addresses, the engines and the policies.
// Every node of a deployment reads the same file and picks its own entry by name; `millions up`
// reads it to start them all. Unknown keys are errors naming the key and line.
// Thread-safety: a value, built at start-up. Ownership: owns its strings.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "app/node.h"
#include "core/pg.h"
#include "data/pg_cluster.h"

namespace millions::app {

struct NodeEntry {
  std::string name;
  std::string dc;
  std::string listen;      // host:port
  std::string rest;        // postgres nodes: Patroni's REST API, host:port
  std::string admin;       // lb nodes: the admin listener (status, metrics), host:port
  std::string tls_listen;  // lb nodes: the HTTPS listener, host:port (optional)
  std::string peer;        // etcd nodes: the peer (raft) listener, host:port
};

// [lb]: the balancer's policies (docs/topology.md).
struct LbSettings {
  int threads = 2;
  std::string policy = "least_outstanding";
  std::string hash_header;
  int check_interval_ms = 1000;
  int rise = 2;
  int fall = 2;
  int consecutive_failures = 5;
  int base_ejection_ms = 5000;
  int max_ejection_ms = 120000;
  int slow_start_ms = 10000;
  double rate_limit_rps = 0;
  double rate_limit_burst = 100;
  std::string tls_cert;  // PEM files for every node's tls_listen
  std::string tls_key;
};

// [redis]: how `millions up` runs each cache node.
struct RedisSettings {
  std::string maxmemory = "64mb";  // per node, Redis' own units
  std::string eviction_policy = "allkeys-lru";
};

// What `millions up` needs beyond the nodes: where it keeps state and its admin listener.
struct RunnerConfig {
  std::string run_dir = "run";
  std::string admin = "127.0.0.1:7070";  // admin API and dashboard; loopback only
  // etcd's members: [[etcd.node]] tables, or one member named "etcd" from [etcd] listen and
  // peer_listen. Three members survive the loss of one.
  std::vector<NodeEntry> etcd;
  std::string engine_user = "postgres";  // engines run as this user when the runner is root
  int patroni_ttl_s = 10;
  int patroni_loop_wait_s = 2;
  int patroni_retry_timeout_s = 4;
  // Patroni's synchronous replication: a commit waits for one replica, and only that replica
  // may be promoted (no acknowledged write is lost on failover). Strict: writes stop rather
  // than go asynchronous when no replica is left.
  bool patroni_synchronous_mode = false;
  bool patroni_synchronous_mode_strict = false;
  // Patroni's failsafe mode: while etcd is unreachable, a primary that still reaches every
  // member over REST stays primary instead of demoting itself.
  bool patroni_failsafe_mode = true;
  // The supervisor as Patroni's watchdog: when the primary's Patroni has not answered for this
  // long, its whole node (Patroni and PostgreSQL) is killed before its leader lease can expire,
  // so a frozen leader that wakes up cannot take the lock back from the new one (Patroni 3.0.2
  // rewrites the leader key without comparing). 0: off. Default: half the TTL.
  int fence_after_ms = -1;  // -1: ttl_s * 500
};

struct Topology {
  std::string name;
  std::vector<std::string> dcs;
  std::vector<NodeEntry> web;
  std::vector<NodeEntry> postgres;
  std::vector<NodeEntry> lb;
  std::vector<NodeEntry> redis;  // cache nodes (L2); none: every web node caches in L1 only
  LbSettings lb_settings;
  RedisSettings redis_settings;
  std::string pg_database = "millions";
  std::string pg_user = "millions";
  int pg_pool_size = 8;
  int pg_statement_timeout_ms = 10'000;
  int64_t pg_max_replica_lag_bytes = 1 << 20;  // replicas further behind serve no reads
  int pg_failover_wait_ms = 15'000;            // a write waits this long for a new primary
  int queue_lease_ms = 60'000;
  WebNodeConfig web_defaults;  // [web] plus the shared tables
  RunnerConfig runner;

  // Throws config::ConfigError naming file, line and key.
  static Topology Load(const std::string& path);
  const NodeEntry* FindWeb(const std::string& name) const;
  // The data layer's view of [[postgres.node]]: members, pools, lag bound, failover wait.
  data::ClusterOptions Cluster() const;
  // libpq conninfo naming every PostgreSQL node, asking for the writable one.
  pg::Options PgOptions() const;
};

}  // namespace millions::app
