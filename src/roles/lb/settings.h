// The balancer's section of a topology: [lb] (policies, health checks, rate limits, TLS files),
// the [http] limits it shares with the web nodes, and its log level. Read by `millions serve lb`
// and checked by `millions up` (docs/topology.md).
// Thread-safety: a value, built at start-up. Ownership: owns its strings.
#pragma once

#include <string>
#include <vector>

#include "core/http_limits.h"
#include "core/topology.h"
#include "roles/lb/health.h"

namespace millions::lb {

struct Settings {
  int threads = 2;
  std::string policy = "least_outstanding";
  // GETs forwarded to one web node in the same turn of a thread's event loop share one
  // connection and one send, up to this many (1: a connection per request). core/upstream.h.
  int pipeline_depth = 8;
  std::string hash_header;  // consistent_hash: header name, or "cookie:NAME"
  int check_interval_ms = 1000;
  int rise = 2;
  int fall = 2;
  int consecutive_failures = 5;
  int base_ejection_ms = 5000;
  int max_ejection_ms = 120000;
  int slow_start_ms = 10000;
  double rate_limit_rps = 0;  // per client IP; 0: off
  double rate_limit_burst = 100;
  std::string tls_cert;  // PEM files for every node's tls_listen
  std::string tls_key;
  // Strict-Transport-Security on the HTTPS listener's answers (never on plain HTTP); 0: none.
  int64_t hsts_max_age_s = 31'536'000;
  // TLS to the web nodes: every [[web.node]] has a tls_listen, which the balancers dial instead
  // of listen, verifying the node's certificate against upstream_ca and its address against the
  // certificate's names. Changing either needs a restart.
  bool upstream_tls = false;
  std::string upstream_ca;  // RUN_DIR/tls/upstream/ca.pem (topo::UpstreamTlsDir; `up` makes it)
  http::Limits limits;      // [http]
  std::string log_level = "info";  // [lb] log_level, else [web] log_level
};

// The tables ReadSettings reads, for Topology::Check.
extern const std::vector<std::string> kTables;

// Throws config::ConfigError naming file, line and key.
Settings ReadSettings(const topo::Topology& t);

// The health tracker's options from rise, fall, ejections and slow start.
HealthOptions ToHealthOptions(const Settings& s);

}  // namespace millions::lb
