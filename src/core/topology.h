// Topology: the shared part of the file that describes a whole deployment (../shared/CONTRACT.md
// section 4): its data centres, the nodes of every role with their addresses, the engines' shared
// settings ([postgres], [redis], [etcd], [nats], Patroni's) and the runner. Each role reads its own
// tables from the same file with its own reader (roles/lb/settings.h, roles/web/settings.h), so a
// process sees only the settings of what it runs. Sections a topology does not use are optional.
// Every node of a deployment reads the same file and picks its own entry by name; `millions up`
// reads every section to start them all. Unknown keys are errors naming the key and line.
// Thread-safety: a value, built at start-up. Ownership: owns its strings; shares the parsed file
// with its copies, for the role readers.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/config.h"

namespace millions::topo {

// One [[<role>.node]]. Every node has a name, a dc and a listen address; the other addresses
// belong to some roles only (kNodeKeys in topology.cc says which).
struct NodeEntry {
  std::string name;
  std::string dc;
  std::string listen;      // host:port
  std::string rest;        // postgres nodes: Patroni's REST API, host:port
  std::string admin;       // lb, edge and dns nodes: the admin listener (status, metrics, an edge's
                           // purges); nats nodes: the
                           // monitor (/healthz, /jsz); host:port
  std::string tls_listen;  // lb and edge nodes: the HTTPS listener; web nodes: the TLS listener
                           // the balancers use under [lb] upstream_tls; host:port (optional)
  std::string peer;        // etcd nodes: the peer (raft) listener; nats nodes: the cluster's
                           // route listener (with more than one nats node); host:port
  std::string cluster;     // postgres nodes of a sharded topology: the database cluster (shard)
  // The [[host]] the node runs on (`millions up --host NAME` starts it there); "" when the
  // topology names no hosts (every node on the one machine).
  std::string host;
};

// One [[host]]: a machine of the deployment (docs/deploy.md, "Beyond one machine"). `millions up
// --host NAME` on it starts the nodes that name it; etcd, Patroni and NATS form their clusters
// across the hosts.
struct HostEntry {
  std::string name;
  // Optional: the host's address. When set, every address of every node on the host must be at
  // it (a node put on the wrong host is an error at load, not a bind failure on the machine).
  std::string address;
  // Optional: its runner's admin listener, in place of [runner] admin (two hosts' runners on one
  // machine, as the tests run them, each need their own).
  std::string admin;
};

// [shards]: the data split by user over several database clusters (docs/sharding.md). Absent:
// every [[postgres.node]] is one cluster, as before sharding.
struct ShardSettings {
  bool enabled = false;
  std::string function = "balanced";  // the shard function: balanced | ring | modulo
  int logical = 1024;                 // logical shards, fixed for the deployment's life
  // How many of the clusters (the first, in the topology's order) the first map places logical
  // shards on; the others hold nothing until `millions reshard` moves shards there. 0: all.
  int initial = 0;
};

// One database cluster: its own Patroni scope (its own primary and replicas) in the one etcd.
struct PgClusterEntry {
  std::string name;   // the shard map's name for it; "" when the topology is not sharded
  std::string scope;  // Patroni's scope: "millions", or "millions-<name>" for a shard's cluster
  std::vector<NodeEntry> nodes;
  // Several DCs ([postgres] primary_dc, docs/datacentres.md): the DC of this cluster's members;
  // `standby`: it starts as a Patroni standby cluster of the primary DC's cluster.
  std::string dc;
  bool standby = false;
};

// [redis]: how `millions up` runs each cache node.
struct RedisSettings {
  std::string maxmemory = "64mb";  // per node, Redis' own units
  std::string eviction_policy = "allkeys-lru";
};

// [timeline]: how `millions up` runs each timeline node (the store of home timelines). Only
// maxmemory is shared; the web role reads the table's other keys (cap, celebrity_followers).
struct TimelineSettings {
  std::string maxmemory = "256mb";  // per node, Redis' own units; full: writes fail, none evicted
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
  std::string path;  // the file it was read from
  std::vector<std::string> dcs;
  // [[host]] tables, in the file's order; none: every node on the one machine. The first host
  // makes the deployment's secrets and runs the nodes that name no host (the one [etcd] member
  // of a topology without [[etcd.node]], [prometheus]).
  std::vector<HostEntry> hosts;
  // The host this process acts as (SelectHost): `up` starts its nodes only; "" all of them.
  std::string this_host;
  std::vector<NodeEntry> web;
  std::vector<NodeEntry> postgres;
  // The database clusters, in the order the topology first names them: every postgres node is
  // in exactly one. Not sharded: one cluster of every postgres node (none without any).
  std::vector<PgClusterEntry> pg_clusters;
  ShardSettings shards;
  std::vector<NodeEntry> lb;
  std::vector<NodeEntry> redis;  // cache nodes (L2); none: every web node caches in L1 only
  RedisSettings redis_settings;
  // The timeline store: Redis with an AOF, never evicted or flushed. The first node is the
  // primary, every other one its replica. None: feeds are read from the database.
  std::vector<NodeEntry> timeline;
  TimelineSettings timeline_settings;
  // CDN edges ([[edge.node]]): caching proxies in front of the balancers (or, without any, the
  // web nodes), each with an admin listener for purges, status and metrics.
  std::vector<NodeEntry> edge;
  // Authoritative DNS servers for the service's zone ([[dns.node]]): geo-routed answers with the
  // healthy balancers of each region's nearest DC (roles/dns), each with an admin listener.
  std::vector<NodeEntry> dns;
  // [dns] zone, lower case without the final dot: read here for `millions status` (its
  // endpoints name the zone) so that the runner never reads the file after start-up; the DNS
  // role's reader (roles/dns/settings.h) checks it and reads the rest of [dns].
  std::string dns_zone = "millions.test";
  // [network] mode: where `millions up` puts the nodes. "loopback": on this machine's loopback,
  // at the addresses written here; "netns": each node in a network namespace of its own with an
  // address from 198.18.0.0/15 (ctl/netns.h; needs root); "auto": netns when this machine allows
  // it, else loopback. Only `up` reads it: the nodes read the addresses it rewrote.
  std::string network_mode = "loopback";
  // NATS JetStream servers (the job queue); with more than one, they form one cluster.
  std::vector<NodeEntry> nats;
  // Photo workers: processes that take edit jobs from NATS. Needs nats nodes.
  std::vector<NodeEntry> worker;
  // [nats] stream_replicas: copies of the jobs stream, on that many nats nodes (1..5, at most
  // the number of nats nodes).
  int nats_stream_replicas = 1;
  // [postgres]: the database every web node uses, and how.
  std::string pg_database = "millions";
  std::string pg_user = "millions";
  int pg_pool_size = 8;
  int pg_statement_timeout_ms = 10'000;
  int64_t pg_max_replica_lag_bytes = 1 << 20;  // replicas further behind serve no reads
  int pg_failover_wait_ms = 15'000;            // a write waits this long for a new primary
  // [postgres] primary_dc (docs/datacentres.md): the DC whose database cluster first takes
  // writes; the postgres nodes of every other DC form a Patroni standby cluster of it (scope
  // "millions-<dc>"), which `millions dc failover` promotes. "": one cluster of every node.
  std::string pg_primary_dc;
  // With primary_dc: each DC's Patroni cluster, the primary DC's first ("millions").
  // pg_clusters is then still the one cluster of every node, as the data layer sees them.
  std::vector<PgClusterEntry> dc_clusters;
  // [postgres] dc_failover_after_ms: the runner promotes a standby cluster when the primary
  // DC's balancers and database members have all been unreachable this long. 0: never.
  int pg_dc_failover_after_ms = 15'000;
  RunnerConfig runner;

