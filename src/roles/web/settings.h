// The web role's sections of a topology: [web] (threads, log level), [http], [cache], [media],
// [workers], [sessions] and [queue], plus the cache nodes ([[redis.node]]) and the database
// ([postgres], [[postgres.node]]) as the web node's data layer sees them. Read by `millions serve
// web` and `millions single`, checked by `millions up` (docs/topology.md).
// Thread-safety: values, built at start-up. Ownership: the results own their strings.
#pragma once

#include <string>
#include <vector>

#include "core/config.h"
#include "core/pg.h"
#include "core/topology.h"
#include "data/pg_cluster.h"
#include "roles/web/node.h"

namespace millions::web {

// The tables ReadSettings reads, for Topology::Check.
extern const std::vector<std::string> kTables;

// Reads the web tables of `file` into `cfg` (absent keys keep their defaults). `millions single`
// calls it on a file without nodes.
void ReadSettings(config::ConfigFile& file, WebNodeConfig* cfg);

// The settings of every web node of `t`: ReadSettings, [web] threads and log level, and the cache
// nodes. Throws config::ConfigError naming file, line and key.
WebNodeConfig ReadSettings(const topo::Topology& t);
// When the cache nodes are in several DCs: the node's L2 is its own DC's cache nodes, and each
// other DC's become an entry of l2_remote (invalidations only). One DC (or none in `dc`): as
// ReadSettings left it, every cache node in one L2.
void PlaceCacheByDc(const topo::Topology& t, const std::string& dc, WebNodeConfig* cfg);

// The data layer's view of [[postgres.node]]: members, pools, lag bound, failover wait.
// The CDN edge a node of data centre `dc` hands its clients ("http://host:port"): the first
// [[edge.node]] of that dc, else the first of any; empty without edges.
std::string EdgeOrigin(const topo::Topology& t, const std::string& dc);
// The same edge's HTTPS origin ("https://host:port", its tls_listen), for pages served over
// HTTPS; empty without edges or when that edge has no tls_listen.
std::string EdgeTlsOrigin(const topo::Topology& t, const std::string& dc);

data::ClusterOptions ClusterOptions(const topo::Topology& t);
// The same for one cluster of a sharded topology: its members, its name as the `shard` label.
data::ClusterOptions ClusterOptions(const topo::Topology& t, const topo::PgClusterEntry& c);
// libpq conninfo naming every PostgreSQL node (of the first cluster, when sharded), asking for
// the writable one.
pg::Options PgOptions(const topo::Topology& t);

}  // namespace millions::web
