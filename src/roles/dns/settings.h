// The DNS role's section of a topology: [dns] (the zone's name and TTLs, threads, health checks
// of the balancers, TCP bounds) and its [[dns.region]] tables (client subnets and their DCs in
// order of preference); the balancers answered are the topology's [[lb.node]]s and the name
// servers its [[dns.node]]s. Read by `millions serve dns` and checked by `millions up`
// (docs/topology.md, docs/dns.md).
// Thread-safety: values, built at start-up. Ownership: owns its strings.
#pragma once

#include <string>
#include <vector>

#include "core/topology.h"
#include "roles/dns/zone.h"

namespace millions::dns {

struct Settings {
  ZoneConfig zone;  // zone, ttl_s, ns_ttl_s, negative_ttl_s, serial, names, udp_size, regions
  int threads = 1;
  int check_interval_ms = 1000;  // each balancer's health check
  int check_timeout_ms = 500;
  std::string check_path = "/readyz";  // on the balancer's admin listener
  int fall = 2;                        // failed checks before a balancer counts as down
  int rise = 1;                        // passed checks before it counts as up again
  int tcp_idle_timeout_ms = 10000;     // a TCP connection waiting this long for a query is closed
  int tcp_max_queries = 100;           // queries per TCP connection, then it is closed
  int tcp_max_connections = 256;       // open at once; more are closed on accept
  std::string log_level = "info";
};

struct CheckTarget {
  std::string host;
  int port = 0;
};

struct DnsConfig {
  std::string name = "dns1";
  std::string dc = "dc1";
  std::string listen = "127.0.0.1:8053";
  std::string admin = "127.0.0.1:9053";
  Settings settings;
  std::vector<CheckTarget> checks;  // one per settings.zone.balancers[i]
};

extern const std::vector<std::string> kTables;

// Throws config::ConfigError naming file, key and, for bad values, the value.
Settings ReadSettings(const topo::Topology& t);

// This node's config; throws config::ConfigError for an unknown node.
DnsConfig ReadConfig(const topo::Topology& t, const std::string& node);

}  // namespace millions::dns