  // Reads the shared tables; throws config::ConfigError naming file, line and key. Role readers
  // then read their own tables from file(); Check() ends the reading.
  static Topology Load(const std::string& path);
  // The parsed file, for the role readers. Reading marks keys as known.
  config::ConfigFile& file() const { return *file_; }
  // Throws for keys nobody read, in the shared tables and in `role_tables` (the readers' own);
  // Check({"*"}) checks the whole file (what `millions up` and `millions single` do).
  void Check(const std::vector<std::string>& role_tables) const;

 private:
  std::shared_ptr<config::ConfigFile> file_;
};

// [lb] upstream_tls: the directory of the web nodes' certificates and the CA the balancers trust
// (RUN_DIR/tls/upstream: ca.pem, and NODE.pem with NODE.key for each web node; `millions up`
// makes them). `run_dir` as [runner] run_dir names it, or its absolute path.
std::string UpstreamTlsDir(const std::string& run_dir);

// The cluster a postgres node belongs to, or nullptr.
const PgClusterEntry* ClusterOfNode(const Topology& t, const std::string& node);
// The Patroni cluster (scope) a postgres node is a member of: its DC's with [postgres]
// primary_dc, else ClusterOfNode's. nullptr: none.
const PgClusterEntry* PatroniClusterOfNode(const Topology& t, const std::string& node);

// The node named `name` among `nodes`, or nullptr.
const NodeEntry* FindNode(const std::vector<NodeEntry>& nodes, const std::string& name);

// ---- hosts (topology_hosts.cc) ----------------------------------------------------------------
// Makes `t` the view of host `host` (`--host`): this_host, and its runner's admin listener when
// the host names one. Throws config::ConfigError naming the file and listing its hosts when the
// topology has no such host (or none at all).
void SelectHost(Topology* t, const std::string& host);
// Whether `e` runs where `t` acts: every node when no host is selected; else the nodes naming
// this host, and those naming none when this is the first host.
bool OnThisHost(const Topology& t, const NodeEntry& e);
// True when `t` acts as the first host, or as no host in particular (every node here).
bool IsFirstHost(const Topology& t);
// What is wrong with the etcd members' spread over the DCs: one line per DC whose loss leaves
// no quorum (fewer than a majority of the members in the other DCs), naming what would be left
// and what to do (a member in a third DC, a witness). Empty when the loss of any one DC leaves a
// quorum, and when the topology names fewer than two DCs (there is nothing to survive).
std::vector<std::string> EtcdDcLossWarnings(const Topology& t);

}  // namespace millions::topo
