// The edge's section of a topology: [edge] (threads, the object store's bounds and policy, the
// caching policy's default TTL and grace, origin timeouts and health checks, the purge token's
// file, the TLS files) and the [http] limits it shares with the other servers. Read by `millions
// serve edge` and checked by `millions up` (docs/topology.md, docs/edge.md). Thread-safety: values,
// built at start-up. Ownership: owns its strings.
#pragma once

#include <string>
#include <vector>

#include "core/http_limits.h"
#include "core/topology.h"
#include "roles/edge/http_cache.h"
#include "roles/edge/store.h"

namespace millions::edge {

struct Settings {
  int threads = 2;
  StoreOptions store;  // memory ("64mb"), policy, max_object, disk_dir (per node), disk
  Policy policy;       // default_ttl_s (0: heuristic freshness off), grace_s, max_ttl_s
  int connect_timeout_ms = 1000;
  int origin_timeout_ms = 10000;  // each wait on the origin (header, each piece of a body)
  int check_interval_ms = 1000;   // origin health checks (GET /livez)
  int fall = 2;                   // failed checks before an origin counts as down
  int rise = 1;                   // passed checks before it counts as up again
  // The purge API's bearer token, read from this file at start (empty: purges refused).
  std::string purge_token_file;
  // PEM files for every node's tls_listen: [edge] tls_cert and tls_key, else the balancer's
  // ([lb] tls_cert, tls_key), one certificate for the deployment's names.
  std::string tls_cert;
  std::string tls_key;
  http::Limits limits;  // [http]
  std::string log_level = "info";
};

struct Origin {
  std::string name;
  std::string address;  // host:port
  std::string dc;
};

struct EdgeConfig {
  std::string name = "edge1";
  std::string dc = "dc1";
  std::string listen = "127.0.0.1:8090";
  std::string tls_listen;  // HTTPS beside `listen` (optional)
  std::string admin = "127.0.0.1:9090";
  Settings settings;
  // The balancers of this edge's dc first, then the others' (or, with no balancer, the web
  // nodes): tried in that order when one is down.
  std::vector<Origin> origins;
  std::string purge_token;  // from purge_token_file
};

extern const std::vector<std::string> kTables;

// A size such as "64mb", "1gb", "512kb" or a plain byte count; nullopt otherwise.
std::optional<size_t> ParseSize(std::string_view s);

// Throws config::ConfigError naming file, line and key.
Settings ReadSettings(const topo::Topology& t);

// This node's config; throws config::ConfigError for an unknown node or an unreadable token
// file.
EdgeConfig ReadConfig(const topo::Topology& t, const std::string& node);

}  // namespace millions::edge
