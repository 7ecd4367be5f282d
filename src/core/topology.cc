#include "core/topology.h"

#include <algorithm>
#include <regex>
#include <set>

namespace millions::topo {
namespace {

// The shared tables: every process reads and checks them.
const std::vector<std::string> kShared = {"deployment", "dc",    "host", "runner", "etcd",
                                          "postgres",   "redis", "nats", "shards"};

// Which roles have [[<role>.node]] tables, and the addresses beyond listen that their nodes
// carry. A new role adds one line here.
struct NodeKeys {
  const char* role;
  std::vector<NodeEntry>* (*nodes)(Topology&);
};
const NodeKeys kRoles[] = {
    {"web", [](Topology& t) { return &t.web; }},
    {"postgres", [](Topology& t) { return &t.postgres; }},
    {"lb", [](Topology& t) { return &t.lb; }},
    {"redis", [](Topology& t) { return &t.redis; }},
    {"etcd", [](Topology& t) { return &t.runner.etcd; }},
    {"nats", [](Topology& t) { return &t.nats; }},
    {"worker", [](Topology& t) { return &t.worker; }},
    {"timeline", [](Topology& t) { return &t.timeline; }},
    {"edge", [](Topology& t) { return &t.edge; }},
    {"dns", [](Topology& t) { return &t.dns; }},
};

void ReadAddress(config::Section& n, const char* key, std::string* out) {
  n.Get(key, out);
  if (!out->empty()) config::ParseHostPort(*out);
}

// The node's `host` key: required when the topology has [[host]] tables, and then one of them;
// with an address, every address of the node must be at it.
void ReadHost(config::Section& n, const std::string& what, const std::vector<HostEntry>& hosts,
              const std::string& file, NodeEntry* e) {
  n.Get("host", &e->host);
  if (hosts.empty() && e->host.empty()) return;
  std::string names;
  for (const auto& h : hosts) names += (names.empty() ? "" : ", ") + h.name;
  if (hosts.empty())
    throw config::ConfigError(file + ": [[" + what + ".node]] '" + e->name + "' names host '" +
                              e->host + "', but the topology has no [[host]] tables");
  if (e->host.empty())
    throw config::ConfigError(file + ": [[" + what + ".node]] '" + e->name +
                              "' needs host = \"NAME\": the topology has [[host]] tables (" +
                              names + ")");
  const HostEntry* h = nullptr;
  for (const auto& each : hosts)
    if (each.name == e->host) h = &each;
  if (!h)
    throw config::ConfigError(file + ": [[" + what + ".node]] '" + e->name + "' names host '" +
                              e->host + "', which is not one of the [[host]] tables (" + names +
                              ")");
  if (h->address.empty()) return;
  for (const std::string* a : {&e->listen, &e->rest, &e->admin, &e->tls_listen, &e->peer})
    if (!a->empty() && config::ParseHostPort(*a).host != h->address)
      throw config::ConfigError(file + ": [[" + what + ".node]] '" + e->name + "' is on host '" +
                                h->name + "' (" + h->address + ") but has the address " + *a +
                                ": every address of a node is its host's");
}

std::vector<NodeEntry> ReadNodes(config::Section role, const std::string& what,
                                 const std::set<std::string>& dcs, std::set<std::string>* names,
                                 const std::vector<HostEntry>& hosts, const std::string& file) {
  std::vector<NodeEntry> out;
  for (auto& n : role.SubArray("node")) {
    NodeEntry e;
    e.dc = dcs.empty() ? "dc1" : *dcs.begin();
    n.Get("name", &e.name);
    n.Get("dc", &e.dc);
    n.Get("listen", &e.listen);
    if (what == "postgres") {
      ReadAddress(n, "rest", &e.rest);  // `millions up` runs Patroni there
      n.Get("cluster", &e.cluster);     // sharded topologies: ReadShards checks it
    }
    if (what == "etcd") {
      ReadAddress(n, "peer_listen", &e.peer);
      if (e.peer.empty())
        throw config::ConfigError(file + ": [[etcd.node]] '" + e.name +
                                  "' needs peer_listen = \"host:port\" (the members' raft)");
    }
    if (what == "lb" || what == "edge") {
      ReadAddress(n, "admin", &e.admin);
      if (e.admin.empty())
        throw config::ConfigError(file + ": [[" + what + ".node]] '" + e.name +
                                  "' needs admin = \"host:port\" (status and metrics)");
      ReadAddress(n, "tls_listen", &e.tls_listen);
    }
    // A web node's TLS listener for the balancers ([lb] upstream_tls; docs/security.md).
    if (what == "web") ReadAddress(n, "tls_listen", &e.tls_listen);
    if (what == "dns") {
      ReadAddress(n, "admin", &e.admin);
      if (e.admin.empty())
        throw config::ConfigError(file + ": [[dns.node]] '" + e.name +
                                  "' needs admin = \"host:port\" (readiness and metrics)");
    }
    if (what == "nats") {
      // The monitor is how `up` knows a server is ready (/healthz) and what status shows (/jsz).
      ReadAddress(n, "admin", &e.admin);
      if (e.admin.empty())
        throw config::ConfigError(file + ": [[nats.node]] '" + e.name +
                                  "' needs admin = \"host:port\" (nats-server's monitor)");
      ReadAddress(n, "peer_listen", &e.peer);  // required of clusters only: ReadNats
    }
    if (e.name.empty() || e.listen.empty())
      throw config::ConfigError(file + ": every [[" + what +
                                ".node]] needs a name and a listen address");
    config::ParseHostPort(e.listen);
    ReadHost(n, what, hosts, file, &e);
    if (!dcs.empty() && !dcs.count(e.dc))
      throw config::ConfigError(file + ": node '" + e.name + "' names unknown dc '" + e.dc + "'");
    if (!names->insert(e.name).second)
      throw config::ConfigError(file + ": two nodes are named '" + e.name + "'");
    out.push_back(std::move(e));
  }
  return out;
}

void ReadEtcd(config::ConfigFile& file, Topology* t) {
  auto etcd = file.Table("etcd");
  if (!t->runner.etcd.empty()) {
    std::string ignored;
    etcd.Get("listen", &ignored);
    if (!ignored.empty())
      throw config::ConfigError(t->path + ": [etcd] has [[etcd.node]] members: put listen in each");
    return;
  }
  NodeEntry one;
  one.name = "etcd";
  one.dc = t->dcs.empty() ? "dc1" : t->dcs.front();
  one.listen = "127.0.0.1:2379";
  one.peer = "127.0.0.1:2380";
  etcd.Get("listen", &one.listen);
  etcd.Get("peer_listen", &one.peer);
  config::ParseHostPort(one.listen);
  config::ParseHostPort(one.peer);
  t->runner.etcd.push_back(std::move(one));
}

void ReadPostgres(config::ConfigFile& file, Topology* t) {
  auto pg = file.Table("postgres");
  pg.Get("database", &t->pg_database);
  pg.Get("user", &t->pg_user);
  pg.Get("pool_size", &t->pg_pool_size, 1, 1000);
  pg.Get("statement_timeout_ms", &t->pg_statement_timeout_ms, 100, 600'000);
  pg.Get("max_replica_lag_bytes", &t->pg_max_replica_lag_bytes, 0, int64_t{1} << 40);
  pg.Get("failover_wait_ms", &t->pg_failover_wait_ms, 0, 600'000);
  pg.Get("primary_dc", &t->pg_primary_dc);
  pg.Get("dc_failover_after_ms", &t->pg_dc_failover_after_ms, 0, 3'600'000);
  RunnerConfig& r = t->runner;
  auto patroni = pg.Sub("patroni");
  patroni.Get("ttl_s", &r.patroni_ttl_s, 5, 600);
  patroni.Get("loop_wait_s", &r.patroni_loop_wait_s, 1, 60);
  patroni.Get("retry_timeout_s", &r.patroni_retry_timeout_s, 1, 600);
  patroni.Get("synchronous_mode", &r.patroni_synchronous_mode);
  patroni.Get("synchronous_mode_strict", &r.patroni_synchronous_mode_strict);
  patroni.Get("failsafe_mode", &r.patroni_failsafe_mode);
  patroni.Get("fence_after_ms", &r.fence_after_ms, 0, 600'000);
  if (r.fence_after_ms < 0) r.fence_after_ms = r.patroni_ttl_s * 500;
  if (r.fence_after_ms >= r.patroni_ttl_s * 1000)
    throw config::ConfigError(t->path + ": [postgres.patroni] fence_after_ms must be shorter " +
                              "than ttl_s, or the lease expires before the fence");
}

// [postgres] primary_dc: one Patroni cluster per DC that has postgres nodes, the primary DC's
// first; the others are its standby clusters.
void ReadDcClusters(Topology* t) {
  const std::string& primary = t->pg_primary_dc;
  if (t->shards.enabled)
    throw config::ConfigError(t->path + ": [postgres] primary_dc is for unsharded topologies " +
                              "(a standby cluster per shard is not built)");
  if (std::find(t->dcs.begin(), t->dcs.end(), primary) == t->dcs.end())
    throw config::ConfigError(t->path + ": [postgres] primary_dc names unknown dc '" + primary +
                              "'");
  // The primary DC's members start first: a standby cluster starts by a base backup from them.
  std::stable_partition(t->postgres.begin(), t->postgres.end(),
                        [&](const NodeEntry& n) { return n.dc == primary; });
  t->dc_clusters.push_back({"", "millions", {}, primary, false});
  for (const auto& n : t->postgres) {
    PgClusterEntry* c = nullptr;
    for (auto& each : t->dc_clusters)
      if (each.dc == n.dc) c = &each;
    if (!c) {
      t->dc_clusters.push_back({"", "millions-" + n.dc, {}, n.dc, true});
      c = &t->dc_clusters.back();
    }
    c->nodes.push_back(n);
  }
  if (t->dc_clusters.front().nodes.empty())
    throw config::ConfigError(t->path + ": [postgres] primary_dc = \"" + primary +
                              "\", but no [[postgres.node]] is in it");
}

// [shards] and the clusters the postgres nodes name. Without [shards], a node naming a cluster
// is an error (it would silently be one cluster with the others).
void ReadShards(config::ConfigFile& file, Topology* t) {
  ShardSettings& s = t->shards;
  auto shards = file.Table("shards");
  s.enabled = shards.present();
  shards.GetChoice("function", &s.function, {"balanced", "ring", "modulo"});
  shards.Get("logical", &s.logical, 1, 8192);  // the 13 shard bits of an ID (data/ids.h)
  shards.Get("initial", &s.initial, 0, 1000);
  for (const auto& n : t->postgres) {
    if (!s.enabled) {
      if (!n.cluster.empty())
        throw config::ConfigError(t->path + ": [[postgres.node]] '" + n.name + "' names cluster '" +
                                  n.cluster + "', but the topology has no [shards] table");
      continue;
    }
    if (n.cluster.empty())
      throw config::ConfigError(t->path + ": [[postgres.node]] '" + n.name +
                                "' needs cluster = \"NAME\": the topology is sharded");
    if (!std::regex_match(n.cluster, std::regex("[a-z][a-z0-9_]{0,30}")))
      throw config::ConfigError(t->path + ": cluster '" + n.cluster +
                                "' must be lower case letters, digits and _ (a Patroni scope)");
    PgClusterEntry* c = nullptr;
    for (auto& each : t->pg_clusters)
      if (each.name == n.cluster) c = &each;
    if (!c) {
      t->pg_clusters.push_back({n.cluster, "millions-" + n.cluster, {}});
      c = &t->pg_clusters.back();
    }
    c->nodes.push_back(n);
  }
  if (!s.enabled && !t->postgres.empty()) t->pg_clusters.push_back({"", "millions", t->postgres});
  if (s.enabled && t->pg_clusters.empty())
    throw config::ConfigError(t->path + ": [shards] needs [[postgres.node]] tables naming their " +
                              "cluster");
  if (!t->pg_primary_dc.empty()) ReadDcClusters(t);
  if (s.initial > static_cast<int>(t->pg_clusters.size()))
    throw config::ConfigError(t->path + ": [shards] initial = " + std::to_string(s.initial) +
                              ", but the topology has " + std::to_string(t->pg_clusters.size()) +
                              " clusters");
}

// A Redis memory size ("64mb") from `table`.maxmemory into *out, or an error naming the table.
void ReadMaxmemory(config::Section& table, const std::string& name, const std::string& path,
                   std::string* out) {
  table.Get("maxmemory", out);
  if (!std::regex_match(*out, std::regex("[0-9]+(b|kb|mb|gb)?")))
    throw config::ConfigError(path + ": [" + name +
                              "] maxmemory must be a size such as \"64mb\", " + "not '" + *out +
                              "'");
}

void ReadRedis(config::ConfigFile& file, Topology* t) {
  auto redis = file.Table("redis");
  ReadMaxmemory(redis, "redis", t->path, &t->redis_settings.maxmemory);
  redis.GetChoice("eviction_policy", &t->redis_settings.eviction_policy,
                  {"allkeys-lru", "allkeys-lfu", "volatile-lru", "volatile-lfu", "allkeys-random",
                   "noeviction"});
}

void ReadNats(config::ConfigFile& file, Topology* t) {
  auto nats = file.Table("nats");
  nats.Get("stream_replicas", &t->nats_stream_replicas, 1, 5);
  if (t->nats.size() > 1)
    for (const auto& n : t->nats)
      if (n.peer.empty())
        throw config::ConfigError(t->path + ": [[nats.node]] '" + n.name +
                                  "' needs peer_listen = \"host:port\" (the cluster's routes): " +
                                  "there is more than one nats node");
  if (!t->nats.empty() && t->nats_stream_replicas > static_cast<int>(t->nats.size()))
    throw config::ConfigError(
        t->path + ": [nats] stream_replicas = " + std::to_string(t->nats_stream_replicas) +
        " needs as many [[nats.node]], and there are " + std::to_string(t->nats.size()));
  if (!t->worker.empty() && t->nats.empty())
    throw config::ConfigError(t->path +
                              ": workers take jobs from NATS: the topology has no [[nats.node]]");
}

// [timeline]: maxmemory only. The table's other keys (cap, celebrity_followers) are the web
// role's (roles/web/settings.cc): the table is not shared (kShared), so a balancer does not
// refuse them, and `up`'s Check({"*"}) sees them read by the web role's reader.
void ReadTimeline(config::ConfigFile& file, Topology* t) {
  auto timeline = file.Table("timeline");
  ReadMaxmemory(timeline, "timeline", t->path, &t->timeline_settings.maxmemory);
}

}  // namespace

Topology Topology::Load(const std::string& path) {
  Topology t;
  t.path = path;
  t.file_ = config::ConfigFile::Load(path);
  config::ConfigFile& file = *t.file_;
  file.Table("deployment").Get("name", &t.name);
  std::set<std::string> dcs;
  for (auto& dc : file.Root().SubArray("dc")) {
    std::string name;
    dc.Get("name", &name);
    if (name.empty()) throw config::ConfigError(path + ": every [[dc]] needs a name");
    dcs.insert(name);
    t.dcs.push_back(name);
  }
  for (auto& h : file.Root().SubArray("host")) {
    HostEntry e;
    h.Get("name", &e.name);
    h.Get("address", &e.address);
    h.Get("admin", &e.admin);
    if (e.name.empty()) throw config::ConfigError(path + ": every [[host]] needs a name");
    if (!e.admin.empty()) config::ParseHostPort(e.admin);
    for (const auto& other : t.hosts)
      if (other.name == e.name)
        throw config::ConfigError(path + ": two [[host]] tables are named '" + e.name + "'");
    t.hosts.push_back(std::move(e));
  }
  std::set<std::string> names;
  for (const auto& r : kRoles)
    *r.nodes(t) = ReadNodes(file.Table(r.role), r.role, dcs, &names, t.hosts, path);
  ReadEtcd(file, &t);
  ReadPostgres(file, &t);
  ReadShards(file, &t);
  ReadRedis(file, &t);
  ReadNats(file, &t);
  ReadTimeline(file, &t);
  file.Table("dns").Get("zone", &t.dns_zone);
  for (char& c : t.dns_zone)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  while (!t.dns_zone.empty() && t.dns_zone.back() == '.') t.dns_zone.pop_back();
  file.Table("network").Get("mode", &t.network_mode);
  if (t.network_mode != "loopback" && t.network_mode != "netns" && t.network_mode != "auto")
    throw config::ConfigError(path + ": [network] mode must be \"loopback\", \"netns\" or " +
                              "\"auto\", not '" + t.network_mode + "'");
  auto runner = file.Table("runner");
  runner.Get("run_dir", &t.runner.run_dir);
  runner.Get("admin", &t.runner.admin);
  runner.Get("engine_user", &t.runner.engine_user);
  config::ParseHostPort(t.runner.admin);
  return t;
}

void Topology::Check(const std::vector<std::string>& role_tables) const {
  if (role_tables.size() == 1 && role_tables[0] == "*") return file_->RejectUnknownKeys();
  std::vector<std::string> tables = kShared;
  for (const auto& r : kRoles) tables.push_back(std::string(r.role) + ".node");  // read above
  tables.insert(tables.end(), role_tables.begin(), role_tables.end());
  file_->RejectUnknownKeysIn(tables);
}

const PgClusterEntry* ClusterOfNode(const Topology& t, const std::string& node) {
  for (const auto& c : t.pg_clusters)
    if (FindNode(c.nodes, node)) return &c;
  return nullptr;
}

const PgClusterEntry* PatroniClusterOfNode(const Topology& t, const std::string& node) {
  for (const auto& c : t.dc_clusters)
    if (FindNode(c.nodes, node)) return &c;
  return ClusterOfNode(t, node);
}

std::string UpstreamTlsDir(const std::string& run_dir) { return run_dir + "/tls/upstream"; }

const NodeEntry* FindNode(const std::vector<NodeEntry>& nodes, const std::string& name) {
  for (const auto& n : nodes)
    if (n.name == name) return &n;
  return nullptr;
}

}  // namespace millions::topo
